"""The audit hash chain on both backends (a SQLite file, a PostgreSQL database of the test's
own): appends, transactions, and tampering by SQL from outside the axis (the file opened
directly; a session of the database's owner)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from storage.audit import (
    GENESIS_HASH,
    AuditError,
    AuditRepo,
    append,
    entry_hash,
    verify_log,
)
from storage.backends import open_database
from storage.db import Database, SqliteDatabase
from storage.dialects import placeholders
from storage.errors import Conflict
from storage.pg import PgDatabase
from storage.repos.agencies import AgencyRepo
from storage.repos.receipts import ReceiptRepo


@pytest.fixture
async def db(database_target: str) -> AsyncIterator[Database]:
    database = await open_database(database_target)
    yield database
    await database.close()


async def _fill(db: Database, n: int) -> None:
    for i in range(1, n + 1):
        async with db.transaction() as tx:
            await append(tx, f"000.00.00.G{i:02d}", "document.send", [f"doc{i}"], {"n": i})


async def _sql(db: Database, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Tamper with the stored log from outside the axis, as someone with access to the disk
    (SQLite: the file opened directly) or to the database's owner role (PostgreSQL: a session
    of its own) would."""
    if isinstance(db, SqliteDatabase):
        conn = sqlite3.connect(db.path)
        try:
            conn.execute(statement, params)
            conn.commit()
        finally:
            conn.close()
        return
    assert isinstance(db, PgDatabase)
    pg = await asyncpg.connect(db.url)
    try:
        await pg.execute(placeholders(statement), *params)
    finally:
        await pg.close()


async def _problems(db: Database) -> list[tuple[int, str]]:
    async with db.reader() as tx:
        report, _ = await verify_log(tx)
    return [(p.seq, p.kind) for p in report.problems]


async def test_append_links_entries_and_hashes_every_field(db: Database) -> None:
    await _fill(db, 3)
    async with db.reader() as tx:
        entries = await AuditRepo(tx).page(None, 10)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    first = entries[0]
    assert first.objects == ["doc1"] and first.details == {"n": 1}
    assert first.time.tzinfo == UTC
    assert first.computed_hash() == first.hash
    # Every field, including prev_hash, changes the hash.
    base = (1, first.logged_at, first.actor, first.action, '["doc1"]', '{"n":1}', GENESIS_HASH)
    assert entry_hash(*base) == first.hash
    for i in range(len(base)):
        changed = list(base)
        changed[i] = 2 if i == 0 else str(changed[i]) + "x"
        assert entry_hash(*changed) != first.hash  # type: ignore[arg-type]


async def test_entry_rolls_back_with_its_transaction(db: Database) -> None:
    await _fill(db, 1)
    with pytest.raises(Conflict):
        async with db.transaction() as tx:
            await append(tx, "admin", "agency.add", ["000.00.00.H41"])
            await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
            await AgencyRepo(tx).add("000.00.00.H41", "again")  # fails: everything rolls back
    async with db.reader() as tx:
        assert await AuditRepo(tx).head() == (1, (await AuditRepo(tx).get(1)).hash)  # type: ignore[union-attr]
        with pytest.raises(AuditError):
            await append(tx, "admin", "x")  # a reader cannot append
    assert await _problems(db) == []


async def test_unicode_details_and_pagination(db: Database) -> None:
    async with db.transaction() as tx:
        entry = await append(
            tx, "admin", "agency.add", ["000.00.00.H41"],
            {"name": "UBND tỉnh Nghệ An", "at": datetime(2024, 5, 1, tzinfo=UTC)},
        )  # fmt: skip
    assert "Nghệ An" in entry.details_json
    assert entry.details["at"] == "2024-05-01T00:00:00+00:00"
    await _fill(db, 4)
    async with db.reader() as tx:
        repo = AuditRepo(tx)
        assert [e.seq for e in await repo.page(2, 2)] == [3, 4]
        assert [e.seq for e in await repo.page(4, 10)] == [5]
        with pytest.raises(ValueError):
            await repo.page(None, 0)
    assert await _problems(db) == []


