-- 0014: one-stop dossiers (hồ sơ một cửa liên thông, issue 16): intake and the DVCQG lifecycle.
--
-- `dossiers`: one row per dossier, keyed by its code `<receiving unit>-YYMMDD-NNNN`. `day` and
-- `seq` are the code's date (local, [dossiers] timezone) and number: the number is allocated as
-- one more than the unit's highest of that day, inside the write transaction that inserts the
-- row, so the sequence has no gap (a refused intake inserts nothing) and no repeat (the UNIQUE
-- index). `applicant` is JSON. `paused_at` is set while the dossier waits for a supplement
-- (status 5). `idempotency_key` is the intake's `Idempotency-Key`, unique per receiving unit.
CREATE TABLE dossiers (
    code             TEXT PRIMARY KEY,
    receiving_unit   TEXT NOT NULL REFERENCES agencies (organ_id),
    day              TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    procedure        TEXT NOT NULL REFERENCES procedures (code),
    agency           TEXT NOT NULL REFERENCES agencies (organ_id),
    channel          INTEGER NOT NULL,
    status           INTEGER NOT NULL,
    applicant        TEXT NOT NULL,
    received_at      TEXT NOT NULL,
    due_at           TEXT NOT NULL,
    paused_at        TEXT,
    idempotency_key  TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (receiving_unit, day, seq),
    UNIQUE (receiving_unit, idempotency_key)
);
CREATE INDEX dossiers_agency ON dossiers (agency, code);
CREATE INDEX dossiers_due ON dossiers (due_at);

-- The files of a dossier: those of its intake (event NULL) and those a move brought
-- (supplemented files). The bytes are objects of the object store, by SHA-256.
CREATE TABLE dossier_files (
    dossier       TEXT NOT NULL REFERENCES dossiers (code),
    component     TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    event         INTEGER REFERENCES dossier_events (id),
    created_at    TEXT NOT NULL
);
CREATE INDEX dossier_files_dossier ON dossier_files (dossier);
CREATE INDEX dossier_files_sha256 ON dossier_files (sha256);

-- Every move of a dossier (its intake included: from_status NULL), append-only.
CREATE TABLE dossier_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dossier      TEXT NOT NULL REFERENCES dossiers (code),
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL,
    from_status  INTEGER,
    to_status    INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dossier_events_dossier ON dossier_events (dossier, id);
CREATE TRIGGER dossier_events_no_update BEFORE UPDATE ON dossier_events
BEGIN
    SELECT RAISE (ABORT, 'dossier events are append-only');
END;
CREATE TRIGGER dossier_events_no_delete BEFORE DELETE ON dossier_events
BEGIN
    SELECT RAISE (ABORT, 'dossier events are append-only');
END;
