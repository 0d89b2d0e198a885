"""storage/repos/procedures.py against a real SQLite file: save (added, updated, unchanged),
get, pages and the list, and the competent agency as a foreign key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.backends import open_database
from storage.db import Database
from storage.errors import StorageError
from storage.repos.agencies import AgencyRepo
from storage.repos.procedures import ProcedureRepo, ProcedureRow

XA = "000.05.31.H41"


@pytest.fixture
async def db(database_target: str) -> AsyncIterator[Database]:
    database = await open_database(database_target)
    async with database.transaction() as tx:
        await AgencyRepo(tx).add(XA, "UBND xã Kim Liên")
    yield database
    await database.close()


def row(code: str = "1.001193", agency: str = XA, **body: object) -> ProcedureRow:
    return ProcedureRow(code, agency, {"name": "Đăng ký khai sinh", "days": 1, **body})


async def test_save_adds_then_changes_nothing_then_updates(db: Database) -> None:
    async with db.transaction() as tx:
        repo = ProcedureRepo(tx)
        assert await repo.save(row()) == "added"
        assert await repo.save(row()) == "unchanged"
    async with db.reader() as tx:
        first = await ProcedureRepo(tx).get("1.001193")
    assert first is not None and (first.agency, first.body) == (XA, row().body)
    assert first.created_at == first.updated_at
    async with db.transaction() as tx:
        assert await ProcedureRepo(tx).save(row(days=2, calendar_days=True)) == "updated"
        assert await ProcedureRepo(tx).save(row(days=2, calendar_days=True)) == "unchanged"
    async with db.reader() as tx:
        second = await ProcedureRepo(tx).get("1.001193")
        assert await ProcedureRepo(tx).get("1.000000") is None
    assert second is not None and second.body == row(days=2, calendar_days=True).body
    assert second.created_at == first.created_at
    assert second.updated_at is not None and first.updated_at is not None
    assert second.updated_at > first.updated_at


async def test_pages_in_code_order(db: Database) -> None:
    codes = ["2.000806", "1.001193", "2.001263", "1.000419"]
    async with db.transaction() as tx:
        for code in codes:
            await ProcedureRepo(tx).save(row(code))
    async with db.reader() as tx:
        repo = ProcedureRepo(tx)
        assert [r.code for r in await repo.list()] == sorted(codes)
        assert [r.code for r in await repo.page(None, 3)] == sorted(codes)[:3]
        assert [r.code for r in await repo.page("1.001193", 3)] == ["2.000806", "2.001263"]


async def test_the_competent_agency_must_exist(db: Database) -> None:
    with pytest.raises(StorageError):
        async with db.transaction() as tx:
            await ProcedureRepo(tx).save(row(agency="000.00.00.G22"))
