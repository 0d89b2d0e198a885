"""Renewals of signed attachments and what the renewal scan learnt per file (migration 0009).

Rows are only inserted: a renewal is a new object extending an older one, never a change.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.ids import from_db_time, from_db_time_opt, new_id, to_db_time, utcnow


@dataclass(frozen=True)
class Renewal:
    """One renewed copy of an attachment (see migration 0009 for each column)."""

    id: str
    document_id: str
    attachment_index: int
    version_id: str | None
    base_sha256: str
    sha256: str
    size: int
    name: str | None
    expires_at: datetime
    previous_expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Inspection:
    """What is known about one file: when its evidence expires (None: nothing to keep)."""

    sha256: str
    expires_at: datetime | None
    note: str
    inspected_at: datetime


@dataclass(frozen=True)
class StoredAttachment:
    """A document whose attachments the renewal scan looks at (id, sender, stored meta)."""

    id: str
    sender: str
    meta_json: str


def _renewal(row: sqlite3.Row) -> Renewal:
    return Renewal(
        id=row["id"],
        document_id=row["document_id"],
        attachment_index=int(row["attachment_index"]),
        version_id=row["version_id"],
        base_sha256=row["base_sha256"],
        sha256=row["sha256"],
        size=int(row["size"]),
        name=row["name"],
        expires_at=from_db_time(row["expires_at"]),
        previous_expires_at=from_db_time_opt(row["previous_expires_at"]),
        created_at=from_db_time(row["created_at"]),
    )


class RenewalRepo:
    """Reads and writes attachment_renewals and ltv_inspections through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(
        self,
        document_id: str,
        index: int,
        version_id: str | None,
        base_sha256: str,
        sha256: str,
        size: int,
        name: str | None,
        expires_at: datetime,
        previous_expires_at: datetime | None,
    ) -> Renewal:
        """Insert a renewal (ids sort in creation order, so a lineage's last is its newest)."""
        renewal = Renewal(
            new_id(), document_id, index, version_id, base_sha256, sha256, size, name,
            expires_at, previous_expires_at, utcnow(),
        )  # fmt: skip
        await self.tx.execute(
            "INSERT INTO attachment_renewals (id, document_id, attachment_index, version_id, "
            "base_sha256, sha256, size, name, expires_at, previous_expires_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                renewal.id, document_id, index, version_id, base_sha256, sha256, size, name,
                to_db_time(expires_at),
                None if previous_expires_at is None else to_db_time(previous_expires_at),
                to_db_time(renewal.created_at),
            ),
        )  # fmt: skip
        return renewal

    async def of_document(self, document_id: str) -> list[Renewal]:
        """Every renewal of a document's attachments and versions, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM attachment_renewals WHERE document_id = ? ORDER BY id", (document_id,)
        )
        return [_renewal(r) for r in rows]

    async def latest(self, document_id: str, index: int, version_id: str | None) -> Renewal | None:
        """The newest renewal of one lineage (the attachment as sent, or one version)."""
        row = await self.tx.fetchone(
            "SELECT * FROM attachment_renewals WHERE document_id = ? AND attachment_index = ? "
            "AND version_id IS ? ORDER BY id DESC LIMIT 1",
            (document_id, index, version_id),
        )
        return None if row is None else _renewal(row)

    async def inspection(self, sha256: str) -> Inspection | None:
        """What the scan learnt about the file ``sha256``, if it looked at it before."""
        row = await self.tx.fetchone(
            "SELECT * FROM ltv_inspections WHERE sha256 = ? LIMIT 1", (sha256,)
        )
        if row is None:
            return None
        return Inspection(
            row["sha256"],
            from_db_time_opt(row["expires_at"]),
            row["note"],
            from_db_time(row["inspected_at"]),
        )

    async def remember(self, sha256: str, expires_at: datetime | None, note: str) -> None:
        """Record what a file's inspection found (the same bytes always give the same answer,
        so a second record of one file is ignored)."""
        await self.tx.execute(
            "INSERT INTO ltv_inspections (sha256, expires_at, note, inspected_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (
                sha256,
                None if expires_at is None else to_db_time(expires_at),
                note,
                to_db_time(utcnow()),
            ),
        )

    async def documents_after(self, after: str | None, limit: int) -> list[StoredAttachment]:
        """Document packages (not status packages) by id, after ``after``: the scan's pages."""
        rows = await self.tx.fetchall(
            "SELECT id, sender, meta_json FROM documents WHERE kind = 'document' AND id > ? "
            "ORDER BY id LIMIT ?",
            (after or "", limit),
        )
        return [StoredAttachment(r["id"], r["sender"], r["meta_json"]) for r in rows]

    async def newest_version_ids(self, document_id: str) -> list[str]:
        """The id of the newest attachment version of each (attachment, agency) of a document
        (attachment_versions, migration 0005), oldest first."""
        rows = await self.tx.fetchall(
            "SELECT max(id) AS id FROM attachment_versions WHERE document_id = ? "
            "GROUP BY attachment_index, organ_id ORDER BY 1",
            (document_id,),
        )
        return [r["id"] for r in rows]
