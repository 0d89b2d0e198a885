"""The working-day calendar's override table (migration 0012): days an admin decided.

The rules that read these rows live in server/calendar/; this module only stores them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime

from storage.db import Tx
from storage.ids import from_db_time, to_db_time, utcnow

_SELECT = "SELECT day, working, name, source, changed_by, changed_at FROM calendar_overrides"


@dataclass(frozen=True)
class CalendarOverrideRow:
    """One decided day: a day off (``working`` False) or a working day, with its reason."""

    day: date
    working: bool
    name: str
    source: str | None
    changed_by: str
    changed_at: datetime


def _row(row: sqlite3.Row) -> CalendarOverrideRow:
    return CalendarOverrideRow(
        day=date.fromisoformat(row["day"]),
        working=bool(row["working"]),
        name=row["name"],
        source=row["source"],
        changed_by=row["changed_by"],
        changed_at=from_db_time(row["changed_at"]),
    )


class CalendarRepo:
    """Reads and writes calendar_overrides (and its generation counter) through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def put(
        self, day: date, *, working: bool, name: str, source: str | None, changed_by: str
    ) -> CalendarOverrideRow:
        """Decide ``day`` (replacing an earlier decision) and bump the generation."""
        row = CalendarOverrideRow(day, working, name, source, changed_by, utcnow())
        await self.tx.execute(
            "INSERT INTO calendar_overrides"
            " (day, working, name, source, changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (day) DO UPDATE SET working = excluded.working, name = excluded.name,"
            " source = excluded.source, changed_by = excluded.changed_by,"
            " changed_at = excluded.changed_at",
            (day.isoformat(), int(working), name, source, changed_by, to_db_time(row.changed_at)),
        )
        await self._bump()
        return row

    async def remove(self, day: date) -> bool:
        """Forget the decision on ``day`` (back to the shipped calendar); False if none."""
        removed = await self.tx.execute(
            "DELETE FROM calendar_overrides WHERE day = ?", (day.isoformat(),)
        )
        if removed:
            await self._bump()
        return removed > 0

    async def list(self, year: int | None = None) -> list[CalendarOverrideRow]:
        """Every decided day (of ``year`` if given), in date order."""
        if year is None:
            rows = await self.tx.fetchall(_SELECT + " ORDER BY day")
        else:
            rows = await self.tx.fetchall(
                _SELECT + " WHERE day >= ? AND day < ? ORDER BY day",
                (f"{year:04d}-01-01", f"{year + 1:04d}-01-01"),
            )
        return [_row(r) for r in rows]

    async def generation(self) -> int:
        """How many edits the table has had: changes whenever a row does."""
        row = await self.tx.fetchone("SELECT generation FROM calendar_state WHERE id = 1")
        return int(row[0]) if row is not None else 0

    async def _bump(self) -> None:
        await self.tx.execute("UPDATE calendar_state SET generation = generation + 1 WHERE id = 1")
