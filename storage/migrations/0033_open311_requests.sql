-- 0033: what Open311 adds to a feedback posted through /open311/v2/requests (issue 17,
-- docs/open311.md): the app that posted it (its API key's name), the client's `media_url`
-- (recorded as text, never fetched), `device_id` and `account_id`, and the `token` a
-- batch-type service answers with. One row per feedback posted through Open311.
CREATE TABLE open311_requests (
    feedback    TEXT PRIMARY KEY REFERENCES feedback (code),
    app         TEXT NOT NULL,
    media_url   TEXT,
    device_id   TEXT,
    account_id  TEXT,
    token       TEXT UNIQUE,
    created_at  TEXT NOT NULL
);
-- GET /open311/v2/requests reads a window of received_at (the last 90 days by default), in
-- order (ties by code), visible feedback only.
CREATE INDEX feedback_open311_window ON feedback (received_at, code) WHERE hidden = 0;
