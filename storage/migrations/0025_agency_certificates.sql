-- 0025: client certificates (mTLS) bound to agencies (issue 18, docs/operations.md "TLS and
-- client certificates"). A certificate that chains to [server.tls] client_ca authenticates the
-- agency its SHA-256 fingerprint is bound to, beside bearer tokens and VDXP's HMAC.
CREATE TABLE agency_certificates (
    fingerprint  TEXT PRIMARY KEY,       -- SHA-256 of the certificate's DER, lowercase hex
    organ_id     TEXT NOT NULL REFERENCES agencies (organ_id),
    subject      TEXT NOT NULL,          -- shown by `lienthong agency cert list`
    not_after    TEXT NOT NULL,
    label        TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX agency_certificates_organ ON agency_certificates (organ_id);

-- Agencies (e.g. another axis's account: a federation link) whose requests must come with one
-- of their bound certificates: a bearer token alone is refused.
CREATE TABLE agency_certificate_required (
    organ_id    TEXT PRIMARY KEY REFERENCES agencies (organ_id),
    created_at  TEXT NOT NULL
);
