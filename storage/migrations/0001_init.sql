-- 0001: agencies, tokens, documents, deliveries, statuses.
-- Portable SQL: TEXT ids made in Python (storage/ids.py), times as ISO-8601 UTC TEXT, standard
-- types only (BIGINT is INTEGER in SQLite), partial unique indexes (PostgreSQL has them too).

-- cơ quan, tổ chức — agencies known to this axis, keyed by their mã định danh (organ id).
CREATE TABLE agencies (
    organ_id    TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent_id   TEXT REFERENCES agencies (organ_id),
    email       TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX agencies_parent ON agencies (parent_id);

-- Bearer tokens: only the SHA-256 hex of the token is kept.
CREATE TABLE tokens (
    token_id    TEXT PRIMARY KEY,
    organ_id    TEXT NOT NULL REFERENCES agencies (organ_id),
    token_hash  TEXT NOT NULL UNIQUE,
    label       TEXT,
    roles       TEXT NOT NULL,          -- space-separated role names
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX tokens_organ ON tokens (organ_id, token_id);

-- Every package the axis accepted: documents (văn bản) and status packages (trạng thái).
-- sender has no foreign key on purpose: packages forwarded by a peer axis come from agencies
-- this axis does not host.
CREATE TABLE documents (
    id             TEXT PRIMARY KEY,
    sender         TEXT NOT NULL,
    document_id    TEXT NOT NULL,       -- the edXML DocumentId chosen by the sender
    kind           TEXT NOT NULL CHECK (kind IN ('document', 'status')),
    sha256         TEXT NOT NULL,       -- the stored package in the object store
    size           BIGINT NOT NULL,
    subject        TEXT,
    code           TEXT,                -- số/ký hiệu — number/notation
    priority       INTEGER,
    business_type  INTEGER NOT NULL DEFAULT 0,
    related_id     TEXT REFERENCES documents (id),
    received_at    TEXT NOT NULL,
    meta_json      TEXT NOT NULL DEFAULT '{}'
);
-- A sender's DocumentId is unique among its documents (the idempotent resend rests on it);
-- status packages may repeat a DocumentId.
CREATE UNIQUE INDEX documents_sender_docid ON documents (sender, document_id)
    WHERE kind = 'document';
CREATE INDEX documents_sent ON documents (sender, kind, id);
CREATE INDEX documents_related ON documents (related_id);
CREATE INDEX documents_sha256 ON documents (sha256);

-- One row per (package, recipient): the recipient's inbox. attempts/next_attempt_at/last_error
-- are for the push delivery worker of a later issue.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    document_id      TEXT NOT NULL REFERENCES documents (id),
    recipient        TEXT NOT NULL REFERENCES agencies (organ_id),
    kind             TEXT NOT NULL CHECK (kind IN ('document', 'status')),
    state            TEXT NOT NULL DEFAULT 'new',
    created_at       TEXT NOT NULL,
    acked_at         TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_error       TEXT,
    UNIQUE (document_id, recipient)
);
CREATE INDEX deliveries_inbox ON deliveries (recipient, id);

-- Status history of a document (mã trạng thái 01..16), one row per status package received.
CREATE TABLE statuses (
    id           TEXT PRIMARY KEY,
    document_id  TEXT NOT NULL REFERENCES documents (id),
    sender       TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    code         TEXT NOT NULL,
    description  TEXT,
    staff        TEXT,
    status_time  TEXT,                  -- the time written in the status package, if any
    package_id   TEXT REFERENCES documents (id),
    received_at  TEXT NOT NULL
);
CREATE INDEX statuses_document ON statuses (document_id, received_at, id);
