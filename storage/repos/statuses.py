"""Status history of documents (trạng thái xử lý văn bản, codes 01..16 of QCVN 102)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

from storage.db import Tx
from storage.ids import from_db_time, from_db_time_opt, to_db_time, utcnow

_COLUMNS = (
    "id, document_id, sender, recipient, code, description, staff, status_time, package_id,"
    " received_at"
)


@dataclass(frozen=True)
class Status:
    """One status reported about a document.

    document_id: our id of the document concerned; sender: the reporting agency; recipient:
    the agency told; timestamp: the time written in the status package (if any); package_id:
    our id of the status package in the documents table.
    """

    id: str
    document_id: str
    sender: str
    recipient: str
    code: str
    description: str | None = None
    staff: str | None = None
    timestamp: datetime | None = None
    package_id: str | None = None
    received_at: datetime = field(default_factory=utcnow)


def _status(row: sqlite3.Row) -> Status:
    return Status(
        id=row["id"],
        document_id=row["document_id"],
        sender=row["sender"],
        recipient=row["recipient"],
        code=row["code"],
        description=row["description"],
        staff=row["staff"],
        timestamp=from_db_time_opt(row["status_time"]),
        package_id=row["package_id"],
        received_at=from_db_time(row["received_at"]),
    )


class StatusRepo:
    """Reads and writes the statuses table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def insert(self, status: Status) -> None:
        """Record a status. The same code may be reported any number of times.
        MissingReference if the document (or package) does not exist."""
        await self.tx.execute(
            f"INSERT INTO statuses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                status.id,
                status.document_id,
                status.sender,
                status.recipient,
                status.code,
                status.description,
                status.staff,
                None if status.timestamp is None else to_db_time(status.timestamp),
                status.package_id,
                to_db_time(status.received_at),
            ),
        )

    async def history(self, document_id: str) -> list[Status]:
        """Every status of the document, oldest (first received) first."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM statuses WHERE document_id = ?"  # noqa: S608
            " ORDER BY received_at, id",
            (document_id,),
        )
        return [_status(r) for r in rows]

    async def latest_by_recipient(self, document_id: str) -> dict[str, Status]:
        """The last status each agency reported about the document, keyed by the reporting
        agency's organ id (for a sent document: each recipient's latest status)."""
        latest: dict[str, Status] = {}
        for status in await self.history(document_id):
            latest[status.sender] = status
        return latest
