-- 0015: the DVCQG sync of dossiers (issue 16, docs/dossiers.md "DVCQG sync").
--
-- `dvcqg_sync`: one row per dossier the sync has tried. `synced_version` is the dossier's
-- `updated_at` the adapter last accepted (NULL: never accepted), `synced_at` when; a dossier is
-- due again when its `updated_at` differs. `attempts` counts failures since the last success,
-- `next_attempt_at` is the back-off, `dead_at` set after [dvcqg] max_attempts failures (the
-- dead-letter list; `lienthong dossier dvcqg-retry` clears it).
CREATE TABLE dvcqg_sync (
    dossier          TEXT PRIMARY KEY REFERENCES dossiers (code),
    synced_version   TEXT,
    synced_at        TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_error       TEXT NOT NULL DEFAULT '',
    dead_at          TEXT
);
CREATE INDEX dvcqg_sync_dead ON dvcqg_sync (dead_at) WHERE dead_at IS NOT NULL;

-- The events (progress steps) the adapter accepted, one row each: an event without a row is
-- still to send.
CREATE TABLE dvcqg_synced_events (
    event      INTEGER PRIMARY KEY REFERENCES dossier_events (id),
    dossier    TEXT NOT NULL REFERENCES dossiers (code),
    synced_at  TEXT NOT NULL
);
CREATE INDEX dvcqg_synced_events_dossier ON dvcqg_synced_events (dossier);
CREATE INDEX dossiers_updated ON dossiers (updated_at);
