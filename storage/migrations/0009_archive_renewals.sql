-- 0009: long-term validation upkeep of signed originals (issue 8, `lienthong archive renew`).
--
-- attachment_renewals: a renewed copy of a signed PDF attachment: the previous file plus a DSS
-- update with current revocation information and a new document timestamp (PAdES B-LTA
-- renewal), stored as a NEW object; the file it extends is never altered. A lineage is the
-- attachment as sent (version_id NULL) or one attachment version (attachment_versions.id);
-- each renewal extends the newest file of its lineage (base_sha256: the attachment, the
-- version or the previous renewal). Rows are only inserted. expires_at is when the new file's
-- evidence needs renewing again (the earliest expiry among the certificates its newest
-- timestamp rests on); previous_expires_at the same for the file it extended.
CREATE TABLE attachment_renewals (
    id                   TEXT PRIMARY KEY,
    document_id          TEXT NOT NULL REFERENCES documents (id),
    attachment_index     INTEGER NOT NULL,
    version_id           TEXT REFERENCES attachment_versions (id),
    base_sha256          TEXT NOT NULL,
    sha256               TEXT NOT NULL,
    size                 BIGINT NOT NULL,
    name                 TEXT,
    expires_at           TEXT NOT NULL,
    previous_expires_at  TEXT,
    created_at           TEXT NOT NULL
);
CREATE INDEX attachment_renewals_doc ON attachment_renewals (document_id, attachment_index, id);

-- What the renewal scan learnt about a file (by the SHA-256 of its bytes, which never change):
-- expires_at NULL means no signature to keep (not a PDF, unsigned, unreadable; `note` says
-- which). Lets a periodic scan skip files already inspected without fetching them again.
CREATE TABLE ltv_inspections (
    sha256        TEXT PRIMARY KEY,
    expires_at    TEXT,
    note          TEXT NOT NULL,
    inspected_at  TEXT NOT NULL
);
