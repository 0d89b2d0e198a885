"""server/dossiers/catalogue.py on a real SQLite file: procedures stored with their audit
entries, idempotent by code, all or nothing, unknown agencies refused by row."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from server.dossiers.catalogue import Located, from_row, get_procedure, store_procedures, to_row
from server.dossiers.errors import InvalidProcedure, ProcedureNotFound
from server.dossiers.procedures import procedure_from_mapping
from storage.audit import verify_log
from storage.db import Database
from storage.repos.agencies import AgencyRepo

XA = "000.05.31.H41"
HUYEN = "000.00.31.H41"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "meta.db")
    async with database.transaction() as tx:
        await AgencyRepo(tx).add(HUYEN, "UBND huyện Nam Đàn")
        await AgencyRepo(tx).add(XA, "UBND xã Kim Liên", parent_id=HUYEN)
    yield database
    await database.close()


def located(where: str, code: str, **changes: object) -> Located:
    data: dict[str, object] = {
        "code": code,
        "name": "Đăng ký kết hôn có yếu tố nước ngoài",
        "agency": HUYEN,
        "days": 15,
        "components": [{"code": "TK", "name": "Tờ khai", "required": True}],
        "fees": [{"amount": 1000000, "description": "Lệ phí"}],
        "steps": [{"agency": XA, "days": 2}, {"agency": HUYEN, "days": 13}],
    }
    data.update(changes)
    return Located(where, procedure_from_mapping(data))


def audit_actions(db: Database) -> list[tuple[str, str]]:
    with sqlite3.connect(db.path) as conn:
        return conn.execute("SELECT actor, action FROM audit_log ORDER BY seq").fetchall()


async def store(db: Database, *entries: Located) -> str:
    async with db.transaction() as tx:
        return (await store_procedures(tx, entries, "admin", "test.csv")).summary()


async def test_stored_rows_give_back_the_procedure() -> None:
    procedure = located("row 2", "2.000806").procedure
    assert from_row(to_row(procedure)) == procedure


async def test_store_is_idempotent_and_audits_each_change(db: Database) -> None:
    first, second = located("row 2", "2.000806"), located("row 3", "1.001193", steps=[], days=1)
    assert await store(db, first, second) == "2 added, 0 updated, 0 unchanged"
    assert await store(db, first, second) == "0 added, 0 updated, 2 unchanged"
    changed = located("row 3", "1.001193", steps=[], days=2)
    assert await store(db, first, changed) == "0 added, 1 updated, 1 unchanged"
    assert audit_actions(db)[-3:] == [
        ("admin", "procedure.add"),
        ("admin", "procedure.add"),
        ("admin", "procedure.update"),
    ]
    async with db.reader() as tx:
        assert (await get_procedure(tx, "1.001193")).days == 2
        report, _ = await verify_log(tx)
        with pytest.raises(ProcedureNotFound):
            await get_procedure(tx, "1.000000")
    assert report.ok


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            located("row 4", "2.001263", agency="000.00.00.G22", steps=[]),
            "row 4, field agency: 000.00.00.G22 is not an agency of this axis",
        ),
        (
            located("row 4", "2.001263", steps=[{"agency": "000.00.12.H41", "days": 15}]),
            "row 4, field steps: item 1: 000.00.12.H41 is not an agency of this axis",
        ),
        (
            located("row 4", "2.000806"),
            "row 4, field code: 2.000806 is already given in row 2",
        ),
    ],
)
async def test_a_bad_entry_stores_nothing(db: Database, bad: Located, message: str) -> None:
    before = audit_actions(db)
    with pytest.raises(InvalidProcedure) as caught:
        await store(db, located("row 2", "2.000806"), located("row 3", "1.001193"), bad)
    assert caught.value.detail == message
    assert audit_actions(db) == before
    async with db.reader() as tx:
        with pytest.raises(ProcedureNotFound):
            await get_procedure(tx, "2.000806")


async def test_a_failing_update_keeps_the_stored_procedure(db: Database) -> None:
    await store(db, located("row 2", "2.000806"))
    bad = replace(located("row 2", "2.000806").procedure, days=30, steps=())
    with pytest.raises(InvalidProcedure):
        unknown = located("row 3", "1.001193", agency="000.00.00.G22", steps=[])
        await store(db, Located("row 2", bad), unknown)
    async with db.reader() as tx:
        assert (await get_procedure(tx, "2.000806")).days == 15
