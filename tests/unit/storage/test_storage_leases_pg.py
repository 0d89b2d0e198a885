"""The fence's promise on PostgreSQL, where writers of several nodes run at once: a take-over
waits for a fenced transaction of the old holder (the fence's UPDATE holds the lease row's lock
until COMMIT), then finds the lease expired, takes it with a newer token, and the old holder's
next write is refused (storage/repos/leases.py).

Runs once the PostgreSQL backend is there (storage/pg.py and the suite's `pg_url` fixture,
tests/fixtures_pg.py); skipped before."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_storage_leases import T0, TTL, acquire, fenced_mark, marks

from storage.repos.leases import LeaseLost, LeaseRepo

pg = pytest.importorskip("storage.pg", reason="the PostgreSQL backend is not in this tree yet")


async def test_a_take_over_waits_for_the_old_holders_fenced_transaction(pg_url: str) -> None:
    a_node = await pg.PgDatabase.connect(pg_url, max_size=2)
    b_node = await pg.PgDatabase.connect(pg_url, max_size=2)
    try:
        async with a_node.transaction() as tx:
            await tx.execute("CREATE TABLE marks (note TEXT NOT NULL)")
        a = await acquire(a_node, "node-a", T0)
        assert a is not None
        inside, release = asyncio.Event(), asyncio.Event()

        async def fenced_write() -> None:
            async with a_node.transaction() as tx:
                await LeaseRepo(tx).fence(a, T0 + TTL - timedelta(seconds=1))
                inside.set()
                await release.wait()
                await tx.execute("INSERT INTO marks (note) VALUES ('a, fenced')")

        writer = asyncio.create_task(fenced_write())
        await inside.wait()
        taker = asyncio.create_task(acquire(b_node, "node-b", T0 + TTL + timedelta(seconds=1)))
        await asyncio.sleep(0.5)  # room to slip in, were the row not locked
        assert not taker.done()
        release.set()
        await writer
        b = await taker
        assert b is not None and b.token == a.token + 1
        with pytest.raises(LeaseLost):
            await fenced_mark(a_node, a, T0 + timedelta(seconds=2), "a after the take-over")
        assert await marks(a_node) == ["a, fenced"]
    finally:
        await a_node.close()
        await b_node.close()
