"""Agencies (cơ quan, tổ chức) hosted by this axis, keyed by organ id (mã định danh)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.errors import Conflict, NotFound
from storage.ids import from_db_time, to_db_time, utcnow

# SQLite allows 999 parameters per statement in old builds; stay well below.
_IN_CHUNK = 500


@dataclass(frozen=True)
class Agency:
    """One agency: its organ id, display name, parent agency (if any) and contact email."""

    organ_id: str
    name: str
    parent_id: str | None
    email: str | None
    created_at: datetime


def _agency(row: sqlite3.Row) -> Agency:
    return Agency(
        organ_id=row["organ_id"],
        name=row["name"],
        parent_id=row["parent_id"],
        email=row["email"],
        created_at=from_db_time(row["created_at"]),
    )


class AgencyRepo:
    """Reads and writes the agencies table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(
        self, organ_id: str, name: str, parent_id: str | None = None, email: str | None = None
    ) -> Agency:
        """Add an agency. Conflict if the organ id exists; NotFound if the parent is unknown."""
        if parent_id is not None and await self.get(parent_id) is None:
            raise NotFound(f"parent agency {parent_id} is not known")
        agency = Agency(organ_id, name, parent_id, email, utcnow())
        try:
            await self.tx.execute(
                "INSERT INTO agencies (organ_id, name, parent_id, email, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (organ_id, name, parent_id, email, to_db_time(agency.created_at)),
            )
        except Conflict as exc:
            raise Conflict(f"agency {organ_id} already exists") from exc
        return agency

    async def registered_by(self, organ_id: str, at: datetime) -> None:
        """Back-date the agency's registration (``created_at``) to ``at`` when it is later: for
        an agency whose traffic, imported or seeded, is older than its row here."""
        stamp = to_db_time(at)
        await self.tx.execute(
            "UPDATE agencies SET created_at = ? WHERE organ_id = ? AND created_at > ?",
            (stamp, organ_id, stamp),
        )

    async def get(self, organ_id: str) -> Agency | None:
        """The agency with this organ id, or None."""
        row = await self.tx.fetchone(
            "SELECT organ_id, name, parent_id, email, created_at FROM agencies WHERE organ_id = ?",
            (organ_id,),
        )
        return None if row is None else _agency(row)

    async def list(self) -> list[Agency]:
        """Every agency, ordered by organ id."""
        rows = await self.tx.fetchall(
            "SELECT organ_id, name, parent_id, email, created_at FROM agencies ORDER BY organ_id"
        )
        return [_agency(r) for r in rows]

    async def known(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are agencies of this axis."""
        wanted = sorted(set(ids))
        found: set[str] = set()
        for i in range(0, len(wanted), _IN_CHUNK):
            part = wanted[i : i + _IN_CHUNK]
            marks = ", ".join("?" for _ in part)
            rows = await self.tx.fetchall(
                f"SELECT organ_id FROM agencies WHERE organ_id IN ({marks})",  # noqa: S608 (only ? marks)
                part,
            )
            found.update(r["organ_id"] for r in rows)
        return found
