-- 0026: VDXP replay protection (issue 18, docs/vdxp.md "Replayed requests"). The signatures
-- of state-changing VDXP requests seen within [vdxp] timestamp_window, shared by every worker
-- of `serve --workers N`; rows older than the window are pruned.
CREATE TABLE vdxp_seen_signatures (
    signature  TEXT PRIMARY KEY,         -- XroadVnpt-hash-header (HMAC-SHA256, hex)
    seen_at    TEXT NOT NULL
);
CREATE INDEX vdxp_seen_signatures_seen ON vdxp_seen_signatures (seen_at);
