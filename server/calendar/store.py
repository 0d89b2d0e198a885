"""The calendar a process uses: loaded once from the override table, reloaded after an edit.

Due dates never read the database: :class:`CalendarSource` holds a :class:`WorkingClock` built
from the shipped corrections and the admin's rows, and :meth:`CalendarSource.refresh` reloads it
only when the table's generation moved (one small read; an edit made in this process calls it
right after its commit, an edit made by another process, such as the CLI, is seen at the next
periodic refresh). An edit is recorded in the audit chain in its own transaction.
"""

from __future__ import annotations

from datetime import date

from server.calendar.clock import WorkingClock
from server.calendar.days import ADMIN, DayDecision, WorkingDays
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped
from server.runtime.audit import record
from storage.db import Database, Tx
from storage.repos.calendar import CalendarOverrideRow, CalendarRepo


def admin_decision(row: CalendarOverrideRow) -> DayDecision:
    """A row of the override table as a decision."""
    return DayDecision(
        day=row.day,
        working=row.working,
        name=row.name,
        source=row.source,
        origin=ADMIN,
        changed_by=row.changed_by,
    )


async def load_days(tx: Tx) -> tuple[WorkingDays, int]:
    """The working days (shipped corrections, then the admin's rows) and the generation read."""
    repo = CalendarRepo(tx)
    generation = await repo.generation()
    rows = await repo.list()
    decisions = [*shipped().decisions, *(admin_decision(r) for r in rows)]
    return WorkingDays(decisions), generation


class CalendarSource:
    """The current :class:`WorkingClock` of a process, swapped whole when the table changes."""

    def __init__(self, clock: WorkingClock, generation: int) -> None:
        self.clock = clock
        self.generation = generation

    @classmethod
    async def load(cls, database: Database, hours: WorkingHours) -> CalendarSource:
        """Read the override table once."""
        async with database.reader() as tx:
            days, generation = await load_days(tx)
        return cls(WorkingClock(days, hours), generation)

    async def refresh(self, database: Database) -> bool:
        """Reload if the override table changed since the last load; True if it did."""
        async with database.reader() as tx:
            if await CalendarRepo(tx).generation() == self.generation:
                return False
            days, generation = await load_days(tx)
        self.clock = WorkingClock(days, self.clock.hours)
        self.generation = generation
        return True


async def decide(
    tx: Tx, day: date, *, working: bool, name: str, source: str | None, actor: str
) -> CalendarOverrideRow:
    """Record an admin's decision on ``day`` and its audit entry, in ``tx``."""
    row = await CalendarRepo(tx).put(
        day, working=working, name=name, source=source, changed_by=actor
    )
    await record(
        tx,
        actor,
        "calendar.on" if working else "calendar.off",
        [day.isoformat()],
        {"name": name, "source": source},
    )
    return row


async def forget(tx: Tx, day: date, *, actor: str) -> bool:
    """Remove the admin's decision on ``day`` (back to the shipped calendar), audited."""
    removed = await CalendarRepo(tx).remove(day)
    if removed:
        await record(tx, actor, "calendar.clear", [day.isoformat()])
    return removed
