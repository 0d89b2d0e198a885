"""What SQLite's single writer gave for free, with concurrent writers on real PostgreSQL: three
`PgDatabase` pools on one database stand for three nodes, each with several tasks writing at
once (tests/fixtures_pg.py)."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from storage.audit import append, verify_log
from storage.db import Database
from storage.errors import Conflict
from storage.ids import new_id, to_db_time
from storage.pg import PgDatabase
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.dossiers import DossierRepo, DossierRow
from storage.repos.routes import PushRepo

G22 = "000.00.00.G22"
RECIPIENTS = [f"000.00.{i:02d}.H41" for i in range(1, 5)]
NODES = 3


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[list[Database]]:
    made = [await PgDatabase.connect(pg_url, max_size=6) for _ in range(NODES)]
    async with made[0].transaction() as tx:
        for organ_id in (G22, *RECIPIENTS):
            await AgencyRepo(tx).add(organ_id, organ_id)
    yield made
    for db in made:
        await db.close()


def _doc(docid: str) -> Document:
    return Document(
        id=new_id(),
        sender=G22,
        document_id=docid,
        kind="document",
        sha256=hashlib.sha256(docid.encode()).hexdigest(),
        size=1,
    )


async def test_audit_chain_has_no_fork_with_concurrent_appenders(nodes: list[Database]) -> None:
    per_task, tasks_per_node = 8, 4

    async def appender(db: Database, name: str) -> None:
        for i in range(per_task):
            async with db.transaction() as tx:
                await append(tx, G22, "document.send", [f"{name}-{i}"], {"i": i})
                await asyncio.sleep(0)  # let the others run while the chain head is held

    await asyncio.gather(
        *(appender(db, f"n{n}t{t}") for n, db in enumerate(nodes) for t in range(tasks_per_node))
    )
    async with nodes[1].reader() as tx:
        report, _ = await verify_log(tx)
        seqs = [r[0] for r in await tx.fetchall("SELECT seq FROM audit_log ORDER BY seq")]
    total = NODES * tasks_per_node * per_task
    assert report.ok, report.problems
    assert seqs == list(range(1, total + 1))


async def test_dossier_numbers_have_no_gap_and_no_repeat(nodes: list[Database]) -> None:
    """30 intakes at once over three nodes in one unit and day; every fifth rolls back after
    taking its number (a refused intake): the stored numbers are 1..24, each once."""
    async with nodes[0].transaction() as tx:
        await tx.execute(
            "INSERT INTO procedures (code, agency, body, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ("1.000001", G22, "{}", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"),
        )

    class Refused(Exception):
        pass

    async def intake(db: Database, n: int) -> None:
        now = datetime.now(UTC)
        async with db.transaction() as tx:
            repo = DossierRepo(tx)
            seq = await repo.next_seq(G22, "260101")
            await asyncio.sleep(0.001 * (n % 3))  # others queue up meanwhile
            if n % 5 == 4:
                raise Refused
            await repo.insert(
                DossierRow(
                    f"{G22}-260101-{seq:04d}", G22, "260101", seq, "1.000001", G22, 1, 1,
                    {"name": "x"}, now, now + timedelta(days=3), None, None, now, now,
                )
            )  # fmt: skip

    results = await asyncio.gather(
        *(intake(nodes[n % NODES], n) for n in range(30)), return_exceptions=True
    )
    assert [type(r).__name__ for r in results if r is not None] == ["Refused"] * 6
    async with nodes[2].reader() as tx:
        seqs = [r[0] for r in await tx.fetchall("SELECT seq FROM dossiers ORDER BY seq")]
    assert seqs == list(range(1, 25))


async def test_push_leases_are_never_taken_twice(nodes: list[Database]) -> None:
    """120 due deliveries, two leasing workers per node, five at a time until none is left:
    each delivery is leased exactly once."""
    past = to_db_time(datetime.now(UTC) - timedelta(seconds=1))
    async with nodes[0].transaction() as tx:
        for i in range(30):
            doc = _doc(f"lease-{i}")
            await DocumentRepo(tx).insert(doc)
            for recipient in RECIPIENTS:
                delivery = await DeliveryRepo(tx).insert(doc.id, recipient, "document")
                await tx.execute(
                    "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", (past, delivery.id)
                )
    leased: list[str] = []

    async def worker(db: Database, owner: str) -> None:
        while True:
            now = datetime.now(UTC)
            async with db.transaction() as tx:
                items = await PushRepo(tx).claim(owner, now, now + timedelta(minutes=5), 5)
                await asyncio.sleep(0)
            if not items:
                return
            leased.extend(item.delivery_id for item in items)

    await asyncio.gather(*(worker(db, f"n{n}w{w}") for n, db in enumerate(nodes) for w in (1, 2)))
    assert len(leased) == 120
    assert Counter(leased).most_common(1)[0][1] == 1


async def test_a_document_id_is_stored_once_when_sent_at_once(nodes: list[Database]) -> None:
    """The idempotent resend rests on the unique index: of ten concurrent inserts of one
    DocumentId, one is stored and nine get Conflict (the answer of a resend)."""

    async def send(db: Database) -> str:
        try:
            async with db.transaction() as tx:
                await DocumentRepo(tx).insert(_doc("same"))
        except Conflict:
            return "conflict"
        return "stored"

    outcomes = await asyncio.gather(*(send(nodes[n % NODES]) for n in range(10)))
    assert sorted(outcomes) == ["conflict"] * 9 + ["stored"]
