-- 0027: citizen feedback (phản ánh, kiến nghị, issue 17): categories, feedback, photos, events,
-- transfers over the axis (docs/feedback.md).
--
-- `feedback_categories`: the Open311 services. `keywords` and `attributes` are JSON (the
-- attributes: an Open311 service definition's list, checked by server/feedback/categories.py).
-- `agency` (the competent agency) may be hosted by another axis: no reference to `agencies`.
CREATE TABLE feedback_categories (
    code         TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    grp          TEXT NOT NULL DEFAULT '',
    keywords     TEXT NOT NULL DEFAULT '[]',
    type         TEXT NOT NULL DEFAULT 'realtime',
    agency       TEXT NOT NULL,
    attributes   TEXT NOT NULL DEFAULT '[]',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- One row per feedback, keyed by its code `<prefix>-YYMMDD-NNNN`: `day` and `seq` are allocated
-- as one more than the axis's highest number of that day inside the inserting transaction
-- (gapless, no repeat: the UNIQUE index). `sender` is JSON (name, phone, email); `token_hash` the
-- SHA-256 of the private follow-up token. The four `*_due` are the working-day limits
-- (classify, transfer, answer, publish); `paused_at` is set while waiting for a supplement.
CREATE TABLE feedback (
    code              TEXT PRIMARY KEY,
    day               TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    category          TEXT NOT NULL REFERENCES feedback_categories (code),
    receiving_unit    TEXT NOT NULL REFERENCES agencies (organ_id),
    agency            TEXT NOT NULL,
    channel           TEXT NOT NULL,
    status            TEXT NOT NULL,
    title             TEXT NOT NULL,
    content           TEXT NOT NULL,
    address           TEXT NOT NULL DEFAULT '',
    lat               REAL,
    lon               REAL,
    attributes        TEXT NOT NULL DEFAULT '{}',
    sender            TEXT NOT NULL,
    token_hash        TEXT NOT NULL,
    idempotency_key   TEXT,
    received_at       TEXT NOT NULL,
    classify_due      TEXT NOT NULL,
    transfer_due      TEXT NOT NULL,
    answer_due        TEXT NOT NULL,
    publish_due       TEXT,
    paused_at         TEXT,
    supplements       INTEGER NOT NULL DEFAULT 0,
    answer            TEXT NOT NULL DEFAULT '',
    answered_at       TEXT,
    published_at      TEXT,
    hidden            INTEGER NOT NULL DEFAULT 0,
    hidden_reason     TEXT NOT NULL DEFAULT '',
    rating            TEXT,
    rated_at          TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (day, seq),
    UNIQUE (idempotency_key)
);
CREATE INDEX feedback_receiving ON feedback (receiving_unit, code);
CREATE INDEX feedback_agency ON feedback (agency, code);
CREATE INDEX feedback_received_at ON feedback (received_at);
-- The public list walks the published feedback in code order (newest first) on this partial
-- index; the overdue lists walk each side's feedback that can still be late (the literal list
-- of storage/repos/feedback.py OPEN), so that neither reads the whole table.
CREATE INDEX feedback_public ON feedback (code) WHERE published_at IS NOT NULL AND hidden = 0;
CREATE INDEX feedback_receiving_open ON feedback (receiving_unit, code)
    WHERE status IN ('received', 'classified', 'transferred', 'processing', 'answered');
CREATE INDEX feedback_agency_open ON feedback (agency, code)
    WHERE status IN ('received', 'classified', 'transferred', 'processing', 'answered');

-- Photos, re-encoded without their metadata; objects of the object store by SHA-256.
-- `approved`: an officer allowed it on the public pages.
CREATE TABLE feedback_photos (
    feedback      TEXT NOT NULL REFERENCES feedback (code),
    n             INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    approved      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (feedback, n)
);
CREATE INDEX feedback_photos_sha256 ON feedback_photos (sha256);

-- Every move (the intake included: from_status NULL), append-only.
CREATE TABLE feedback_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    feedback     TEXT NOT NULL REFERENCES feedback (code),
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX feedback_events_feedback ON feedback_events (feedback, id);
CREATE TRIGGER feedback_events_no_update BEFORE UPDATE ON feedback_events
BEGIN
    SELECT RAISE (ABORT, 'feedback events are append-only');
END;
CREATE TRIGGER feedback_events_no_delete BEFORE DELETE ON feedback_events
BEGIN
    SELECT RAISE (ABORT, 'feedback events are append-only');
END;

-- Feedback sent over the axis to the competent agency (`out`, at the forwarding axis) and
-- received by it (`in`, at the axis hosting the agency). `package` is the edXML package's id
-- at this axis; `body` the feedback as the package carries it (`phan-anh.json`).
CREATE TABLE feedback_transfers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    feedback     TEXT NOT NULL,
    origin       TEXT NOT NULL,
    agency       TEXT NOT NULL,
    package      TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    status       TEXT NOT NULL,
    answer       TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (direction, package)
);
CREATE INDEX feedback_transfers_agency ON feedback_transfers (direction, agency, id);
CREATE INDEX feedback_transfers_feedback ON feedback_transfers (feedback);
