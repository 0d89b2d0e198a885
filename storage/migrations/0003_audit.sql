-- 0003: the tamper-evident audit log (nhật ký kiểm tra), its RFC 3161 anchors, and the signed
-- receipts (biên nhận) the axis issues for accepted documents (issue 9).
-- Portable SQL: times as ISO-8601 UTC TEXT, binary values as base64 TEXT.

-- One row per recorded action. hash = SHA-256 over the canonical encoding of every other
-- column (storage/audit.py), prev_hash = the previous entry's hash: editing, deleting or
-- reordering rows breaks the chain, and `lienthong audit verify` names the entry.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,   -- 1, 2, 3... with no gaps
    logged_at  TEXT NOT NULL,
    actor      TEXT NOT NULL,        -- an organ id, "admin" or "axis"
    action     TEXT NOT NULL,        -- e.g. document.send, delivery.ack, token.create
    objects    TEXT NOT NULL,        -- JSON array of the ids the action touched
    details    TEXT NOT NULL,        -- canonical JSON object
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);

-- An RFC 3161 timestamp token over the chain head (the hash of entry seq) from the TSA.
CREATE TABLE audit_anchors (
    id          TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    head_hash   TEXT NOT NULL,
    tsa_url     TEXT,
    token       TEXT NOT NULL,       -- base64 DER of the TimeStampToken (ContentInfo)
    gen_time    TEXT NOT NULL,       -- the TSA's time (from the token, for listing)
    created_at  TEXT NOT NULL
);
CREATE INDEX audit_anchors_seq ON audit_anchors (seq);

-- The CMS receipt signed with the axis seal for an accepted document (one per document).
CREATE TABLE receipts (
    document_id  TEXT PRIMARY KEY REFERENCES documents (id),
    cms          TEXT NOT NULL,      -- base64 DER of the CMS ContentInfo (SignedData)
    issued_at    TEXT NOT NULL
);
