"""A figure over a period, from the daily rollups: :func:`stats` (the API, its CSV, the monthly
workbook and the dashboard page all read it). The formulas are in docs/dashboard.md."""

from __future__ import annotations

import bisect
import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from server.stats.errors import AgencyOutOfReach, InvalidStatsQuery
from server.stats.figures import (
    COLUMNS,
    EDGES,
    EVERYTHING,
    FIGURES,
    LEVEL_LABELS,
    LEVELS,
    Column,
    day_of,
    is_within,
    level_of,
    median_of,
    today,
)
from storage.db import Database
from storage.repos.stats import Span, StatsRepo, Tree

OWN_COUNTERS = {
    "dossiers": (
        "received",
        "received_online",
        "finished",
        "on_time",
        "late",
        "processing_seconds",
        "electronic_results",
        "overdue_delta",
    ),
    "feedback": ("received", "answered", "answered_on_time", "rated", "satisfied"),
}
"""The counters of a group's rows by agency (the exchange has no others: all of them)."""
GROUPS = ("month", "agency", "level", "category", "procedure")
"""``category``: feedback only (its Open311 service); ``procedure``: dossiers only."""
MAX_DAYS = 3660
"""The longest period a query may span (ten years)."""
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Viewer:
    """Who asks: an agency (sees itself and the agencies under it) or an admin (everything)."""

    organ_id: str
    admin: bool = False


@dataclass(frozen=True)
class Row:
    """One row of a figure table: a month, an agency or a level, and its values."""

    key: str
    label: str
    values: dict[str, int | float | None]

    def to_json(self) -> dict[str, Any]:
        """The row as the API gives it."""
        return {"key": self.key, "label": self.label, "values": self.values}


