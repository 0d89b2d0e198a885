-- 0035: what the fold of the dashboard's rollups reads for one (day, agency) cell of dossiers:
-- the dossiers received, due or moved that day (server/stats/rollups.py, docs/dashboard.md).
CREATE INDEX dossiers_agency_received ON dossiers (agency, received_at);
CREATE INDEX dossier_events_at ON dossier_events (at);
