"""What SQLite's single writer gave for free, with concurrent writers on real PostgreSQL: three
`PgDatabase` pools on one database stand for three nodes, each with several tasks writing at
once (tests/fixtures_pg.py)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.audit import append, verify_log
from storage.db import Database, Tx
from storage.errors import Conflict
from storage.ids import new_id, to_db_time
from storage.pg import PgDatabase
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.dossier_transfers import TransferRepo, TransferRow
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
            doc = await DocumentRepo(tx).insert(_doc(f"lease-{i}"))
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


# -- inbox cursor order: a reader paging with after= never skips a delivery -----------------


async def _pages(
    db: Database, page: Callable[[Tx, Any], Awaitable[list[Any]]], done: asyncio.Event
) -> list[Any]:
    """Every row a reader sees paging with `after=` (`page(tx, after)`: the cursors of one
    page) while writers run, until a last empty page once `done` is set."""
    seen: list[Any] = []
    after = None
    while True:
        finished = done.is_set()  # read before the page: a last page after every commit
        async with db.reader() as tx:
            cursors = await page(tx, after)
        seen += cursors
        if cursors:
            after = cursors[-1]
        elif finished:
            return seen
        else:
            await asyncio.sleep(0.002)


async def _send(db: Database, docid: str, recipients: list[str], pause: float) -> None:
    """One accepted package as the exchange stores it, holding its transaction open a moment
    after the deliveries (the rest of a send: routes, audit) so that others commit meanwhile."""
    async with db.transaction() as tx:
        doc = await DocumentRepo(tx).insert(_doc(docid))  # its id may move up
        await DeliveryRepo(tx).insert_many(doc.id, recipients, "document")
        await asyncio.sleep(pause)


async def test_a_reader_paging_an_inbox_never_skips_a_delivery(nodes: list[Database]) -> None:
    """Four writers per node, each sending 12 packages to one to four of the recipients
    (in shuffled order: the locks are taken sorted, no deadlock), pausing a random moment
    before each commit; a reader per recipient pages its inbox with `after=` meanwhile. The
    union of every page is the final inbox of each recipient, each delivery once."""
    rng = random.Random(20)
    per_task, tasks_per_node = 12, 4
    done = asyncio.Event()

    async def writer(db: Database, name: str) -> None:
        for i in range(per_task):
            recipients = rng.sample(RECIPIENTS, rng.randint(1, len(RECIPIENTS)))
            await _send(db, f"{name}-{i}", recipients, rng.uniform(0, 0.02))

    async def reader(db: Database, recipient: str) -> list[str]:
        async def page(tx: Tx, after: str | None) -> list[str]:
            return [d.id for d, _ in await DeliveryRepo(tx).inbox(recipient, after, 3)]

        return await _pages(db, page, done)

    async def sent_page(tx: Tx, after: str | None) -> list[str]:
        return [d.id for d in await DocumentRepo(tx).list_sent(G22, after, 3)]

    readers = [asyncio.create_task(reader(nodes[n % NODES], r)) for n, r in enumerate(RECIPIENTS)]
    sent_reader = asyncio.create_task(_pages(nodes[1], sent_page, done))
    await asyncio.gather(
        *(writer(db, f"n{n}t{t}") for n, db in enumerate(nodes) for t in range(tasks_per_node))
    )
    done.set()
    pages = await asyncio.gather(*readers)
    sent = await sent_reader
    async with nodes[0].reader() as tx:
        rows = await tx.fetchall("SELECT id FROM documents WHERE sender = ? ORDER BY id", (G22,))
        assert sent == [r[0] for r in rows], "the sender's list skipped a document"
        for recipient, seen in zip(RECIPIENTS, pages, strict=True):
            rows = await tx.fetchall(
                "SELECT id FROM deliveries WHERE recipient = ? ORDER BY id", (recipient,)
            )
            final = [r[0] for r in rows]
            assert final, recipient
            assert seen == final, f"{recipient}: {len(set(final) - set(seen))} skipped"
        total = (await tx.fetchone("SELECT COUNT(*) FROM documents"))[0]
    assert total == NODES * tasks_per_node * per_task


async def test_ids_stay_above_a_last_id_ahead_of_our_clock(
    nodes: list[Database],
) -> None:
    """Another node's clock ahead of ours made the inbox's (the sender's list's) last id: the
    next delivery's (document's) id is still above it, so a reader past that id does not skip
    the new one."""
    ahead = "ffffffffffff" + "0" * 20  # a millisecond count far in the future
    async with nodes[0].transaction() as tx:
        first = await DocumentRepo(tx).insert(replace(_doc("ahead"), id=ahead))
        await tx.execute(
            "INSERT INTO deliveries (id, document_id, recipient, kind, state, created_at)"
            " VALUES (?, ?, ?, 'document', 'new', '2026-01-01T00:00:00.000000Z')",
            (ahead, first.id, RECIPIENTS[0]),
        )
    async with nodes[1].transaction() as tx:
        doc = await DocumentRepo(tx).insert(_doc("behind"))
        (made,) = await DeliveryRepo(tx).insert_many(doc.id, [RECIPIENTS[0]], "document")
    assert first.id == ahead
    assert doc.id == made.id == "ffffffffffff" + "0" * 19 + "1"
    async with nodes[2].reader() as tx:
        page = await DeliveryRepo(tx).inbox(RECIPIENTS[0], ahead, 10)
        assert [d.id for d, _ in page] == [made.id]
        assert [d.id for d in await DocumentRepo(tx).list_sent(G22, ahead, 10)] == [doc.id]


async def test_a_reader_paging_incoming_dossier_transfers_never_skips_one(
    nodes: list[Database],
) -> None:
    """Incoming transfers (ids from a sequence, drawn at the INSERT) for one agency from three
    nodes at once, each transaction held a moment: `incoming(after=)` pages them all."""
    rng = random.Random(16)
    agency, per_task, tasks_per_node = RECIPIENTS[0], 10, 3
    done = asyncio.Event()
    now = datetime(2026, 3, 9, tzinfo=UTC)

    async def writer(db: Database, name: str) -> None:
        for i in range(per_task):
            async with db.transaction() as tx:
                doc = await DocumentRepo(tx).insert(_doc(f"{name}-{i}"))
                row = TransferRow(
                    0, "in", f"{name}-{i}", G22, agency, 1, doc.id, doc.document_id, 1,
                    now, None, {}, now, now,
                )  # fmt: skip
                await TransferRepo(tx).insert(row)
                await asyncio.sleep(rng.uniform(0, 0.02))

    async def page(tx: Tx, after: int | None) -> list[int]:
        return [t.id for t in await TransferRepo(tx).incoming(agency, after or 0, 3)]

    reader = asyncio.create_task(_pages(nodes[0], page, done))
    await asyncio.gather(
        *(writer(db, f"n{n}t{t}") for n, db in enumerate(nodes) for t in range(tasks_per_node))
    )
    done.set()
    seen = await reader
    async with nodes[1].reader() as tx:
        rows = await tx.fetchall("SELECT id FROM dossier_transfers ORDER BY id")
    final = [int(r[0]) for r in rows]
    assert len(final) == NODES * tasks_per_node * per_task
    assert seen == final, f"{len(set(final) - set(seen))} skipped"