@dataclass(frozen=True)
class StatsTable:
    """A figure group over a period, grouped by month, agency or level, with its totals."""

    figure: str
    start: date
    end: date
    group_by: str
    level: str | None
    agency: str | None
    columns: tuple[Column, ...]
    rows: list[Row] = field(default_factory=list)
    totals: dict[str, int | float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The table as ``GET /api/v1/stats/{figure}`` answers it."""
        return {
            "figure": self.figure,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "group_by": self.group_by,
            "level": self.level,
            "agency": self.agency,
            "columns": [c.to_json() for c in self.columns],
            "rows": [r.to_json() for r in self.rows],
            "totals": self.totals,
        }

    def to_csv(self) -> str:
        """The rows as CSV: ``key``, ``label`` then the columns' labels; empty for null."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["key", "label", *(c.label for c in self.columns)])
        for row in self.rows:
            values = (row.values.get(c.key) for c in self.columns)
            writer.writerow([row.key, row.label, *("" if v is None else v for v in values)])
        return out.getvalue()


def parse_date(parameter: str, text: str) -> date:
    """A ``YYYY-MM-DD`` parameter, or InvalidStatsQuery naming it."""
    if not _DATE.fullmatch(text):
        raise InvalidStatsQuery(parameter, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidStatsQuery(parameter, "is not a calendar date") from None


def default_period(on: date | None = None) -> tuple[date, date]:
    """The last 12 whole months before the month of ``on`` (today in Asia/Ho_Chi_Minh)."""
    first_of_month = (on or today()).replace(day=1)
    end = first_of_month - timedelta(days=1)
    start = date(first_of_month.year - 1, first_of_month.month, 1)
    return start, end


def check_choice(parameter: str, value: str | None, choices: Iterable[str]) -> None:
    """InvalidStatsQuery naming ``parameter`` unless ``value`` is None or one of ``choices``."""
    allowed = tuple(choices)
    if value is not None and value not in allowed:
        raise InvalidStatsQuery(parameter, f"must be one of {', '.join(allowed)}")


def check_period(start: date, end: date) -> None:
    """InvalidStatsQuery unless ``start <= end`` and the period spans at most MAX_DAYS."""
    if start > end:
        raise InvalidStatsQuery("from", "is after `to`")
    if (end - start).days >= MAX_DAYS:
        raise InvalidStatsQuery("to", f"the period spans more than {MAX_DAYS} days")


@dataclass(frozen=True)
class Scope:
    """The agencies a query covers, their names and when each was registered here."""

    root: str | None
    agencies: dict[str, str]
    registered: dict[str, date]
    levels: dict[str, str]


async def scope_of(
    database: Database, viewer: Viewer, agency: str | None, level: str | None
) -> Scope:
    """The agencies under ``agency`` (default: the viewer's own; an admin's: all) at ``level``.

    AgencyOutOfReach when ``agency`` is unknown or not the viewer's nor under it."""
    async with database.reader() as tx:
        known = await StatsRepo(tx).agencies()
    names = {organ: name for organ, name, _ in known}
    root = agency if agency is not None else (None if viewer.admin else viewer.organ_id)
    if agency is not None and (
        agency not in names or not (viewer.admin or is_within(agency, viewer.organ_id))
    ):
        raise AgencyOutOfReach(agency)
    chosen = {
        organ: name
        for organ, name in names.items()
        if (root is None or is_within(organ, root)) and (level is None or level_of(organ) == level)
    }
    registered = {o: day_of(at) for o, _, at in known if at is not None and o in chosen}
    return Scope(root, chosen, registered, {o: level_of(o) for o in chosen})


async def stats(
    database: Database,
    figure: str,
    *,
    start: date,
    end: date,
    level: str | None,
    agency: str | None,
    group_by: str,
    viewer: Viewer,
) -> StatsTable:
    """A figure group (``exchange``, ``dossiers``, ``feedback``) over ``start..end`` (inclusive,
    Asia/Ho_Chi_Minh) for ``agency`` and those under it (default the viewer's own subtree),
    optionally only at ``level``, grouped by ``month``, ``agency`` or ``level``.

    Reads only the rollups (queued changes not folded yet are not in it), summed by SQL at the
    grain the rows need. InvalidStatsQuery names a bad parameter; AgencyOutOfReach (404) an
    agency the viewer may not see."""
    check_choice("figure", figure, FIGURES)
    check_choice("level", level, LEVELS)
    check_choice("group_by", group_by, GROUPS)
    if group_by == "category" and figure != "feedback":
        raise InvalidStatsQuery("group_by", "category groups the feedback figures only")
    if group_by == "procedure" and figure != "dossiers":
        raise InvalidStatsQuery("group_by", "procedure groups the dossier figures only")
    check_period(start, end)
    scope = await scope_of(database, viewer, agency, level)
    tree = Tree(EVERYTHING if scope.root is None else scope.root, level)
    async with database.reader() as tx:
        reader = _Reader(StatsRepo(tx), figure, tree, start, end)
        if group_by == "month":
            rows, counters, active, overdue = await _month_rows(reader, scope)
        elif group_by in ("category", "procedure"):
            rows, counters, active, overdue = await _split_rows(reader, group_by)
        elif group_by == "agency":
            rows, counters, active, overdue = await _agency_rows(reader, scope)
        else:
            rows, counters, active, overdue = await _level_rows(reader, scope)
    totals = _values(
        figure,
        counters,
        connected=_connected(scope, scope.agencies, end),
        active=active,
        open_overdue=overdue,
    )
    return StatsTable(
        figure, start, end, group_by, level, scope.root, COLUMNS[figure], rows, totals
    )


Rows = tuple[list[Row], Counter[str], int, int]
"""A query's rows, and for its totals: the counters, the agencies active, the dossiers open
and overdue at the period's end."""


class _Reader:
    """The rollups of one query: its spans (whole months, cut months) and its agencies."""

    def __init__(self, repo: StatsRepo, figure: str, tree: Tree, start: date, end: date) -> None:
        self.repo, self.figure, self.tree = repo, figure, tree
        self.start, self.end = start, end

    def _spans(self, running: bool) -> list[Span]:
        return running_spans(self.end) if running else spans(self.start, self.end)

    async def tree_sums(
        self, by: str, *, counter: str | None = None, running: bool = False
    ) -> dict[str, Counter[str]]:
        """The counters of the whole scope by month (``by="month"``), by level or in one
        (key ``*``), over the period or with ``running`` over every day up to its end: the
        subtree rows of the scope's root and its own."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for span in self._spans(running):
            for key, name, total in await self.repo.tree_sums(
                self.figure, self.tree, span, by=by, counter=counter
            ):
                out[key][name] += total
        return out

    async def agency_sums(
        self, *, counter: str | None = None, running: bool = False
    ) -> dict[str, Counter[str]]:
        """The counters of each agency of the scope, over the period or up to its end."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        # not the per-procedure and per-category counters: they are not read by agency
        wanted = OWN_COUNTERS.get(self.figure) if counter is None else counter
        for span in self._spans(running):
            rows = await self.repo.agency_sums(self.figure, self.tree, span, counter=wanted)
            for organ, name, total in rows:
                counters = out[organ]
                counters[name] = counters.get(name, 0) + total
        return out

    async def active(self, by: str) -> dict[str, int]:
        """How many agencies sent or received a document in the period, by ``by`` (a column
        of the exchange only: nothing read for the others)."""
        if self.figure != "exchange":
            return {}
        return await self.repo.active(self.figure, self.tree, spans(self.start, self.end), by=by)

    async def overdue(self, by: str) -> dict[str, int]:
        """Dossiers open and overdue at the end of the period's last day, by ``by``."""
        if self.figure != "dossiers":
            return {}
        if by == "agency":
            running = await self.agency_sums(counter="overdue_delta", running=True)
        else:
            running = await self.tree_sums(by, counter="overdue_delta", running=True)
        return {key: c["overdue_delta"] for key, c in running.items()}


def running_spans(end: date) -> list[Span]:
    """Every day up to ``end``: the whole months before its month, and its month's days."""
    first = date(end.year, end.month, 1)
    before = first - timedelta(days=1)
    return [
        Span("0000-01", f"{before.year:04d}-{before.month:02d}"),
        Span(first.isoformat(), end.isoformat()),
    ]


def spans(start: date, end: date) -> list[Span]:
    """``start..end`` as whole months (one span) and the days of the months it cuts."""
    touched = months(start, end)
    whole = [m for m in touched if month_first(m) >= start and month_end(m, end) == month_last(m)]
    out = [Span(whole[0], whole[-1])] if whole else []
    for m in touched:
        if m not in whole:
            first, last = max(start, month_first(m)), month_end(m, end)
            out.append(Span(first.isoformat(), last.isoformat()))
    return out


async def _month_rows(reader: _Reader, scope: Scope) -> Rows:
    """The month rows, and the totals' counters, agencies active and open overdue."""
    by_month = await reader.tree_sums("month")
    active = await reader.active("month")
    overdue: dict[str, int] = {}
    if reader.figure == "dossiers":
        deltas = await reader.tree_sums("month", counter="overdue_delta", running=True)
        running = 0
        for month in sorted(deltas):
            running += deltas[month]["overdue_delta"]
            overdue[month] = running
    registered = sorted(scope.registered[o] for o in scope.agencies if o in scope.registered)
    rows = []
    for m in months(reader.start, reader.end):
        # the running sum at the month's end: that of the latest month with a delta before it
        at_end = max((k for k in overdue if k <= m), default=None)
        values = _values(
            reader.figure,
            by_month.get(m, Counter()),
            connected=bisect.bisect_right(registered, month_end(m, reader.end)),
            active=active.get(m, 0),
            open_overdue=0 if at_end is None else overdue[at_end],
        )
        rows.append(Row(m, f"{m[5:]}/{m[:4]}", values))
    last = max(overdue, default=None)
    anywhere = (await reader.active("*")).get("*", 0)
    return rows, _summed(by_month.values()), anywhere, 0 if last is None else overdue[last]


async def _agency_rows(reader: _Reader, scope: Scope) -> Rows:
    """One row per agency of the scope (those with nothing counted included)."""
    per_agency = await reader.agency_sums()
    overdue = await reader.overdue("agency")
    rows = []
    for organ in sorted(scope.agencies):
        counters = per_agency.get(organ, Counter())
        values = _values(
            reader.figure,
            counters,
            connected=int(scope.registered.get(organ, date.max) <= reader.end),
            active=_active_of({organ: counters}),
            open_overdue=overdue.get(organ, 0),
        )
        rows.append(Row(organ, scope.agencies[organ], values))
    totals = _summed(per_agency.values())
    return rows, totals, _active_of(per_agency), sum(overdue.values())


async def _level_rows(reader: _Reader, scope: Scope) -> Rows:
    """One row per level the scope's agencies are at."""
    by_level = await reader.tree_sums("level")
    overdue = await reader.overdue("level")
    active = await reader.active("level")
    rows = []
    for lv in sorted(set(scope.levels.values()), key=LEVELS.index):
        members = [o for o in scope.agencies if scope.levels[o] == lv]
        values = _values(
            reader.figure,
            by_level.get(lv, Counter()),
            connected=_connected(scope, members, reader.end),
            active=active.get(lv, 0),
            open_overdue=overdue.get(lv, 0),
        )
        rows.append(Row(lv, LEVEL_LABELS[lv], values))
    return rows, _summed(by_level.values()), sum(active.values()), sum(overdue.values())


async def _split_rows(reader: _Reader, group_by: str) -> Rows:
    """The feedback by category (``c:<category>:<counter>`` counters) or the dossiers by
    procedure (``p:<procedure>:<counter>``), and the totals."""
    counters = _summed((await reader.tree_sums("*")).values())
    prefix = "c:" if group_by == "category" else "p:"
    if group_by == "category":
        names = await reader.repo.category_names()
        overdue: Counter[str] = Counter()
    else:
        names = await reader.repo.procedure_names()
        running = await reader.tree_sums("*", counter="p:%:overdue_delta", running=True)
        overdue = Counter(
            {k[2:].rpartition(":")[0]: v for k, v in _summed(running.values()).items()}
        )
    split: dict[str, Counter[str]] = defaultdict(Counter)
    for name, total in counters.items():
        if name.startswith(prefix):
            code, _, counter = name[2:].rpartition(":")
            split[code][counter] += total
    rows = [
        Row(
            code,
            names.get(code, code),
            _feedback(split[code])
            if group_by == "category"
            else _dossiers(split[code], overdue.get(code, 0)),
        )
        for code in sorted(set(split) | {c for c, n in overdue.items() if n})
    ]
    totals_overdue = sum((await reader.overdue("*")).values())
    return rows, counters, 0, totals_overdue


def _summed(counters: Iterable[Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    return total


def _active_of(per_agency: Mapping[str, Counter[str]]) -> int:
    return sum(1 for c in per_agency.values() if c.get("sent", 0) or c.get("received", 0))


def _connected(scope: Scope, members: Iterable[str], at: date) -> int:
    return sum(1 for o in members if scope.registered.get(o, date.max) <= at)


def _values(
    figure: str, counters: Mapping[str, int], *, connected: int, active: int, open_overdue: int
) -> dict[str, Any]:
    if figure == "exchange":
        return _exchange(counters, connected, active)
    if figure == "dossiers":
        return _dossiers(counters, open_overdue)
    return _feedback(counters)


def months(start: date, end: date) -> list[str]:
    """The months ``YYYY-MM`` that ``start..end`` touches, in order."""
    out, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def month_first(month: str) -> date:
    """The first day of a month ``YYYY-MM``."""
    return date(int(month[:4]), int(month[5:]), 1)


def month_last(month: str) -> date:
    """The last day of a month ``YYYY-MM``."""
    return month_end(month, date.max)


def month_end(month: str, end: date) -> date:
    """The last day of ``month`` within the period ending ``end``."""
    year, number = int(month[:4]), int(month[5:])
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return min(following - timedelta(days=1), end)


def _share(part: int, whole: int) -> float | None:
    return None if whole <= 0 else part / whole


_BUCKETS = {
    prefix: tuple(f"{prefix}{i}" for i in range(len(EDGES) + 1))
    for prefix in ("ack_h", "first03_h")
}


def _histogram(counters: Mapping[str, int], prefix: str) -> dict[int, int]:
    return {i: counters[name] for i, name in enumerate(_BUCKETS[prefix]) if name in counters}


def _exchange(counters: Mapping[str, int], connected: int, active: int) -> dict[str, Any]:
    sent = counters.get("sent", 0)
    return {
        "sent": sent,
        "received": counters.get("received", 0),
        "without_paper": counters.get("without_paper", 0),
        "share_without_paper": _share(counters.get("without_paper", 0), sent),
        "signed_valid": counters.get("signed_valid", 0),
        "share_signed_valid": _share(counters.get("signed_valid", 0), sent),
        "signature_failed": counters.get("signature_failed", 0),
        "share_signature_failed": _share(counters.get("signature_failed", 0), sent),
        "median_ack_seconds": median_of(_histogram(counters, "ack_h")),
        "median_first_processing_seconds": median_of(_histogram(counters, "first03_h")),
        "agencies_connected": connected,
        "agencies_active": active,
    }


def _dossiers(counters: Mapping[str, int], open_overdue: int) -> dict[str, Any]:
    received, finished = counters.get("received", 0), counters.get("finished", 0)
    seconds = counters.get("processing_seconds", 0)
    return {
        "received": received,
        "received_online": counters.get("received_online", 0),
        "share_online": _share(counters.get("received_online", 0), received),
        "finished": finished,
        "on_time": counters.get("on_time", 0),
        "on_time_rate": _share(counters.get("on_time", 0), finished + open_overdue),
        "late": counters.get("late", 0),
        "open_overdue": open_overdue,
        "avg_processing_days": None if finished == 0 else round(seconds / finished / 86400, 2),
        "electronic_results": counters.get("electronic_results", 0),
        "share_electronic_results": _share(counters.get("electronic_results", 0), finished),
    }


def _feedback(counters: Mapping[str, int]) -> dict[str, Any]:
    received, rated = counters.get("received", 0), counters.get("rated", 0)
    return {
        "received": received,
        "answered": counters.get("answered", 0),
        "answered_on_time": counters.get("answered_on_time", 0),
        "on_time_rate": _share(counters.get("answered_on_time", 0), received),
        "rated": rated,
        "satisfied": counters.get("satisfied", 0),
        "satisfaction_rate": _share(counters.get("satisfied", 0), rated),
    }
