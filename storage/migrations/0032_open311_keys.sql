-- 0032: API keys of Open311 apps (issue 17, docs/open311.md). An app posting service requests
-- through /open311/v2/requests sends its key as `api_key`; only the key's SHA-256 hex is
-- stored. An app has at most one active key (`lienthong open311 key create --name APP`); a
-- revoked key stays listed with when it was revoked.
CREATE TABLE open311_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,              -- the app, e.g. "ung-dung-ha-noi"
    key_hash    TEXT NOT NULL UNIQUE,       -- SHA-256 hex of the key
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE UNIQUE INDEX open311_keys_active_name ON open311_keys (name) WHERE revoked_at IS NULL;
