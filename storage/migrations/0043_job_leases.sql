-- 0043 (issue 20): the leases of the jobs that must run on one node at a time (audit anchoring,
-- the archive renewal, the directory and DVCQG syncs, the dashboard's fold, the outboxes'
-- retries: server/runtime/leases.py, docs/scaling.md).
--
-- One row per job, kept for ever (a release only ends the lease): `token` is the fencing token,
-- raised by one at every acquisition and never reset, so a node that lost its lease holds an
-- older token than the node that took it over, and every write transaction of a leased job
-- first checks that its token is still the row's (storage/repos/leases.py `fence`).
-- `expires_at`: the lease is free from then on (fixed-width UTC text, storage/ids.py);
-- `holder`: the process that holds (or last held) it, `host:pid:random`.
--
-- Portable SQL (SQLite and PostgreSQL): a plain table, written with INSERT ... ON CONFLICT.
CREATE TABLE job_leases (
    job          TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    token        BIGINT NOT NULL,
    acquired_at  TEXT NOT NULL,
    renewed_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
