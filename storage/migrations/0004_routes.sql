-- 0004: push delivery and federation (issue 9): agencies' webhooks, links to other axes, the
-- lease of a delivery being pushed, and the de-duplication of status packages.

-- A webhook an agency registered: the delivery worker POSTs its packages there, signed with
-- HMAC-SHA256 under `secret` (the axis must compute the MAC, so the secret is kept as is).
CREATE TABLE webhooks (
    organ_id    TEXT PRIMARY KEY REFERENCES agencies (organ_id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Another axis (a child or a peer) hosting some organisation ids: packages for them are
-- forwarded to `url` with `token` (this axis's bearer token there). organ_id is the other
-- axis's own id (its TraceHeader id), which is also its agency row here: its tokens may send
-- packages on behalf of the ids it hosts (patterns, space-separated).
CREATE TABLE axis_links (
    organ_id    TEXT PRIMARY KEY REFERENCES agencies (organ_id),
    url         TEXT NOT NULL,
    token       TEXT NOT NULL,
    hosts       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Push state of a delivery. A delivery to push has next_attempt_at set; a worker leases it
-- (lease_owner, lease_until) inside a write transaction, so two workers, even in two processes,
-- never send it at the same time. pushed_at: when a webhook or the next axis answered 2xx
-- (the delivery is then 'acked'); state 'dead' is the dead-letter state. push_since: when the
-- current round of attempts began (the max age counts from it; a retry restarts it).
ALTER TABLE deliveries ADD COLUMN push_since TEXT;
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until TEXT;
ALTER TABLE deliveries ADD COLUMN pushed_at TEXT;
CREATE INDEX deliveries_push ON deliveries (next_attempt_at) WHERE state = 'new';
CREATE INDEX deliveries_state ON deliveries (state, id);

-- Status packages are not unique by DocumentId (many statuses concern one document); a status
-- forwarded again by an axis (at least once on the wire) is recognised by this key: the sender,
-- the DocumentId it is about and the SHA-256 of the bytes as received.
CREATE TABLE status_receipts (
    sender      TEXT NOT NULL,
    dedup_key   TEXT NOT NULL,
    package_id  TEXT NOT NULL REFERENCES documents (id),
    PRIMARY KEY (sender, dedup_key)
);
