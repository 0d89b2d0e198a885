"""Each repository method against a real database: a SQLite file and a PostgreSQL database
(`db_backend`)."""

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.backends import open_database
from storage.db import Database
from storage.errors import Conflict, MissingReference, NotFound
from storage.ids import new_id
from storage.repos import (
    AgencyRepo,
    Delivery,
    DeliveryRepo,
    Document,
    DocumentRepo,
    Principal,
    Status,
    StatusRepo,
    TokenRepo,
)

G22 = "000.00.00.G22"  # Văn phòng Chính phủ
H41 = "000.00.00.H41"  # UBND tỉnh Nghệ An
H41_DEPT = "000.01.00.H41"
H41_COMMUNE = "000.01.01.H41"


@pytest.fixture
async def db(database_target: str) -> AsyncIterator[Database]:
    database = await open_database(database_target)
    async with database.transaction() as tx:
        agencies = AgencyRepo(tx)
        await agencies.add(G22, "Văn phòng Chính phủ", email="vpcp@example.vn")
        await agencies.add(H41, "UBND tỉnh Nghệ An")
        await agencies.add(H41_DEPT, "Sở Nội vụ tỉnh Nghệ An", parent_id=H41)
        await agencies.add(H41_COMMUNE, "UBND xã Nghi Phong", parent_id=H41_DEPT)
    yield database
    await database.close()


def _doc(sender: str, docid: str, kind: str = "document", **kw: Any) -> Document:
    return Document(
        id=new_id(),
        sender=sender,
        document_id=docid,
        kind=kind,
        sha256=hashlib.sha256(docid.encode()).hexdigest(),
        size=len(docid),
        **kw,
    )


# -- agencies ---------------------------------------------------------------------------------


async def test_agency_add_get_list_known(db: Database) -> None:
    async with db.reader() as tx:
        repo = AgencyRepo(tx)
        vpcp = await repo.get(G22)
        assert vpcp is not None
        assert vpcp.name == "Văn phòng Chính phủ"
        assert vpcp.email == "vpcp@example.vn"
        assert vpcp.parent_id is None
        assert vpcp.created_at.tzinfo == UTC
        dept = await repo.get(H41_DEPT)
        assert dept is not None and dept.parent_id == H41
        assert await repo.get("000.00.00.Z99") is None
        assert [a.organ_id for a in await repo.list()] == sorted([G22, H41, H41_DEPT, H41_COMMUNE])
        assert await repo.known([G22, "000.00.00.Z99", H41, G22]) == {G22, H41}
        assert await repo.known([]) == set()
        many = [f"x{i}" for i in range(1200)] + [H41_COMMUNE]
        assert await repo.known(many) == {H41_COMMUNE}


async def test_agency_duplicate_and_unknown_parent(db: Database) -> None:
    with pytest.raises(Conflict, match=G22):
        async with db.transaction() as tx:
            await AgencyRepo(tx).add(G22, "again")
    with pytest.raises(NotFound, match=re.escape("000.00.00.Z99")):
        async with db.transaction() as tx:
            await AgencyRepo(tx).add("000.02.00.H41", "Sở Y tế", parent_id="000.00.00.Z99")


async def test_agency_registered_by_only_back_dates(db: Database) -> None:
    async with db.reader() as tx:
        before = await AgencyRepo(tx).get(H41)
    assert before is not None
    earlier = before.created_at - timedelta(days=90)
    async with db.transaction() as tx:
        await AgencyRepo(tx).registered_by(H41, earlier)
        await AgencyRepo(tx).registered_by(H41, before.created_at + timedelta(days=1))  # later
        await AgencyRepo(tx).registered_by("000.00.00.Z99", earlier)  # unknown: nothing
    async with db.reader() as tx:
        after = await AgencyRepo(tx).get(H41)
        other = await AgencyRepo(tx).get(G22)
    assert after is not None and after.created_at == earlier
    assert other is not None and other.created_at > earlier


# -- tokens -----------------------------------------------------------------------------------


