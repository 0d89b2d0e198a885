"""Packages accepted by the axis: documents (văn bản) and status packages (gói tin trạng thái)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, new_id, to_db_time, utcnow
from storage.repos.pending_objects import PendingObjectRepo

Kind = Literal["document", "status"]
KINDS: frozenset[str] = frozenset({"document", "status"})

_COLUMNS = (
    "id, sender, document_id, kind, sha256, size, subject, code, priority, business_type,"
    " related_id, received_at, meta_json"
)

_INSERT = f"INSERT INTO documents ({_COLUMNS}) VALUES ({', '.join('?' * 13)})"  # noqa: S608
# the row, only if its id is above every document of the sender (DocumentRepo.insert)
_INSERT_ABOVE = (
    f"INSERT INTO documents ({_COLUMNS}) SELECT {', '.join('?' * 13)}"  # noqa: S608
    " WHERE NOT EXISTS (SELECT 1 FROM documents WHERE sender = ? AND kind = 'document'"
    " AND id >= ?)"
)


def id_above(last: str | None) -> str:
    """A new id (storage.ids.new_id), or the id right after `last` when the clock has not
    passed it (another node's clock ahead of ours, or ids made in the same millisecond)."""
    made = new_id()
    if last is None or made > last:
        return made
    return f"{int(last, 16) + 1:032x}"


@dataclass(frozen=True)
class Document:
    """One accepted package.

    id: our id (storage.ids.new_id); document_id: the sender's edXML DocumentId; sha256/size:
    the stored package; code: số/ký hiệu (number/notation); business_type: edXML Business
    (0 new, 1 revoke, 2 update, 3 replace); related_id: our id of the original document (for
    revoke/update/replace) or of the document a status is about; meta_json: the JSON summary
    the server computed.
    """

    id: str
    sender: str
    document_id: str
    kind: str
    sha256: str
    size: int
    subject: str | None = None
    code: str | None = None
    priority: int | None = None
    business_type: int = 0
    related_id: str | None = None
    received_at: datetime = field(default_factory=utcnow)
    meta_json: str = "{}"


def document_from_row(row: sqlite3.Row, prefix: str = "") -> Document:
    """Build a Document from a row holding its columns (optionally named `prefix` + column)."""
    return Document(
        id=row[prefix + "id"],
        sender=row[prefix + "sender"],
        document_id=row[prefix + "document_id"],
        kind=row[prefix + "kind"],
        sha256=row[prefix + "sha256"],
        size=int(row[prefix + "size"]),
        subject=row[prefix + "subject"],
        code=row[prefix + "code"],
        priority=row[prefix + "priority"],
        business_type=int(row[prefix + "business_type"]),
        related_id=row[prefix + "related_id"],
        received_at=from_db_time(row[prefix + "received_at"]),
        meta_json=row[prefix + "meta_json"],
    )


def _values(doc: Document) -> tuple[object, ...]:
    return (
        doc.id,
        doc.sender,
        doc.document_id,
        doc.kind,
        doc.sha256,
        doc.size,
        doc.subject,
        doc.code,
        doc.priority,
        doc.business_type,
        doc.related_id,
        to_db_time(doc.received_at),
        doc.meta_json,
    )


class DocumentRepo:
    """Reads and writes the documents table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def insert(self, doc: Document) -> Document:
        """Insert a package row; return it as stored. Conflict if the sender already has a
        document (kind 'document') with this DocumentId, or if the id exists; status packages
        may repeat a DocumentId. MissingReference if related_id names no document.

        Sent-list order: a document is inserted under its sender's lock (``Tx.serialize``,
        held until COMMIT on PostgreSQL) and only with an id above the sender's last one;
        when the clock of this node is behind that id (another node's, or a transaction that
        drew its id earlier and committed later), the row gets the id right after it, and the
        Document returned has that id. So :meth:`list_sent`'s ``after`` cursor never skips a
        document committed later (docs/operations.md, "The database").

        The object's intent record (``pending_objects``) goes in the same transaction: from
        the commit on, the row keeps the object and the orphan sweep no longer considers it."""
        if doc.kind not in KINDS:
            raise ValueError(f"unknown document kind {doc.kind!r}")
        try:
            if doc.kind == "document":
                await self.tx.serialize(f"lienthong:sent:{doc.sender}")
                if not await self.tx.execute(_INSERT_ABOVE, (*_values(doc), doc.sender, doc.id)):
                    top = await self.tx.fetchone(
                        "SELECT MAX(id) FROM documents WHERE sender = ? AND kind = 'document'",
                        (doc.sender,),
                    )
                    doc = replace(doc, id=id_above(None if top is None else top[0]))
                    await self.tx.execute(_INSERT, _values(doc))
            else:
                await self.tx.execute(_INSERT, _values(doc))
        except Conflict as exc:
            raise Conflict(
                f"{doc.sender} already sent a document with DocumentId {doc.document_id}"
            ) from exc
        await PendingObjectRepo(self.tx).settle(doc.sha256)
        return doc

    async def get(self, id: str) -> Document | None:
        """The package with our id `id`, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM documents WHERE id = ?",  # noqa: S608
            (id,),
        )
        return None if row is None else document_from_row(row)

    async def find_by_sender_docid(self, sender: str, document_id: str) -> Document | None:
        """The sender's document (kind 'document') with this edXML DocumentId, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM documents"  # noqa: S608
            " WHERE sender = ? AND document_id = ? AND kind = 'document'",
            (sender, document_id),
        )
        return None if row is None else document_from_row(row)

    async def list_sent(self, sender: str, after: str | None, limit: int) -> list[Document]:
        """The sender's documents (kind 'document') with id > after, id ascending, at most
        `limit` of them."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        sql = f"SELECT {_COLUMNS} FROM documents WHERE sender = ? AND kind = 'document'"  # noqa: S608
        params: list[object] = [sender]
        if after is not None:
            sql += " AND id > ?"
            params.append(after)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        rows = await self.tx.fetchall(sql, params)
        return [document_from_row(r) for r in rows]

    async def related(self, id: str) -> list[Document]:
        """The packages whose related_id is `id` (revocations, updates, replacements and
        status packages about it), oldest first."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM documents WHERE related_id = ? ORDER BY id",  # noqa: S608
            (id,),
        )
        return [document_from_row(r) for r in rows]
