"""The job leases of migration 0043 on a real SQLite file: one holder at a time, take-over only
after expiry (or a release), tokens that only go up, and the fence that refuses the writes of a
holder whose lease was taken over or expired (storage/repos/leases.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.db import Database
from storage.repos.leases import Lease, LeaseLost, LeaseRepo

T0 = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)
JOB = "stats-fold"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open(tmp_path / "meta.db")
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE marks (note TEXT NOT NULL)")
        yield db
    finally:
        await db.close()


async def acquire(db: Database, holder: str, at: datetime) -> Lease | None:
    async with db.transaction() as tx:
        return await LeaseRepo(tx).acquire(JOB, holder, TTL, at)


async def renew(db: Database, lease: Lease, at: datetime) -> bool:
    async with db.transaction() as tx:
        return await LeaseRepo(tx).renew(lease, TTL, at)


async def fenced_mark(db: Database, lease: Lease, at: datetime, note: str) -> None:
    """A leased job's write: the fence first, then the job's own row, in one transaction."""
    async with db.transaction() as tx:
        await LeaseRepo(tx).fence(lease, at)
        await tx.execute("INSERT INTO marks (note) VALUES (?)", (note,))


async def marks(db: Database) -> list[str]:
    async with db.reader() as tx:
        return [str(r[0]) for r in await tx.fetchall("SELECT note FROM marks ORDER BY note")]


async def test_one_holder_at_a_time_and_a_take_over_only_after_expiry(database: Database) -> None:
    a = await acquire(database, "node-a", T0)
    assert a == Lease(JOB, "node-a", 1)
    assert await acquire(database, "node-b", T0 + TTL - timedelta(microseconds=1)) is None
    # a renewal pushes the expiry on: still held at the first expiry
    assert await renew(database, a, T0 + timedelta(seconds=5))
    assert await acquire(database, "node-b", T0 + TTL) is None
    # node-a stops renewing (killed): once expired, node-b takes it, with a newer token
    b = await acquire(database, "node-b", T0 + timedelta(seconds=5) + TTL)
    assert b == Lease(JOB, "node-b", 2)
    async with database.reader() as tx:
        row = await LeaseRepo(tx).get(JOB)
    assert row is not None and (row.holder, row.token) == ("node-b", 2)
    assert row.expires_at == T0 + timedelta(seconds=5) + 2 * TTL
    # node-a comes back believing it holds the lease: its renewal is refused
    assert not await renew(database, a, T0 + timedelta(seconds=21))


async def test_the_fence_refuses_a_taken_over_or_expired_holder_and_keeps_nothing(
    database: Database,
) -> None:
    a = await acquire(database, "node-a", T0)
    assert a is not None
    await fenced_mark(database, a, T0 + timedelta(seconds=1), "a while held")
    # expired, nobody took it yet: node-a's write is refused all the same
    with pytest.raises(LeaseLost):
        await fenced_mark(database, a, T0 + TTL, "a after expiry")
    b = await acquire(database, "node-b", T0 + TTL)
    assert b is not None and b.token == a.token + 1
    # taken over: refused even at a time node-a's clock believes the lease still valid
    with pytest.raises(LeaseLost):
        await fenced_mark(database, a, T0 + timedelta(seconds=2), "a after the take-over")
    await fenced_mark(database, b, T0 + TTL + timedelta(seconds=1), "b while held")
    assert await marks(database) == ["a while held", "b while held"]


async def test_release_lets_another_in_at_once_and_tokens_never_go_down(
    database: Database,
) -> None:
    a = await acquire(database, "node-a", T0)
    assert a is not None
    async with database.transaction() as tx:
        assert await LeaseRepo(tx).release(a, T0 + timedelta(seconds=1))
    b = await acquire(database, "node-b", T0 + timedelta(seconds=1))
    assert b is not None and b.token == 2
    # a late release of the old lease changes nothing of the new one
    async with database.transaction() as tx:
        assert not await LeaseRepo(tx).release(a, T0 + timedelta(seconds=2))
    assert await acquire(database, "node-a", T0 + timedelta(seconds=2)) is None
    # the holder taking its own lease again starts a new term: the old token is fenced off
    again = await acquire(database, "node-b", T0 + timedelta(seconds=3))
    assert again is not None and again.token == 3
    with pytest.raises(LeaseLost):
        await fenced_mark(database, b, T0 + timedelta(seconds=4), "b's old term")
    async with database.reader() as tx:
        rows = await LeaseRepo(tx).all()
    assert [(r.job, r.holder, r.token) for r in rows] == [(JOB, "node-b", 3)]
    assert rows[0].held_at(T0 + timedelta(seconds=4))
    assert not rows[0].held_at(T0 + timedelta(seconds=3) + TTL)
