"""Group commit and inline statements of storage.db (real SQLite files)."""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from storage.errors import Conflict, StorageError
from storage.repos.agencies import AgencyRepo


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "meta.db")
    yield database
    await database.close()


def _committed_ids(path: Path) -> set[str]:
    """What another connection (another process) sees: only committed rows."""
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT organ_id FROM agencies")}


async def test_concurrent_transactions_share_commits_and_fail_alone(db: Database) -> None:
    async with db.transaction() as tx:
        await AgencyRepo(tx).add("dup", "taken")
    commits = 0
    real_commit = db._commit

    async def counting_commit() -> None:
        nonlocal commits
        commits += 1
        await real_commit()

    db._commit = counting_commit  # type: ignore[method-assign]

    async def add(i: int) -> str:
        async with db.transaction() as tx:
            await AgencyRepo(tx).add(f"a{i:03d}", f"agency {i}")
            if i % 10 == 0:
                await AgencyRepo(tx).add("dup", "again")  # this one alone is rolled back
        # Once the block has returned the row is committed: another connection sees it.
        assert f"a{i:03d}" in _committed_ids(db.path)
        return f"a{i:03d}"

    results = await asyncio.gather(*(add(i) for i in range(100)), return_exceptions=True)
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == list(range(0, 100, 10))
    assert all(isinstance(results[i], Conflict) for i in failed)
    expected = {f"a{i:03d}" for i in range(100) if i % 10} | {"dup"}
    assert _committed_ids(db.path) == expected
    # 100 transactions queued at once: far fewer COMMITs (fsyncs) than transactions.
    assert 1 <= commits < 50


async def test_failed_commit_fails_every_transaction_of_the_group(db: Database) -> None:
    async def add(i: int) -> None:
        async with db.transaction() as tx:
            await AgencyRepo(tx).add(f"b{i}", "x")

    async def broken_commit() -> None:
        done, db._done = db._done, []
        db._rollback()
        for fut in done:
            fut.set_exception(StorageError("disk on fire"))

    real_commit = db._commit
    db._commit = broken_commit  # type: ignore[method-assign]
    results = await asyncio.gather(*(add(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, StorageError) for r in results)
    db._commit = real_commit  # type: ignore[method-assign]
    assert _committed_ids(db.path) == set()
    await add(99)  # the database is usable afterwards
    assert _committed_ids(db.path) == {"b99"}


async def test_long_read_moves_off_the_event_loop(db: Database) -> None:
    async with db.transaction() as tx:
        await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
    # A query that runs for a long time in SQLite's VM (no table needed: a recursive CTE).
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
        "SELECT COUNT(*), (SELECT COUNT(*) FROM agencies) FROM n"
    )
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    before = ticks
    started = time.perf_counter()
    async with db.reader() as tx:
        row = await tx.fetchone(slow)
        quick = await tx.fetchone("SELECT COUNT(*) FROM agencies")
    elapsed = time.perf_counter() - started
    stop = True
    await task
    assert row is not None and tuple(row) == (3_000_000, 1)
    assert quick is not None and quick[0] == 1
    # The loop kept turning while the query ran (it ran on a reader thread, not inline).
    assert elapsed > 0.05
    assert ticks - before >= 10


async def test_cancelled_long_read_leaves_the_reader_usable(db: Database) -> None:
    slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
    slow += "SELECT COUNT(*) FROM n"

    async def read() -> None:
        async with db.reader() as tx:
            await tx.fetchone(slow)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(5):
        async with db.reader() as tx:
            row = await tx.fetchone("SELECT 1")
        assert row is not None and row[0] == 1
