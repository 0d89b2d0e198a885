-- 0045: the push worker's two queries (the earliest due push, and the due ones it leases:
-- state = 'new' AND next_attempt_at IS NOT NULL ... ORDER BY next_attempt_at, id) read an index
-- that starts with the state and orders by the due time. With 0004's partial index on
-- (next_attempt_at) beside deliveries_state (state, id), SQLite chose deliveries_state and
-- walked every undelivered row of the pull inboxes on each poll, inline on the event loop: with
-- 10,000 such rows a ~65 ms stall every poll, growing with the inboxes (bench/dashboard_bench.py
-- at --scale 0.05, py-spy). This index is the one both queries use (a seek on state = 'new' and
-- the first non-null due time), and makes the partial one useless.
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at, id);
DROP INDEX deliveries_push;
