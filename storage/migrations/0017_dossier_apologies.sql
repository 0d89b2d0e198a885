-- 0017: apologies and new appointments of overdue dossiers (phiếu xin lỗi và hẹn lại ngày trả
-- kết quả, issue 16), and the `late` mark the KPIs count.
--
-- An apology moves the dossier's due date to `new_due_at`; the row keeps the date it missed
-- (`old_due_at`) and the reason, and names the dossier event (from = to = the status it was
-- in) recorded with it. `dossiers.late` is set by the first apology and never cleared: a
-- dossier once late stays late whatever its new date.
CREATE TABLE dossier_apologies (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dossier      TEXT NOT NULL REFERENCES dossiers (code),
    event        INTEGER NOT NULL REFERENCES dossier_events (id),  -- recorded with it
    actor        TEXT NOT NULL,  -- the agency that issued it
    at           TEXT NOT NULL,
    old_due_at   TEXT NOT NULL,  -- the date missed
    new_due_at   TEXT NOT NULL,  -- the new appointment
    reason       TEXT NOT NULL
);
CREATE INDEX dossier_apologies_dossier ON dossier_apologies (dossier, id);
-- Append-only, as the events.
CREATE TRIGGER dossier_apologies_no_update BEFORE UPDATE ON dossier_apologies
BEGIN SELECT RAISE (ABORT, 'dossier apologies are append-only'); END;
CREATE TRIGGER dossier_apologies_no_delete BEFORE DELETE ON dossier_apologies
BEGIN SELECT RAISE (ABORT, 'dossier apologies are append-only'); END;

ALTER TABLE dossiers ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
CREATE INDEX dossiers_received ON dossiers (received_at);
