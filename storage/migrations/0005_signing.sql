-- 0005: two-step signing sessions of officers (issue 6) and new versions of attachments
-- (signed by an officer through a session, or sealed by the axis with the agency's HSM key).

-- A signing session (phiên ký): what the officer is asked to sign, kept until it is signed or
-- expires. The PDF to sign (source) and the prepared PDF (with the signature placeholder) are
-- objects in the object store, so a session survives a restart and can be finished by another
-- process. `state` is `pending` or `signed`; an expired session stays `pending` with
-- expires_at in the past. `session` is the JSON of signing.deferred.SigningSession (no secret);
-- `jwt_secret` keys the short-lived tokens of the browser-plugin download/upload (hex).
CREATE TABLE signing_sessions (
    id              TEXT PRIMARY KEY,
    organ_id        TEXT NOT NULL REFERENCES agencies (organ_id),
    state           TEXT NOT NULL,
    level           TEXT NOT NULL,
    profile         TEXT NOT NULL,
    certificate_sha256 TEXT NOT NULL,
    subject         TEXT NOT NULL,
    source_sha256   TEXT NOT NULL,
    source_size     INTEGER NOT NULL,
    prepared_sha256 TEXT NOT NULL,
    session         TEXT NOT NULL,
    jwt_secret      TEXT NOT NULL,
    document_id     TEXT REFERENCES documents (id),
    attachment_index INTEGER,
    name            TEXT,
    signed_sha256   TEXT,
    signed_size     INTEGER,
    signed_via      TEXT,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    signed_at       TEXT
);
CREATE INDEX signing_sessions_organ ON signing_sessions (organ_id, id);

-- A new version of a document's attachment, made by one agency (the original package is never
-- altered). kind: `signature` (an officer's session) or `seal` (the agency seal on the axis).
-- Each version is visible to the agency that made it; base_sha256 is what it was made from.
CREATE TABLE attachment_versions (
    id              TEXT PRIMARY KEY,
    document_id     TEXT NOT NULL REFERENCES documents (id),
    attachment_index INTEGER NOT NULL,
    organ_id        TEXT NOT NULL REFERENCES agencies (organ_id),
    kind            TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    base_sha256     TEXT NOT NULL,
    name            TEXT,
    session_id      TEXT REFERENCES signing_sessions (id),
    created_at      TEXT NOT NULL
);
CREATE INDEX attachment_versions_doc ON attachment_versions (document_id, attachment_index, organ_id, id);
