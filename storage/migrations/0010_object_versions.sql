-- 0010: the S3 version of every object the axis wrote (issue 15).
--
-- On S3, Object Lock protects a *version*, not a key: anyone holding the bucket's write
-- credentials can put other bytes under an object's key (a new latest version) or a delete
-- marker over it, while the locked version stays. Every row that names an object does so by
-- its SHA-256 (documents.sha256, attachment_versions.sha256, signing_sessions' source,
-- prepared and signed files, verification_reports.report_sha256, attachment_renewals.sha256),
-- and the S3 key is that SHA-256: this table maps the digest to the version(s) the axis itself
-- wrote (or found and verified, for objects stored before this migration), and the S3 store
-- reads the first of them, always, whatever the latest version of the key is.
--
-- A row means the version's bytes hash to sha256: it is inserted only after the axis uploaded
-- those bytes (or hashed the version whole). Several rows per digest happen when two writers
-- store the same new bytes at once; all are ours. Rows are only inserted. The filesystem
-- store has no versions and writes nothing here.
CREATE TABLE object_versions (
    sha256       TEXT NOT NULL,
    version_id   TEXT NOT NULL,
    size         BIGINT NOT NULL,
    recorded_at  TEXT NOT NULL,
    PRIMARY KEY (sha256, version_id)
);
