-- 0016: one-stop dossiers across agencies (một cửa liên thông, issue 16): transfers over the axis.
--
-- A dossier's step at another agency travels as an edXML package (docs/dossiers.md, "Across
-- agencies"). `dossier_transfers` keeps both ends, one row per package and end:
--   direction 'out': at the originating unit's axis, the package it sent for step `step` of the
--     dossier `dossier` (a row of `dossiers` there), with the step's due date; statuses about
--     `package` become events of that dossier;
--   direction 'in': at the axis of the step's agency, the dossier as it arrived (`body`: the
--     ho-so.json attachment) and the agency's own status of its step. The dossier itself may
--     live on another axis, so `dossier` is its code, not a reference.
-- When both agencies are on one axis, the same package has an 'out' and an 'in' row.
CREATE TABLE dossier_transfers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    direction    TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    dossier      TEXT NOT NULL,
    origin       TEXT NOT NULL,
    agency       TEXT NOT NULL,
    step         INTEGER NOT NULL,
    package      TEXT NOT NULL REFERENCES documents (id),
    document_id  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    due_at       TEXT NOT NULL,
    paused_at    TEXT,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (direction, package)
);
CREATE INDEX dossier_transfers_dossier ON dossier_transfers (dossier, id);
CREATE INDEX dossier_transfers_agency ON dossier_transfers (direction, agency, id);

-- The moves the step's agency made on its side ('in' rows), append-only like dossier_events.
CREATE TABLE dossier_transfer_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer     INTEGER NOT NULL REFERENCES dossier_transfers (id),
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL,
    from_status  INTEGER,
    to_status    INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX dossier_transfer_events_transfer ON dossier_transfer_events (transfer, id);
CREATE TRIGGER dossier_transfer_events_no_update BEFORE UPDATE ON dossier_transfer_events
BEGIN
    SELECT RAISE (ABORT, 'dossier transfer events are append-only');
END;
CREATE TRIGGER dossier_transfer_events_no_delete BEFORE DELETE ON dossier_transfer_events
BEGIN
    SELECT RAISE (ABORT, 'dossier transfer events are append-only');
END;
