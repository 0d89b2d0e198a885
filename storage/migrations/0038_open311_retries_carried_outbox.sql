-- 0038 (issue 17, the loose ends): a retried Open311 POST answers the first request, and the
-- packages and status messages carried over the axis for citizen feedback go through an outbox.
--
-- `open311_requests`: `idempotency_key` is the SHA-256 of a POST's `Idempotency-Key` header
-- (one per app, for ever); `body_hash` the SHA-256 of the form it posted, `api_key` left out
-- (the same app posting the same form again within `[open311] retry_window` is a retry:
-- docs/open311.md).
ALTER TABLE open311_requests ADD COLUMN idempotency_key TEXT;
ALTER TABLE open311_requests ADD COLUMN body_hash TEXT;
CREATE UNIQUE INDEX open311_requests_key ON open311_requests (app, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX open311_requests_body ON open311_requests (app, body_hash, created_at)
    WHERE body_hash IS NOT NULL;

-- The public list of feedback is Open311's window on `feedback_open311_window`
-- (received_at, code, visible only: migration 0033); nothing reads `feedback_received_at` now.
DROP INDEX feedback_received_at;

-- `carried_outbox` (server/exchange/carried.py): an edXML package or status message a domain
-- decided to send, written in the transaction of the move it carries (the bytes, built once),
-- then given to the exchange and retried with back-off until the exchange accepts it
-- (`package`: the documents.id it got). The same bytes each time: the exchange answers a
-- resend of a DocumentId with its first receipt, and keeps one status however many attempts
-- reach it. `topic` orders the messages of one thing (`feedback-transfer:<id>`): one is sent
-- only after the earlier ones of its topic.
CREATE TABLE carried_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    topic            TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('document', 'status')),
    actor            TEXT NOT NULL,
    message          BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    package          TEXT,
    sent_at          TEXT
);
CREATE INDEX carried_outbox_pending ON carried_outbox (topic, id) WHERE package IS NULL;
CREATE INDEX carried_outbox_due ON carried_outbox (next_attempt_at) WHERE package IS NULL;
