-- 0039: one outbox for the records carried over the axis. The status messages about the moves
-- of a dossier transferred in (migration 0020, `dossier_transfer_reports`) go through
-- `carried_outbox` (migration 0038, server/exchange/carried.py) like citizen feedback's, topic
-- `dossier:report:<transfer id>`: written in the move's transaction, retried with back-off until
-- the exchange accepts them, one sent only after the earlier ones of its transfer.
--
-- Every row moves, in its order (ids grow, so a transfer's messages keep theirs), with its
-- attempts, next attempt and last error: a pending one is then sent by the outbox's next round
-- at the time it was due; one already accepted keeps its package and sent_at as history.
INSERT INTO carried_outbox (topic, kind, actor, message, created_at, attempts, next_attempt_at,
                            last_error, package, sent_at)
    SELECT 'dossier:report:' || transfer, 'status', actor, message, created_at, attempts,
           next_attempt_at, last_error, package, sent_at
    FROM dossier_transfer_reports ORDER BY id;
-- Its indexes go with it; nothing references it.
DROP TABLE dossier_transfer_reports;
