"""Which days are working days (ngày làm việc), as tables precomputed per year.

A day is a working day when, in this order of precedence:

1. an admin decided it (the override table, ``origin`` ``admin``), else
2. a correction shipped in ``vn_overrides.json`` decides it (``origin`` ``shipped``), else
3. the ``holidays`` package's VN calendar (the version uv.lock pins): Monday to Friday and not
   a public holiday (nor a swapped day off), or a make-up Saturday it knows.

The tables (a flag per day, the count of working days before each day, the days by that count)
cover whole years and grow when a date outside them is asked for, so that every question is a
few list look-ups. A :class:`WorkingDays` never changes its decisions: a new set of decisions is
a new object.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import holidays

from server.calendar.errors import CalendarError

SHIPPED = "shipped"  # a correction in vn_overrides.json
ADMIN = "admin"  # a day decided in the override table
PACKAGE = "holidays"  # the holidays package's own calendar

# Due dates are asked for around today; beyond these years the question is a typo.
FIRST_YEAR = 1990
LAST_YEAR = 2199


@dataclass(frozen=True)
class DayDecision:
    """A day decided above the package: a day off (``working`` False) or a working day."""

    day: date
    working: bool
    name: str
    source: str | None
    origin: str  # SHIPPED or ADMIN
    unconfirmed: bool = False  # a shipped decision the Government has not confirmed yet
    changed_by: str | None = None


@dataclass(frozen=True)
class CalendarDay:
    """A day that is not an ordinary weekday or weekend day, as ``calendar show`` lists it."""

    day: date
    working: bool
    name: str
    origin: str  # PACKAGE, SHIPPED or ADMIN
    source: str | None
    unconfirmed: bool = False


@dataclass(frozen=True)
class _Tables:
    first_year: int
    last_year: int
    base: int  # ordinal of 1 January of first_year
    working: bytes  # 1 per working day, indexed by ordinal - base
    before: list[int]  # working days before each day (one more entry: after the last)
    by_rank: list[int]  # ordinals of the working days, in order


def holidays_version() -> str:
    """The version of the ``holidays`` package in use (part of the rules)."""
    return importlib.metadata.version("holidays")


class WorkingDays:
    """The working days of the VN civil-service calendar with the given decisions on top."""

    def __init__(self, decisions: Iterable[DayDecision] = ()) -> None:
        by_day: dict[date, DayDecision] = {}
        for decision in decisions:  # later wins: pass shipped ones first, then the admin's
            by_day[decision.day] = decision
        self.decisions: dict[date, DayDecision] = by_day
        self._lock = threading.Lock()
        self._tables: _Tables | None = None

    # --- questions --------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        tables = self.tables_for(day.toordinal())
        return tables.working[day.toordinal() - tables.base] == 1

    def next_working_day(self, day: date, *, include: bool = True) -> date:
        """The first working day on or after ``day`` (strictly after it without ``include``)."""
        ordinal = day.toordinal() + (0 if include else 1)
        tables = self.tables_for(ordinal)
        return date.fromordinal(self.nth_ordinal(tables.before[ordinal - tables.base]))

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (n >= 1), or the first one on or after it
        for n == 0."""
        if n < 0:
            raise CalendarError(f"{n} working days: a count of days is never negative")
        if n == 0:
            return self.next_working_day(day)
        ordinal = day.toordinal()
        tables = self.tables_for(ordinal)
        i = ordinal - tables.base
        return date.fromordinal(self.nth_ordinal(tables.before[i] + tables.working[i] + n - 1))

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in [start, end)."""
        t1 = self.tables_for(start.toordinal())
        t2 = self.tables_for(end.toordinal())
        return t2.before[end.toordinal() - t2.base] - t1.before[start.toordinal() - t1.base]

    def days_of(self, year: int) -> list[CalendarDay]:
        """The year's days off on weekdays, holidays on weekends, working weekend days and
        every decided day, with their names and where they come from."""
        check_year(year)
        base = _package_calendar(year)
        found: dict[date, CalendarDay] = {}
        for day, name in sorted(base.items()):
            found[day] = CalendarDay(
                day, False, str(name), PACKAGE, f"holidays {holidays_version()}"
            )
        for day in sorted(d for d in base.weekend_workdays if d.year == year):
            found[day] = CalendarDay(day, True, "Làm bù", PACKAGE, f"holidays {holidays_version()}")
        for day, decision in self.decisions.items():
            if day.year == year:
                found[day] = CalendarDay(
                    day,
                    decision.working,
                    decision.name,
                    decision.origin,
                    decision.source,
                    decision.unconfirmed,
                )
        return [found[d] for d in sorted(found)]

    # --- the tables -------------------------------------------------------------------------

    def tables_for(self, ordinal: int) -> _Tables:
        """Tables covering the day ``ordinal`` and at least the year after it."""
        tables = self._tables
        if tables is not None and 0 <= ordinal - tables.base < len(tables.working) - 366:
            return tables
        year = date.fromordinal(max(1, min(ordinal, date.max.toordinal()))).year
        check_year(year)
        return self._cover(year - 1, year + 2)

    def nth_ordinal(self, rank: int) -> int:
        """The ordinal of the working day that has ``rank`` working days before it."""
        if rank < 0:
            raise CalendarError("before the first year of the working-day calendar")
        tables = self._tables
        assert tables is not None
        if rank >= len(tables.by_rank):
            # At least 200 working days a year: one rebuild reaches far enough.
            years = (rank - len(tables.by_rank)) // 200 + 1
            if tables.last_year + years > LAST_YEAR + 1:
                raise CalendarError(
                    f"beyond the last year of the working-day calendar ({LAST_YEAR})"
                )
            tables = self._cover(tables.first_year, tables.last_year + years)
        return tables.by_rank[rank]

    def _cover(self, first: int, last: int) -> _Tables:
        with self._lock:
            tables = self._tables
            if tables is not None:
                first, last = min(tables.first_year, first), max(tables.last_year, last)
            first, last = max(first, FIRST_YEAR), min(last, LAST_YEAR + 1)
            if tables is None or (first, last) != (tables.first_year, tables.last_year):
                tables = self._build(first, last)
                self._tables = tables
            return tables

    def _build(self, first_year: int, last_year: int) -> _Tables:
        base = date(first_year, 1, 1).toordinal()
        end = date(last_year + 1, 1, 1).toordinal()
        package = _package_calendar(range(first_year, last_year + 1))
        make_up = set(package.weekend_workdays)
        working = bytearray(end - base)
        for ordinal in range(base, end):
            day = date.fromordinal(ordinal)
            decision = self.decisions.get(day)
            if decision is not None:
                is_working = decision.working
            elif day in make_up:
                is_working = True
            else:
                is_working = day.weekday() < 5 and day not in package
            working[ordinal - base] = is_working
        before = [0] * (len(working) + 1)
        by_rank: list[int] = []
        count = 0
        for i, flag in enumerate(working):
            before[i] = count
            if flag:
                by_rank.append(base + i)
                count += 1
        before[len(working)] = count
        return _Tables(first_year, last_year, base, bytes(working), before, by_rank)


def check_year(year: int) -> None:
    """CalendarError unless ``year`` is within the calendar's years."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarError(
            f"year {year} is outside the working-day calendar ({FIRST_YEAR}–{LAST_YEAR})"
        )


def _package_calendar(years: int | Iterable[int]) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=years, language="vi")
