"""Database(writer_lock=True): writers of several Database objects (as of several server
processes) on one file take turns through the file lock; every transaction commits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.db import Database
from storage.repos.agencies import AgencyRepo


async def test_two_writers_with_the_lock_all_commit(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first = await Database.open(path, writer_lock=True)
    second = await Database.open(path, writer_lock=True)
    try:

        async def add(db: Database, organ_id: str) -> None:
            async with db.transaction() as tx:
                await AgencyRepo(tx).add(organ_id, organ_id)

        await asyncio.gather(
            *(add(first, f"000.00.01.A{n:02d}") for n in range(40)),
            *(add(second, f"000.00.02.B{n:02d}") for n in range(40)),
        )
        # a failing transaction releases the lock too (the other writer is not stuck)
        try:
            async with first.transaction() as tx:
                await AgencyRepo(tx).add("000.00.09.Z99", "z")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        await add(second, "000.00.09.Z98")
        async with second.reader() as tx:
            row = await tx.fetchone("SELECT count(*) FROM agencies")
        assert row is not None and row[0] == 81
        assert (tmp_path / "db.sqlite3-writer.lock").exists()
    finally:
        await first.close()
        await second.close()
