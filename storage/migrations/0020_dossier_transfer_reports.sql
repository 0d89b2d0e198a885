-- 0020: the moves of a step's agency on a dossier transferred to it (one-stop liên thông,
-- issue 16) must reach the originating unit even when sending the status message fails after
-- the move committed. The status message (the edXML bytes, built once) is written here in the
-- move's own transaction and sent after it; until the exchange has accepted it (`package`, the
-- status package's documents.id) it is retried with back-off, in order per transfer
-- (server/dossiers/transfers.py). The same bytes each time: the exchange keeps one status
-- however many attempts reach it (status_receipts).
CREATE TABLE dossier_transfer_reports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer         INTEGER NOT NULL REFERENCES dossier_transfers (id),
    actor            TEXT NOT NULL,
    message          BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    package          TEXT,
    sent_at          TEXT
);
CREATE INDEX dossier_transfer_reports_pending ON dossier_transfer_reports (transfer, id)
    WHERE package IS NULL;
CREATE INDEX dossier_transfer_reports_due ON dossier_transfer_reports (next_attempt_at)
    WHERE package IS NULL;

-- At the originating axis the status messages may arrive out of order (the delivery worker
-- pushes several at once after an outage). Each carries its move's number on the transfer
-- (`[ho-so N TIME #K]`); an arrival is kept here and the dossier's events are made from them in
-- that order only (`applied` on the 'out' end: how many so far), a repeat ignored.
ALTER TABLE dossier_transfers ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
CREATE TABLE dossier_transfer_arrivals (
    transfer  INTEGER NOT NULL REFERENCES dossier_transfers (id),
    seq       INTEGER NOT NULL,
    status    INTEGER NOT NULL,
    at        TEXT NOT NULL,
    note      TEXT NOT NULL,
    package   TEXT NOT NULL,
    PRIMARY KEY (transfer, seq)
);
