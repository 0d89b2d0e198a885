"""Deliveries: one row per (package, recipient); together they are each agency's inbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, from_db_time_opt, new_id, to_db_time, utcnow
from storage.repos.documents import KINDS, Document, document_from_row, id_above

STATES: frozenset[str] = frozenset({"new", "acked"})

_COLUMNS = "id, document_id, recipient, kind, state, created_at, acked_at"


@dataclass(frozen=True)
class Delivery:
    """A package waiting in (or acknowledged from) one recipient's inbox.

    document_id is OUR id of the package (documents.id), not the edXML DocumentId.
    """

    id: str
    document_id: str
    recipient: str
    kind: str
    state: str
    created_at: datetime
    acked_at: datetime | None


def _delivery(row: sqlite3.Row, prefix: str = "") -> Delivery:
    return Delivery(
        id=row[prefix + "id"],
        document_id=row[prefix + "document_id"],
        recipient=row[prefix + "recipient"],
        kind=row[prefix + "kind"],
        state=row[prefix + "state"],
        created_at=from_db_time(row[prefix + "created_at"]),
        acked_at=from_db_time_opt(row[prefix + "acked_at"]),
    )


# The inbox joins both tables; columns are renamed so that equal names do not collide.
_INBOX_SELECT = (
    "SELECT dl.id AS dl_id, dl.document_id AS dl_document_id, dl.recipient AS dl_recipient,"
    " dl.kind AS dl_kind, dl.state AS dl_state, dl.created_at AS dl_created_at,"
    " dl.acked_at AS dl_acked_at,"
    " d.id AS d_id, d.sender AS d_sender, d.document_id AS d_document_id, d.kind AS d_kind,"
    " d.sha256 AS d_sha256, d.size AS d_size, d.subject AS d_subject, d.code AS d_code,"
    " d.priority AS d_priority, d.business_type AS d_business_type,"
    " d.related_id AS d_related_id, d.received_at AS d_received_at, d.meta_json AS d_meta_json"
    " FROM deliveries dl JOIN documents d ON d.id = dl.document_id"
)


_INSERT = f"INSERT INTO deliveries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
# the row, only if the id is above every id of the recipient's inbox
_INSERT_ABOVE = (
    f"INSERT INTO deliveries ({_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?"  # noqa: S608
    " WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE recipient = ? AND id >= ?)"
)


class DeliveryRepo:
    """Reads and writes the deliveries table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def insert(
        self, document_id: str, recipient: str, kind: str, *, at: datetime | None = None
    ) -> Delivery:
        """Put package `document_id` (our id) in `recipient`'s inbox: :meth:`insert_many` for
        one recipient (a transaction putting a package in several inboxes uses insert_many
        once, which takes their locks in a fixed order)."""
        return (await self.insert_many(document_id, [recipient], kind, at=at))[0]

    async def insert_many(
        self,
        document_id: str,
        recipients: Sequence[str],
        kind: str,
        *,
        at: datetime | None = None,
    ) -> list[Delivery]:
        """Put package `document_id` (our id) in each recipient's inbox, state 'new', created
        ``at`` (default now; only demo and bench data are recorded afterwards); the deliveries
        in the order of `recipients`.

        Inbox order: a reader paging an inbox with ``after=<id>`` must never meet, later, a
        delivery with a lower id. So the ids are drawn inside the write transaction, under each
        recipient's inbox lock (``Tx.serialize``, taken in sorted order: held until COMMIT on
        PostgreSQL, SQLite's single writer elsewhere), and above the highest id already in
        those inboxes (another node's clock may be behind ours, another process may have used
        this millisecond): the deliveries of one inbox commit in id order on any number of
        nodes (docs/operations.md, "The database").

        Conflict if a recipient already has this package; MissingReference if the package or
        a recipient agency does not exist.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown delivery kind {kind!r}")
        if not recipients:
            return []
        for recipient in sorted(set(recipients)):
            await self.tx.serialize(f"lienthong:inbox:{recipient}")
        created = at or utcnow()
        made: list[Delivery] = []
        for recipient in recipients:
            row = (document_id, recipient, kind, "new", to_db_time(created), None)
            delivery_id = new_id()
            try:
                # one round trip when our clock is past the inbox's last id (nearly always);
                # else the id right after that last one
                if not await self.tx.execute(
                    _INSERT_ABOVE, (delivery_id, *row, recipient, delivery_id)
                ):
                    top = await self.tx.fetchone(
                        "SELECT MAX(id) FROM deliveries WHERE recipient = ?", (recipient,)
                    )
                    delivery_id = id_above(None if top is None else top[0])
                    await self.tx.execute(_INSERT, (delivery_id, *row))
            except Conflict as exc:
                raise Conflict(f"{recipient} already has package {document_id}") from exc
            made.append(Delivery(delivery_id, document_id, recipient, kind, "new", created, None))
        return made

    async def inbox(
        self,
        recipient: str,
        after: str | None,
        limit: int,
        kind: str | None = None,
        state: str | None = None,
    ) -> list[tuple[Delivery, Document]]:
        """The recipient's deliveries with id > after (a delivery id cursor), oldest first,
        at most `limit`, optionally only of one kind ('document'|'status') and one state
        ('new'|'acked'), each with its package row."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown delivery kind {kind!r}")
        if state is not None and state not in STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        sql = _INBOX_SELECT + " WHERE dl.recipient = ?"
        params: list[object] = [recipient]
        if after is not None:
            sql += " AND dl.id > ?"
            params.append(after)
        if kind is not None:
            sql += " AND dl.kind = ?"
            params.append(kind)
        if state is not None:
            sql += " AND dl.state = ?"
            params.append(state)
        sql += " ORDER BY dl.id LIMIT ?"
        params.append(limit)
        rows = await self.tx.fetchall(sql, params)
        return [(_delivery(r, "dl_"), document_from_row(r, "d_")) for r in rows]

    async def get(self, delivery_id: str) -> Delivery | None:
        """The delivery with this id, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608
            (delivery_id,),
        )
        return None if row is None else _delivery(row)

    async def ack(
        self, delivery_id: str, recipient: str, *, at: datetime | None = None
    ) -> Delivery | None:
        """Mark the recipient's delivery acknowledged ``at`` (default now) and return it.
        Idempotent: acking again keeps the first acked_at. None if the delivery does not exist
        or is someone else's."""
        await self.tx.execute(
            "UPDATE deliveries SET state = 'acked', acked_at = ?"
            " WHERE id = ? AND recipient = ? AND state = 'new'",
            (to_db_time(at or utcnow()), delivery_id, recipient),
        )
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM deliveries WHERE id = ? AND recipient = ?",  # noqa: S608
            (delivery_id, recipient),
        )
        return None if row is None else _delivery(row)

    async def recipients(self, document_id: str) -> list[str]:
        """The organ ids the package (our id) was delivered to, sorted."""
        rows = await self.tx.fetchall(
            "SELECT recipient FROM deliveries WHERE document_id = ? ORDER BY recipient",
            (document_id,),
        )
        return [r["recipient"] for r in rows]

    async def for_document(self, document_id: str) -> list[Delivery]:
        """Every delivery of the package (our id), oldest first."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM deliveries WHERE document_id = ? ORDER BY id",  # noqa: S608
            (document_id,),
        )
        return [_delivery(r) for r in rows]