async def test_token_create_find_list_revoke(db: Database) -> None:
    h1 = hashlib.sha256(b"lt_one").hexdigest()
    h2 = hashlib.sha256(b"lt_two").hexdigest()
    async with db.transaction() as tx:
        t1 = await TokenRepo(tx).create(H41, h1, label="văn thư")
        t2 = await TokenRepo(tx).create(H41, h2, roles=("agency", "admin"))
    async with db.reader() as tx:
        repo = TokenRepo(tx)
        assert await repo.find(h1) == Principal(t1, H41, frozenset({"agency"}))
        p2 = await repo.find(h2)
        assert p2 is not None and p2.roles == frozenset({"agency", "admin"})
        assert await repo.find(hashlib.sha256(b"other").hexdigest()) is None
        rows = await repo.list(H41)
        assert [r.token_id for r in rows] == [t1, t2]
        assert rows[0]["label"] == "văn thư" and rows[0].revoked_at is None
        assert dict(rows[0])["token_id"] == t1
        assert await repo.list(G22) == []
    async with db.transaction() as tx:
        assert await TokenRepo(tx).revoke(t1) is True
        assert await TokenRepo(tx).revoke(t1) is False  # already revoked
        assert await TokenRepo(tx).revoke("nope") is False
    async with db.reader() as tx:
        assert await TokenRepo(tx).find(h1) is None
        assert await TokenRepo(tx).find(h2) is not None
        info = await TokenRepo(tx).get(t1)
        assert info is not None and info.revoked_at is not None


async def test_token_errors(db: Database) -> None:
    h = hashlib.sha256(b"lt_x").hexdigest()
    with pytest.raises(MissingReference):
        async with db.transaction() as tx:
            await TokenRepo(tx).create("000.00.00.Z99", h)
    async with db.transaction() as tx:
        await TokenRepo(tx).create(G22, h)
    with pytest.raises(Conflict):
        async with db.transaction() as tx:
            await TokenRepo(tx).create(H41, h)


# -- documents --------------------------------------------------------------------------------


async def test_document_insert_get_find(db: Database) -> None:
    received = datetime(2024, 5, 2, 3, 4, 5, 678000, tzinfo=UTC)
    doc = _doc(
        G22,
        "123/VPCP-TH",
        subject="Về việc triển khai",
        code="123/VPCP-TH",
        priority=2,
        received_at=received,
        meta_json='{"to": ["000.00.00.H41"]}',
    )
    async with db.transaction() as tx:
        await DocumentRepo(tx).insert(doc)
    async with db.reader() as tx:
        repo = DocumentRepo(tx)
        assert await repo.get(doc.id) == doc
        assert await repo.find_by_sender_docid(G22, "123/VPCP-TH") == doc
        assert await repo.find_by_sender_docid(H41, "123/VPCP-TH") is None
        assert await repo.get("missing") is None


async def test_duplicate_document_conflicts_but_statuses_repeat(db: Database) -> None:
    async with db.transaction() as tx:
        await DocumentRepo(tx).insert(_doc(G22, "1/VPCP"))
        # Another sender may use the same DocumentId.
        await DocumentRepo(tx).insert(_doc(H41, "1/VPCP"))
    with pytest.raises(Conflict, match="1/VPCP"):
        async with db.transaction() as tx:
            await DocumentRepo(tx).insert(_doc(G22, "1/VPCP"))
    async with db.transaction() as tx:
        await DocumentRepo(tx).insert(_doc(H41, "1/VPCP", kind="status"))
        await DocumentRepo(tx).insert(_doc(H41, "1/VPCP", kind="status"))
    async with db.reader() as tx:
        rows = await tx.fetchall("SELECT kind, COUNT(*) AS n FROM documents GROUP BY kind")
        assert {r["kind"]: r["n"] for r in rows} == {"document": 2, "status": 2}
        # find_by_sender_docid looks at documents only.
        found = await DocumentRepo(tx).find_by_sender_docid(H41, "1/VPCP")
        assert found is not None and found.kind == "document"
    with pytest.raises(ValueError):
        async with db.transaction() as tx:
            await DocumentRepo(tx).insert(_doc(G22, "2/VPCP", kind="memo"))


