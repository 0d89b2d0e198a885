"""storage/pg.py on a real PostgreSQL server (tests/fixtures_pg.py): migrations, transactions,
the errors the callers understand, and what SQLite's single writer gave for free."""

import asyncio
import socket

import asyncpg
import pytest
from fixtures_pg import PgDatabases

from storage.db import load_migrations
from storage.errors import Conflict, MissingReference, StorageError, StorageUnavailable
from storage.pg import PgDatabase
from storage.repos.agencies import AgencyRepo
from storage.repos.receipts import ReceiptRepo

G22 = "000.00.00.G22"


async def test_migrations_apply_once_even_from_nodes_starting_together(
    pg_databases: PgDatabases,
) -> None:
    url = await pg_databases.new(migrated=False)
    nodes = await asyncio.gather(*(PgDatabase.connect(url) for _ in range(3)))
    try:
        applied = await nodes[0].applied_migrations()
        assert [(v, n) for v, n, _ in applied] == [(m.version, m.name) for m in load_migrations()]
        for node in nodes[1:]:
            assert await node.applied_migrations() == applied
    finally:
        for node in nodes:
            await node.close()


async def test_transaction_commits_and_rolls_back(pg_url: str) -> None:
    db = await PgDatabase.connect(pg_url)
    try:
        async with db.transaction() as tx:
            await AgencyRepo(tx).add(G22, "Văn phòng Chính phủ")
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
                raise RuntimeError("undo")
        async with db.reader() as tx:
            assert (await AgencyRepo(tx).get(G22)) is not None
            assert (await AgencyRepo(tx).get("000.00.00.H41")) is None
            assert (await tx.fetchone("SELECT SUM(1), COUNT(*) FROM agencies"))[0] == 1
    finally:
        await db.close()


async def test_errors_map_to_storage_errors_and_undo_only_the_statement(pg_url: str) -> None:
    db = await PgDatabase.connect(pg_url)
    try:
        async with db.transaction() as tx:
            await AgencyRepo(tx).add(G22, "Văn phòng Chính phủ")
        async with db.transaction() as tx:
            with pytest.raises(Conflict):
                await tx.execute(
                    "INSERT INTO agencies (organ_id, name, created_at) VALUES (?, ?, ?)",
                    (G22, "again", "2026-01-01T00:00:00.000000Z"),
                )
            with pytest.raises(MissingReference):
                await tx.execute(
                    "INSERT INTO agencies (organ_id, name, parent_id, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    ("000.00.00.H41", "x", "000.00.00.NONE", "2026-01-01T00:00:00.000000Z"),
                )
            # the transaction goes on after both, as it does on SQLite (receipts.py relies on it)
            await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
        async with db.reader() as tx:
            assert (await tx.fetchone("SELECT COUNT(*) FROM agencies"))[0] == 2
            with pytest.raises(StorageError):
                await tx.execute("UPDATE agencies SET name = 'x'")  # a reader cannot write
    finally:
        await db.close()


async def test_receipt_race_answers_the_stored_one(pg_url: str) -> None:
    """Two transactions issuing the same receipt: the loser catches the Conflict inside its
    transaction and returns the winner's, as on SQLite."""
    db = await PgDatabase.connect(pg_url)
    try:
        async with db.transaction() as tx:
            doc = await _document(tx)
            first = await ReceiptRepo(tx).put(doc, b"first")
        async with db.transaction() as tx:
            second = await ReceiptRepo(tx).put(doc, b"second")
        assert second == first
    finally:
        await db.close()


async def _document(tx) -> str:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from storage.ids import new_id
    from storage.repos.documents import Document, DocumentRepo

    await AgencyRepo(tx).add(G22, "Văn phòng Chính phủ")
    doc = Document(
        id=new_id(),
        sender=G22,
        document_id="D1",
        kind="document",
        sha256="0" * 64,
        size=1,
        subject=None,
        code=None,
        priority=None,
        business_type=0,
        related_id=None,
        received_at=datetime.now(UTC),
        meta_json="{}",
    )
    await DocumentRepo(tx).insert(doc)
    return doc.id


async def test_unreachable_server_is_storage_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StorageUnavailable):
        await PgDatabase.connect(f"postgresql://x:y@127.0.0.1:{port}/z", timeout=5)


async def test_connection_lost_mid_transaction_is_storage_unavailable(pg_url: str) -> None:
    db = await PgDatabase.connect(pg_url)
    admin = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(StorageUnavailable):
            async with db.transaction() as tx:
                await AgencyRepo(tx).add(G22, "Văn phòng Chính phủ")
                pid = (await tx.fetchone("SELECT pg_backend_pid()"))[0]
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
                await AgencyRepo(tx).add("000.00.00.H41", "UBND tỉnh Nghệ An")
        await db.ping()  # the pool replaces the lost connection
        async with db.reader() as tx:
            assert (await tx.fetchone("SELECT COUNT(*) FROM agencies"))[0] == 0
    finally:
        await admin.close()
        await db.close()


async def test_nul_characters_find_nothing_and_are_not_stored(pg_url: str) -> None:
    """PostgreSQL text cannot hold NUL (SQLite's can): a lookup for one finds nothing, as no
    stored row can have it; storing one is refused with a StorageError, nothing half-written."""
    db = await PgDatabase.connect(pg_url)
    try:
        async with db.reader() as tx:
            assert await AgencyRepo(tx).get("000.00.00.G\x0022") is None
            assert (
                await tx.fetchall("SELECT name FROM agencies WHERE organ_id = ?", ("\x00",)) == []
            )
        with pytest.raises(StorageError):
            async with db.transaction() as tx:
                await AgencyRepo(tx).add(G22, "Văn phòng\x00Chính phủ")
        async with db.reader() as tx:
            assert (await tx.fetchone("SELECT COUNT(*) FROM agencies"))[0] == 0
    finally:
        await db.close()