async def test_verify_names_an_edited_entry(db: Database) -> None:
    await _fill(db, 6)
    await _sql(db, "UPDATE audit_log SET details = ? WHERE seq = 4", ('{"n":40}',))
    async with db.reader() as tx:
        report, _ = await verify_log(tx)
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "edited")]
    assert "seq 4: edited" in str(report.problems[0])
    assert report.entries == 6 and not report.ok


async def test_verify_names_an_entry_rewritten_with_a_new_hash(db: Database) -> None:
    await _fill(db, 6)
    async with db.reader() as tx:
        e = await AuditRepo(tx).get(3)
    assert e is not None
    forged = entry_hash(3, e.logged_at, "000.00.00.Z99", e.action, e.objects_json,
                        e.details_json, e.prev_hash)  # fmt: skip
    await _sql(
        db, "UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 3", ("000.00.00.Z99", forged)
    )
    assert await _problems(db) == [(3, "rewritten")]


async def test_verify_names_a_deleted_entry(db: Database) -> None:
    await _fill(db, 6)
    await _sql(db, "DELETE FROM audit_log WHERE seq = 2")
    assert await _problems(db) == [(2, "deleted")]
    await _sql(db, "DELETE FROM audit_log WHERE seq IN (4, 5)")
    async with db.reader() as tx:
        report, _ = await verify_log(tx)
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "deleted"), (4, "deleted")]
    assert "entries 4 to 5 are missing" in report.problems[1].message


async def test_verify_names_reordered_entries(db: Database) -> None:
    await _fill(db, 7)
    # Swap entries 3 and 5 (seq is the order of the log; -1 is a free slot for the swap).
    await _sql(db, "UPDATE audit_log SET seq = -1 WHERE seq = 3")
    await _sql(db, "UPDATE audit_log SET seq = 3 WHERE seq = 5")
    await _sql(db, "UPDATE audit_log SET seq = 5 WHERE seq = -1")
    async with db.reader() as tx:
        report, _ = await verify_log(tx)
    assert [(p.seq, p.kind) for p in report.problems] == [(3, "moved"), (5, "moved")]
    assert (
        "is entry 5 (document.send by 000.00.00.G05) moved out of place"
        in report.problems[0].message
    )
    assert "is entry 3 (document.send by 000.00.00.G03) moved" in report.problems[1].message


async def test_anchor_hash_detects_truncation_and_full_rewrite(db: Database) -> None:
    await _fill(db, 5)
    async with db.transaction() as tx:
        repo = AuditRepo(tx)
        head = await repo.head()
        assert head == (5, (await repo.get(5)).hash)  # type: ignore[union-attr]
        await repo.add_anchor(5, head[1], b"\x30\x00", datetime.now(UTC), None)
    assert await _problems(db) == []
    # Dropping the last entries leaves a consistent chain; only the anchor shows it.
    await _sql(db, "DELETE FROM audit_log WHERE seq >= 4")
    assert await _problems(db) == [(5, "truncated")]


async def test_receipts_store_once(db: Database) -> None:
    from storage.ids import new_id
    from storage.repos.documents import Document, DocumentRepo

    async with db.transaction() as tx:
        await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
        doc = Document(new_id(), "000.00.00.G22", "d1", "document", "ab" * 32, 1)
        await DocumentRepo(tx).insert(doc)
        first = await ReceiptRepo(tx).put(doc.id, b"first")
        second = await ReceiptRepo(tx).put(doc.id, b"second")
    assert first.cms_der == second.cms_der == b"first"
    async with db.reader() as tx:
        stored = await ReceiptRepo(tx).get(doc.id)
        assert stored is not None and stored.cms_der == b"first"
        assert await ReceiptRepo(tx).get("nothing") is None