async def test_list_sent_pagination_and_related(db: Database) -> None:
    async with db.transaction() as tx:
        repo = DocumentRepo(tx)
        docs = [_doc(G22, f"{i}/VPCP") for i in range(5)]
        for d in docs:
            await repo.insert(d)
        await repo.insert(_doc(H41, "9/UBND"))
        await repo.insert(_doc(G22, "st", kind="status", related_id=docs[0].id))
        revoke = _doc(G22, "5/VPCP", business_type=1, related_id=docs[0].id)
        await repo.insert(revoke)
    async with db.reader() as tx:
        repo = DocumentRepo(tx)
        page1 = await repo.list_sent(G22, None, 2)
        page2 = await repo.list_sent(G22, page1[-1].id, 2)
        page3 = await repo.list_sent(G22, page2[-1].id, 10)
        ids = [d.id for d in page1 + page2 + page3]
        assert ids == [d.id for d in docs] + [revoke.id]
        assert all(d.kind == "document" and d.sender == G22 for d in page1 + page2 + page3)
        assert await repo.list_sent(G22, revoke.id, 10) == []
        related = await repo.related(docs[0].id)
        assert [d.kind for d in related] == ["status", "document"]
        assert related[1].business_type == 1
        assert await repo.related(docs[1].id) == []
    with pytest.raises(MissingReference):
        async with db.transaction() as tx:
            await DocumentRepo(tx).insert(_doc(G22, "6/VPCP", related_id="nonexistent"))


# -- deliveries -------------------------------------------------------------------------------


async def _send(
    db: Database, sender: str, docid: str, to: list[str], kind: str = "document"
) -> tuple[Document, list[Delivery]]:
    doc = _doc(sender, docid, kind=kind, subject=f"Công văn {docid}")
    async with db.transaction() as tx:
        await DocumentRepo(tx).insert(doc)
        deliveries = [await DeliveryRepo(tx).insert(doc.id, r, kind) for r in to]
    return doc, deliveries


async def test_delivery_insert_get_recipients(db: Database) -> None:
    doc, dels = await _send(db, G22, "1/VPCP", [H41_DEPT, H41])
    assert [d.state for d in dels] == ["new", "new"]
    async with db.reader() as tx:
        repo = DeliveryRepo(tx)
        assert await repo.get(dels[0].id) == dels[0]
        assert await repo.get("nope") is None
        assert await repo.recipients(doc.id) == sorted([H41, H41_DEPT])
        assert await repo.for_document(doc.id) == dels
    with pytest.raises(Conflict):
        async with db.transaction() as tx:
            await DeliveryRepo(tx).insert(doc.id, H41, "document")
    with pytest.raises(MissingReference):
        async with db.transaction() as tx:
            await DeliveryRepo(tx).insert(doc.id, "000.00.00.Z99", "document")


