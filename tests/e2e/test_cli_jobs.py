"""``lienthong jobs`` through the installed console script: the job leases of a data directory
(holder, token, expiry in +07:00, held or free), a missing database one line."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from test_cli_calendar import lienthong, one_error_line

from storage.db import Database
from storage.ids import utcnow
from storage.repos.leases import LeaseRepo


async def take(data: Path) -> None:
    """Two leases as two server processes would leave them: one held, one released."""
    database = await Database.open(data / "lienthong.sqlite3")
    try:
        async with database.transaction() as tx:
            repo = LeaseRepo(tx)
            now = utcnow()
            await repo.acquire("stats-fold", "node-a:4242:abcdef", timedelta(minutes=10), now)
            old = await repo.acquire("audit-anchor", "node-b:77:123456", timedelta(minutes=10), now)
            assert old is not None
            await repo.release(old, now)
            await repo.acquire("audit-anchor", "node-b:78:654321", timedelta(seconds=5), now)
            again = await repo.acquire("audit-anchor", "node-b:78:654321", timedelta(0), now)
            assert again is not None and again.token == 3
    finally:
        await database.close()


def test_jobs_lists_every_lease_with_its_holder_token_and_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert lienthong("init", data=data).returncode == 0
    empty = lienthong("jobs", data=data)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("No job has taken a lease yet")

    asyncio.run(take(data))
    result = lienthong("jobs", data=data)
    assert result.returncode == 0, result.stderr
    header, rule, anchor, fold = result.stdout.strip().splitlines()
    assert header.split()[:3] == ["JOB", "HOLDER", "TOKEN"]
    assert set(rule) == {"-", " "}
    assert anchor.split()[:3] == ["audit-anchor", "node-b:78:654321", "3"]
    assert anchor.endswith("free (released or expired)")
    assert fold.split()[:3] == ["stats-fold", "node-a:4242:abcdef", "1"]
    assert " held, " in fold and fold.endswith(" s left")


def test_jobs_on_a_missing_database_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(lienthong("jobs", data=tmp_path / "nowhere"))
    assert "no database at" in line
