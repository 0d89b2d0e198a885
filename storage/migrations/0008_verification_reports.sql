-- 0008: verification reports of received attachments (issues 7 and 8). The report itself (the
-- canonical JSON bytes of lienthong.verification/1) is an object in the object store, so it is
-- kept and locked like the signed originals (S3 Object Lock on S3); this row names it. Several
-- rows per attachment over time: the first is the report made at arrival, later ones are
-- re-verifications; nothing is ever updated or deleted. An attachment zipped by the national
-- SDK has a row under each of its digests (verified bytes, edXML digest) naming one object.
-- These objects have no pending_objects row, so the orphan sweep never considers them.
CREATE TABLE verification_reports (
    id                 TEXT PRIMARY KEY,        -- storage/ids.py: time-sortable, insert order
    attachment_sha256  TEXT NOT NULL,           -- the attachment (decoded bytes or edXML digest)
    report_sha256      TEXT NOT NULL,           -- the report object in the object store
    report_size        BIGINT NOT NULL,
    verified_at        TEXT NOT NULL,
    policy             TEXT NOT NULL,           -- trust roots, revocation mode, online or not
    verdict            TEXT NOT NULL,           -- valid / none / indeterminate / invalid
    stored_at          TEXT NOT NULL,
    UNIQUE (attachment_sha256, report_sha256)
);
CREATE INDEX verification_reports_attachment ON verification_reports (attachment_sha256, id);
