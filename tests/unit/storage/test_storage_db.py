"""The metadata database: migrations, PRAGMAs, transactions, concurrency (real SQLite files)."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage.db import Database, load_migrations
from storage.errors import Conflict, StorageError
from storage.ids import from_db_time, new_id, to_db_time
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "meta.db")
    yield database
    await database.close()


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_migrations_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    db = await Database.open(path)
    first = await db.applied_migrations()
    await db.close()
    expected = [(m.version, m.name) for m in load_migrations()]
    assert [(v, n) for v, n, _ in first] == expected
    assert expected[0] == (1, "init")
    assert {"agencies", "tokens", "documents", "deliveries", "statuses"} <= _tables(path)

    # Re-opening changes nothing: same rows, same applied_at, data kept.
    db = await Database.open(path)
    async with db.transaction() as tx:
        await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
    await db.close()
    db = await Database.open(path)
    try:
        assert await db.applied_migrations() == first
        async with db.reader() as tx:
            assert await AgencyRepo(tx).get("000.00.00.G22") is not None
    finally:
        await db.close()


async def test_pragmas_are_really_set(db: Database) -> None:
    for ctx in (db.transaction(), db.reader()):
        async with ctx as tx:
            values = {}
            for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"):
                row = await tx.fetchone(f"PRAGMA {pragma}")
                assert row is not None
                values[pragma] = row[0]
            assert values["journal_mode"] == "wal"
            assert values["synchronous"] == 2  # 2 = FULL
            assert values["foreign_keys"] == 1
            assert values["busy_timeout"] > 0


async def test_reader_cannot_write(db: Database) -> None:
    async with db.reader() as tx:
        with pytest.raises(StorageError, match=r"readonly|read-only|query_only"):
            await tx.execute(
                "INSERT INTO agencies (organ_id, name, created_at) VALUES ('x', 'x', 'x')"
            )


async def test_foreign_keys_enforced(db: Database) -> None:
    with pytest.raises(StorageError, match="FOREIGN KEY"):
        async with db.transaction() as tx:
            await DeliveryRepo(tx).insert("no-such-document", "000.00.00.G22", "document")


async def test_rollback_leaves_nothing(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as tx:
            await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
            await DocumentRepo(tx).insert(
                Document(new_id(), "000.00.00.G22", "1/VPCP", "document", "a" * 64, 10)
            )
            raise Boom
    async with db.reader() as tx:
        assert await AgencyRepo(tx).list() == []
        assert await tx.fetchall("SELECT * FROM documents") == []
    # The connection is usable again afterwards.
    async with db.transaction() as tx:
        await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")


async def test_conflict_rolls_back_whole_transaction(db: Database) -> None:
    async with db.transaction() as tx:
        await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
    with pytest.raises(Conflict):
        async with db.transaction() as tx:
            await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
            await AgencyRepo(tx).add("000.00.00.G22", "again")
    async with db.reader() as tx:
        assert [a.organ_id for a in await AgencyRepo(tx).list()] == ["000.00.00.G22"]


async def test_cancelled_transaction_rolls_back_and_db_stays_usable(db: Database) -> None:
    started = asyncio.Event()

    async def slow() -> None:
        async with db.transaction() as tx:
            await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db.transaction() as tx:
        assert await AgencyRepo(tx).list() == []
        await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
    async with db.reader() as tx:
        assert [a.organ_id for a in await AgencyRepo(tx).list()] == ["000.00.00.H41"]


async def test_many_concurrent_writers_and_readers(db: Database) -> None:
    async with db.transaction() as tx:
        await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
        await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")

    async def send(i: int) -> None:
        async with db.transaction() as tx:
            doc = Document(new_id(), "000.00.00.G22", f"{i}/VPCP", "document", "b" * 64, i)
            await DocumentRepo(tx).insert(doc)
            await DeliveryRepo(tx).insert(doc.id, "000.00.00.H41", "document")

    async def read() -> int:
        async with db.reader() as tx:
            return len(await DeliveryRepo(tx).inbox("000.00.00.H41", None, 1000))

    results = await asyncio.wait_for(
        asyncio.gather(*(send(i) for i in range(200)), *(read() for _ in range(50))), 60
    )
    assert all(isinstance(n, int) for n in results[200:])
    async with db.reader() as tx:
        inbox = await DeliveryRepo(tx).inbox("000.00.00.H41", None, 1000)
    assert len(inbox) == 200
    # Ids were made under the writer lock, so id order is commit order.
    assert [d.id for d, _ in inbox] == sorted(d.id for d, _ in inbox)


async def test_two_processes_style_open_same_file(tmp_path: Path) -> None:
    """Two Database objects on one file (server + CLI): both migrate safely, both write."""
    path = tmp_path / "meta.db"
    a, b = await asyncio.gather(Database.open(path), Database.open(path))
    try:
        async with a.transaction() as tx:
            await AgencyRepo(tx).add("000.00.00.G22", "Văn phòng Chính phủ")
        async with b.transaction() as tx:
            await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
        async with a.reader() as tx:
            assert len(await AgencyRepo(tx).list()) == 2
        assert len(await b.applied_migrations()) == len(load_migrations())
    finally:
        await a.close()
        await b.close()


async def test_ping_and_closed_database(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "meta.db")
    await db.ping()
    await db.close()
    with pytest.raises(StorageError):
        await db.ping()
    with pytest.raises(StorageError):
        async with db.transaction():
            pass
    await db.close()  # closing twice is harmless


async def test_open_refuses_unusable_path(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    with pytest.raises(StorageError):
        await Database.open(tmp_path / "a-directory.db")


def test_new_id_is_sortable_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_db_time_round_trip_and_order() -> None:
    hanoi = timezone(timedelta(hours=7))
    t = datetime(2024, 3, 1, 8, 30, 0, 123456, tzinfo=hanoi)
    text = to_db_time(t)
    assert text == "2024-03-01T01:30:00.123456Z"
    assert from_db_time(text) == t
    assert from_db_time(text).tzinfo == UTC
    assert to_db_time(datetime(2024, 1, 1, tzinfo=UTC)) < text
    with pytest.raises(ValueError):
        to_db_time(datetime(2024, 1, 1))  # naive
