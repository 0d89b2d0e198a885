"""Verification reports of attachments (migration 0008): which report objects exist, and when.

The report bytes live in the object store (locked on S3 like the originals); a row names one
report object for one attachment digest. Rows are only ever inserted: the first row of an
attachment is the report made at arrival, later rows are re-verifications.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from storage.db import Tx
from storage.ids import from_db_time, new_id, to_db_time, utcnow

_COLUMNS = (
    "id, attachment_sha256, report_sha256, report_size, verified_at, policy, verdict, stored_at"
)


@dataclass(frozen=True)
class VerificationReportRow:
    """One stored report of one attachment: the report object's digest and size, when the
    verification ran, under which policy, and its one-word verdict."""

    attachment_sha256: str
    report_sha256: str
    report_size: int
    verified_at: datetime
    policy: str
    verdict: str
    id: str = field(default_factory=new_id)
    stored_at: datetime = field(default_factory=utcnow)


def _row(row: sqlite3.Row) -> VerificationReportRow:
    return VerificationReportRow(
        id=row["id"],
        attachment_sha256=row["attachment_sha256"],
        report_sha256=row["report_sha256"],
        report_size=int(row["report_size"]),
        verified_at=from_db_time(row["verified_at"]),
        policy=row["policy"],
        verdict=row["verdict"],
        stored_at=from_db_time(row["stored_at"]),
    )


class VerificationReportRepo:
    """Reads and inserts verification report rows through a Tx (never updates or deletes)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(self, row: VerificationReportRow, *, only_first: bool = False) -> bool:
        """Insert ``row``; False (nothing inserted) when this attachment already names this
        report object, or, with ``only_first``, when the attachment has any report already
        (the report at arrival is the first one; a racing second verification adds nothing)."""
        if only_first and await self.latest(row.attachment_sha256) is not None:
            return False
        inserted = await self.tx.execute(
            f"INSERT INTO verification_reports ({_COLUMNS})"  # noqa: S608 (constant columns)
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (attachment_sha256, report_sha256) DO NOTHING",
            (
                row.id,
                row.attachment_sha256,
                row.report_sha256,
                row.report_size,
                to_db_time(row.verified_at),
                row.policy,
                row.verdict,
                to_db_time(row.stored_at),
            ),
        )
        return inserted > 0

    async def latest(self, attachment_sha256: str) -> VerificationReportRow | None:
        """The newest report of an attachment, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM verification_reports WHERE attachment_sha256 = ?"  # noqa: S608
            " ORDER BY id DESC LIMIT 1",
            (attachment_sha256,),
        )
        return None if row is None else _row(row)

    async def latest_many(self, attachments: Iterable[str]) -> dict[str, VerificationReportRow]:
        """The newest report of each of these attachments that has one, by attachment digest."""
        wanted = sorted(set(attachments))
        found: dict[str, VerificationReportRow] = {}
        for start in range(0, len(wanted), 400):
            part = wanted[start : start + 400]
            marks = ", ".join("?" for _ in part)
            rows = await self.tx.fetchall(
                f"SELECT {_COLUMNS} FROM verification_reports"  # noqa: S608
                f" WHERE attachment_sha256 IN ({marks}) ORDER BY id",
                part,
            )
            for row in rows:  # ascending: the last one seen per attachment is the newest
                found[row["attachment_sha256"]] = _row(row)
        return found

    async def history(self, attachment_sha256: str) -> list[VerificationReportRow]:
        """Every report of an attachment, oldest (the report at arrival) first."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM verification_reports WHERE attachment_sha256 = ?"  # noqa: S608
            " ORDER BY id",
            (attachment_sha256,),
        )
        return [_row(r) for r in rows]