async def test_inbox_cursor_pagination_and_filters(db: Database) -> None:
    sent = [await _send(db, G22, f"{i}/VPCP", [H41]) for i in range(7)]
    await _send(db, G22, "x/VPCP", [H41_DEPT])  # someone else's inbox
    status_doc, status_dels = await _send(db, H41_DEPT, "st-1", [H41], kind="status")

    async with db.reader() as tx:
        repo = DeliveryRepo(tx)
        seen: list[str] = []
        after = None
        while True:
            page = await repo.inbox(H41, after, 3)
            if not page:
                break
            assert len(page) <= 3
            seen += [d.id for d, _ in page]
            after = page[-1][0].id
        expected = [dels[0].id for _, dels in sent] + [status_dels[0].id]
        assert seen == expected

        items = await repo.inbox(H41, None, 100, kind="status")
        assert len(items) == 1
        delivery, doc = items[0]
        assert doc == status_doc and delivery.kind == "status" and delivery.recipient == H41
        first_doc = (await repo.inbox(H41, None, 1))[0][1]
        assert first_doc.subject == "Công văn 0/VPCP" and first_doc.sender == G22
        assert len(await repo.inbox(H41, None, 100, kind="document")) == 7
        assert len(await repo.inbox(H41_DEPT, None, 100)) == 1
        assert await repo.inbox(H41_COMMUNE, None, 100) == []
        with pytest.raises(ValueError):
            await repo.inbox(H41, None, 0)
        with pytest.raises(ValueError):
            await repo.inbox(H41, None, 10, kind="memo")
        with pytest.raises(ValueError):
            await repo.inbox(H41, None, 10, state="read")

    async with db.transaction() as tx:
        assert await DeliveryRepo(tx).ack(sent[1][1][0].id, H41) is not None
    async with db.reader() as tx:
        repo = DeliveryRepo(tx)
        new = await repo.inbox(H41, None, 100, state="new")
        acked = await repo.inbox(H41, None, 100, state="acked")
        assert len(new) == 7 and [d.id for d, _ in acked] == [sent[1][1][0].id]
        assert len(await repo.inbox(H41, None, 100, kind="document", state="new")) == 6


async def test_ack_idempotent_and_refused_for_other_recipient(db: Database) -> None:
    _, dels = await _send(db, G22, "1/VPCP", [H41, H41_DEPT])
    mine = dels[0]
    async with db.transaction() as tx:
        assert await DeliveryRepo(tx).ack(mine.id, H41_DEPT) is None  # not H41_DEPT's
        assert await DeliveryRepo(tx).ack("no-such-delivery", H41) is None
    async with db.reader() as tx:
        still = await DeliveryRepo(tx).get(mine.id)
        assert still is not None and still.state == "new" and still.acked_at is None
    async with db.transaction() as tx:
        first = await DeliveryRepo(tx).ack(mine.id, H41)
    assert first is not None and first.state == "acked" and first.acked_at is not None
    async with db.transaction() as tx:
        again = await DeliveryRepo(tx).ack(mine.id, H41)
    assert again == first  # same acked_at: the second ack changed nothing
    async with db.reader() as tx:
        other = await DeliveryRepo(tx).get(dels[1].id)
        assert other is not None and other.state == "new"


# -- statuses ---------------------------------------------------------------------------------


async def test_status_insert_history_latest(db: Database) -> None:
    doc, _ = await _send(db, G22, "1/VPCP", [H41, H41_DEPT])
    base = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    statuses = []
    for i, (sender, code) in enumerate(
        [(H41, "01"), (H41_DEPT, "01"), (H41, "03"), (H41, "03"), (H41_DEPT, "06")]
    ):
        pkg, _ = await _send(db, sender, f"st-{i}", [G22], kind="status")
        statuses.append(
            Status(
                id=new_id(),
                document_id=doc.id,
                sender=sender,
                recipient=G22,
                code=code,
                description="Đã tiếp nhận" if code == "01" else None,
                staff="Nguyễn Văn A" if i == 0 else None,
                timestamp=base + timedelta(minutes=i) if i != 3 else None,
                package_id=pkg.id,
                received_at=base + timedelta(minutes=i, seconds=1),
            )
        )
    async with db.transaction() as tx:
        for s in statuses:
            await StatusRepo(tx).insert(s)
    async with db.reader() as tx:
        repo = StatusRepo(tx)
        assert await repo.history(doc.id) == statuses
        latest = await repo.latest_by_recipient(doc.id)
        assert latest == {H41: statuses[3], H41_DEPT: statuses[4]}
        assert await repo.history("other") == []
        assert await repo.latest_by_recipient("other") == {}
    with pytest.raises(MissingReference):
        async with db.transaction() as tx:
            await StatusRepo(tx).insert(
                Status(id=new_id(), document_id="missing", sender=H41, recipient=G22, code="01")
            )
