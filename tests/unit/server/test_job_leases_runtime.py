"""The runtime of once-only jobs (server/runtime/leases.py) on a real SQLite file, two holders in
one process as two nodes would be: one runs the job, the other takes it over once the lease is
released or lost; a holder whose lease was taken over stops its job and none of its writes land.

Every wait polls the observable state with a generous bound: nothing here asserts how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from server.runtime.config import ConfigError, load_config
from server.runtime.leases import FencedDatabase, Jobs
from storage.db import Database
from storage.ids import to_db_time, utcnow
from storage.repos.leases import Lease, LeaseLost, LeaseRepo

JOB = "audit-anchor"
LEASE_SECONDS = 3.0  # renewals every second
BOUND = 60.0  # seconds a poll may wait: generous under a loaded machine


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A database with the table the jobs below mark: (holder, token) of each write."""
    async with contextlib.AsyncExitStack() as stack:
        db = await Database.open(tmp_path / "meta.db")
        stack.push_async_callback(db.close)
        async with db.transaction() as tx:
            await tx.execute(MARKS)
        yield db


MARKS = "CREATE TABLE marks (holder TEXT NOT NULL, token INTEGER NOT NULL)"


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while True:
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        assert time.monotonic() < deadline, f"not within {BOUND} s: {what}"
        await asyncio.sleep(0.05)


async def marking(fenced: Database) -> None:
    """A job writing a row with its holder and token every 50 ms through the fenced database."""
    assert isinstance(fenced, FencedDatabase)
    lease = fenced.lease
    while True:
        async with fenced.transaction() as tx:
            await tx.execute(
                "INSERT INTO marks (holder, token) VALUES (?, ?)", (lease.holder, lease.token)
            )
        await asyncio.sleep(0.05)


async def marks(db: Database) -> list[tuple[str, int]]:
    async with db.reader() as tx:
        rows = await tx.fetchall("SELECT holder, token FROM marks ORDER BY holder, token")
    return [(str(r[0]), int(r[1])) for r in rows]


async def test_one_holder_runs_the_job_and_the_other_takes_over_after_a_stop(
    database: Database,
) -> None:
    a = Jobs(database, lease_seconds=LEASE_SECONDS, holder="node-a")
    b = Jobs(database, lease_seconds=LEASE_SECONDS, holder="node-b")
    first = a.start(JOB, marking)
    second = b.start(JOB, marking)
    try:
        await eventually(lambda: bool(a.held()) or bool(b.held()), "one holder")
        running, waiting = (a, b) if a.held() else (b, a)
        # several renewal intervals later the same holder still runs it alone
        await asyncio.sleep(3 * LEASE_SECONDS)
        assert running.held() == {JOB: 1} and waiting.held() == {}
        assert (first.runs, second.runs) in {(1, 0), (0, 1)}
        assert {holder for holder, _ in await marks(database)} == {running.holder}

        await running.stop(JOB)  # a clean stop releases the lease
        await eventually(lambda: waiting.held() == {JOB: 2}, "the take-over")
        await eventually(lambda: has_mark(database, (waiting.holder, 2)), "its job's writes")
    finally:
        await a.close()
        await b.close()


async def has_mark(db: Database, mark: tuple[str, int]) -> bool:
    return mark in await marks(db)


async def test_a_holder_whose_lease_is_taken_over_stops_and_writes_nothing_after(
    database: Database,
) -> None:
    a = Jobs(database, lease_seconds=LEASE_SECONDS, holder="node-a")
    job = a.start(JOB, marking)
    try:
        await eventually(lambda: a.held() == {JOB: 1}, "node-a runs the job")
        await eventually(lambda: job.runs == 1, "the job started")
        # Another node takes the lease over behind node-a's back (as after node-a's clock or
        # process stalled past the expiry): the row now names it, with token 2.
        async with database.transaction() as tx:
            await tx.execute(
                "UPDATE job_leases SET expires_at = ? WHERE job = ?", (to_db_time(utcnow()), JOB)
            )
            intruder = await LeaseRepo(tx).acquire(
                JOB, "node-b", timedelta(seconds=LEASE_SECONDS), utcnow()
            )
        assert intruder is not None and intruder.token == 2
        taken_over = len(await marks(database))
        # node-a's next write or renewal finds out; it stops the job
        await eventually(lambda: a.held() == {}, "node-a stops the job")
        assert await marks(database) == [("node-a", 1)] * taken_over
        # node-b never renews (it died): node-a takes the lease again once expired, token 3
        await eventually(lambda: a.held() == {JOB: 3}, "node-a takes it back after expiry")
        await eventually(lambda: has_mark(database, ("node-a", 3)), "its writes with token 3")
        assert ("node-b", 2) not in await marks(database)
    finally:
        await a.close()


async def test_a_failed_job_is_started_again_and_a_finished_one_lets_its_lease_go(
    database: Database,
) -> None:
    jobs = Jobs(database, lease_seconds=LEASE_SECONDS, holder="node-a")
    attempts: list[int] = []

    async def flaky(fenced: Database) -> None:
        assert isinstance(fenced, FencedDatabase)
        attempts.append(fenced.lease.token)
        if len(attempts) == 1:
            raise RuntimeError("the first run fails")
        # the second run ends by itself: done in this process

    async def lease_row_held() -> bool:
        async with database.reader() as tx:
            row = await LeaseRepo(tx).get(JOB)
        return row is not None and row.held_at(utcnow())

    job = jobs.start(JOB, flaky)
    try:
        await eventually(lambda: len(attempts) == 2, "a second run after the failure")
        assert attempts == [1, 2]  # each run under a new term of the lease
        await eventually(lambda: job.lease is None, "the finished job's lease let go")
        assert not await lease_row_held()
        # a write through an old term's fenced database is refused
        with pytest.raises(LeaseLost):
            async with FencedDatabase(database, job_lease(2)).transaction():
                pass
    finally:
        await jobs.close()


def job_lease(token: int) -> Lease:
    return Lease(JOB, "node-a", token)


async def test_a_job_stopped_while_taking_its_lease_leaves_it_free(database: Database) -> None:
    """Stopped at any point of its first take (before, inside or after the transaction): the
    lease is never left held by a process that no longer runs the job."""

    async def idle(_fenced: Database) -> None:
        await asyncio.Event().wait()

    for turns in range(40):
        jobs = Jobs(database, lease_seconds=LEASE_SECONDS, holder=f"node-{turns}")
        jobs.start(JOB, idle)
        # from at once to well after the COMMIT, a quarter of a millisecond more each time
        await asyncio.sleep(turns / 4000)
        await jobs.close()
        async with database.reader() as tx:
            row = await LeaseRepo(tx).get(JOB)
        assert row is None or not row.held_at(utcnow()), (turns, row)


def test_the_lease_length_is_a_setting_with_bounds(tmp_path: Path) -> None:
    assert load_config(env={}, data_dir=tmp_path).jobs.lease_seconds == 15
    config = load_config(env={"LIENTHONG_JOBS_LEASE_SECONDS": "30"}, data_dir=tmp_path)
    assert config.jobs.lease_seconds == 30
    for bad in ("2", "3601"):
        with pytest.raises(ConfigError, match=r"jobs\.lease_seconds: must be between 3 and 3600"):
            load_config(env={"LIENTHONG_JOBS_LEASE_SECONDS": bad}, data_dir=tmp_path)
