"""The dashboard's rollups (migration 0034) and the raw rows they are computed from.

The rules (what counts, which day, which agency) live in server/stats/; this module only reads
the other domains' tables for them and stores the cells. A cell is one figure group's counters
for one day (``YYYY-MM-DD`` in Asia/Ho_Chi_Minh) and one agency; ``stats_dirty`` queues the
cells whose raw rows changed (filled by the triggers of migration 0034).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from storage.db import Tx
from storage.dialects import json_field

FINAL_DOSSIER_STATUSES = (3, 7, 8, 9, 10)
"""Refused, withdrawn, stopped, done, returned: the first move to one of these ends a dossier."""
RESULT_STATUSES = (9, 10)
"""Moves whose files are the dossier's result (an electronic result)."""

ROLLUP_TABLES = (
    "stats_daily",
    "stats_monthly",
    "stats_subtree_daily",
    "stats_subtree_monthly",
)
# `lienthong stats rebuild`: the agencies whose cells it computes, per figure group.
RAW_AGENCIES = {
    "exchange": "SELECT sender FROM documents WHERE kind = 'document'"
    " UNION SELECT recipient FROM deliveries WHERE kind = 'document'",
    "dossiers": "SELECT DISTINCT agency FROM dossiers",
    "feedback": "SELECT DISTINCT agency FROM feedback",
}


def _month_sums(target: str, keys: str, source: str) -> tuple[str, tuple[str, ...]]:
    """Sum a month of the daily rows of ``source`` into ``target``, by ``keys`` and counter."""
    return (
        f"INSERT INTO {target} (figure, month, {keys}, counter, value)"  # noqa: S608 (constant names)
        f" SELECT figure, ?, {keys}, counter, SUM(value) FROM {source}"
        " WHERE figure = ? AND day BETWEEN ? AND ?"
        f" GROUP BY figure, {keys}, counter HAVING SUM(value) <> 0",
        ("month", "figure", "first", "last"),
    )


# ... and the sums of one (figure, month) it recomputes from the daily rows, set-based (the fold
# keeps them cell by cell); each with the names of its parameters.
RESUM: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DELETE FROM stats_monthly WHERE figure = ? AND month = ?", ("figure", "month")),
    _month_sums("stats_monthly", "agency", "stats_daily"),
    (
        "DELETE FROM stats_subtree_daily WHERE figure = ? AND day BETWEEN ? AND ?",
        ("figure", "first", "last"),
    ),
    (
        "INSERT INTO stats_subtree_daily (figure, day, root, level, counter, value)"
        " SELECT d.figure, d.day, t.root, t.level, d.counter, SUM(d.value)"
        " FROM stats_daily d JOIN stats_tree t ON t.agency = d.agency AND t.root <> t.agency"
        " WHERE d.figure = ? AND d.day BETWEEN ? AND ?"
        " GROUP BY d.figure, d.day, t.root, t.level, d.counter HAVING SUM(d.value) <> 0",
        ("figure", "first", "last"),
    ),
    ("DELETE FROM stats_subtree_monthly WHERE figure = ? AND month = ?", ("figure", "month")),
    _month_sums("stats_subtree_monthly", "root, level", "stats_subtree_daily"),
)


_FIRST_VERDICT = (
    "EXISTS (SELECT 1 FROM stats_attachments a JOIN verification_reports v"
    " ON v.attachment_sha256 = a.sha256 WHERE a.document = d.id AND v.verdict = '{verdict}'"
    " AND v.id = (SELECT MIN(id) FROM verification_reports w"
    " WHERE w.attachment_sha256 = a.sha256))"
)


@dataclass(frozen=True)
class Span:
    """Whole months ``first..last`` (``YYYY-MM``, the monthly rollups) or days ``first..last``
    (``YYYY-MM-DD``, the daily ones)."""

    first: str
    last: str

    @property
    def whole_months(self) -> bool:
        """True for a span of whole months."""
        return len(self.first) == 7

    def source(self) -> tuple[str, str]:
        """The per-agency table and its time column."""
        if self.whole_months:
            return "stats_monthly", "month"
        return "stats_daily", "day"

    def by_agency(self, alias: str) -> str:
        """The condition on the period of a per-agency row (the table as ``alias``), with two
        ``?`` for ``first`` and ``last``. Its column is wrapped (``|| ''``) so that it cannot
        be read from an index: SQLite then seeks an agency's rows by the (figure, agency,
        counter, period) index rather than by the primary key's (figure, period) range, which
        would read every agency's rows of the period (it has no statistics to tell)."""
        _, column = self.source()
        return f"({alias}.{column} || '') BETWEEN ? AND ?"

    def month_of(self, alias: str) -> str:
        """The expression of the month of a row (of the table as ``alias``)."""
        return f"{alias}.month" if self.whole_months else f"substr({alias}.day, 1, 7)"

    def subtree_source(self) -> str:
        """The table of the subtrees' sums at this span's grain."""
        return "stats_subtree_monthly" if self.whole_months else "stats_subtree_daily"


@dataclass(frozen=True)
class Tree:
    """A query's agencies: those within ``root`` (an OrganId, or ``*`` for every agency), only
    those at ``level`` when it is given (``stats_tree``)."""

    root: str
    level: str | None = None

    def where(self, alias: str) -> tuple[str, tuple[str, ...]]:
        """The condition on ``stats_tree`` (as ``alias``) and its parameters."""
        if self.level is None:
            return f"{alias}.root = ?", (self.root,)
        return f"{alias}.root = ? AND {alias}.level = ?", (self.root, self.level)


@dataclass(frozen=True)
class Cell:
    """One rollup cell: a figure group, a day (ISO date, Asia/Ho_Chi_Minh) and an agency."""

    figure: str
    day: str
    agency: str


@dataclass(frozen=True)
class SentDocument:
    """A document as the exchange figures count it on its sender's side."""

    id: str
    document_id: str
    received_at: str
    paper: int | None
    signed_valid: bool
    signature_failed: bool


@dataclass(frozen=True)
class ReceivedDelivery:
    """A document delivered to a recipient: when it was sent, acknowledged, first given 03."""

    document: str
    document_id: str
    sender: str
    sent_at: str
    created_at: str
    acked_at: str | None
    first_03_at: str | None


@dataclass(frozen=True)
class DossierFacts:
    """What the dossier figures read of a dossier."""

    code: str
    agency: str
    procedure: str
    channel: int
    received_at: str
    due_at: str
    late: bool
    end_at: str | None
    supplements: int
    electronic_result: bool


@dataclass(frozen=True)
class FeedbackFacts:
    """What the feedback figures read of a feedback."""

    code: str
    agency: str
    category: str
    received_at: str
    answer_due: str
    answered_at: str | None
    rating: str | None


class StatsRepo:
    """The rollup tables, the dirty queue, and the raw reads the rollups are computed from."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # --- the queue and the cells -------------------------------------------------------

    async def dirty(self, limit: int) -> list[Cell]:
        """Up to ``limit`` queued cells, in (figure, agency, day) order."""
        rows = await self.tx.fetchall(
            "SELECT figure, day, agency FROM stats_dirty ORDER BY figure, agency, day LIMIT ?",
            (limit,),
        )
        return [Cell(r["figure"], r["day"], r["agency"]) for r in rows]

    async def replace(
        self, cell: Cell, counters: Mapping[str, int], *, roots: Iterable[str], level: str
    ) -> None:
        """Store a cell's counters (zeros are not stored), add what changed to the subtree rows
        of ``roots`` (the agency's ancestors and ``*``) at the agency's ``level``, and take the
        cell off the queue."""
        key = (cell.figure, cell.day, cell.agency)
        old = await self.tx.fetchall(
            "SELECT counter, value FROM stats_daily WHERE figure = ? AND day = ? AND agency = ?",
            key,
        )
        change: dict[str, int] = {name: value for name, value in counters.items() if value}
        for row in old:
            change[row[0]] = change.get(row[0], 0) - int(row[1])
        await self.tx.execute(
            "DELETE FROM stats_daily WHERE figure = ? AND day = ? AND agency = ?", key
        )
        await self.tx.executemany(
            "INSERT INTO stats_daily (figure, day, agency, counter, value) VALUES (?, ?, ?, ?, ?)",
            [(*key, name, value) for name, value in sorted(counters.items()) if value],
        )
        await self.tx.execute(
            "DELETE FROM stats_dirty WHERE figure = ? AND day = ? AND agency = ?", key
        )
        changed = sorted((name, value) for name, value in change.items() if value)
        if changed:
            for table, period in (
                ("stats_subtree_daily", cell.day),
                ("stats_subtree_monthly", cell.day[:7]),
            ):
                await self._add(table, cell.figure, period, roots, level, changed)

    async def _add(
        self,
        table: str,
        figure: str,
        period: str,
        roots: Iterable[str],
        level: str,
        changed: list[tuple[str, int]],
    ) -> None:
        column = "month" if table == "stats_subtree_monthly" else "day"
        rows = [
            (figure, period, root, level, name, value) for root in roots for name, value in changed
        ]
        await self.tx.executemany(
            f"INSERT INTO {table} (figure, {column}, root, level, counter, value)"  # noqa: S608 (constant fragments)
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (figure, root, "
            f"{column}, level, counter) DO UPDATE SET value = {table}.value + excluded.value",
            rows,
        )
        await self.tx.executemany(
            f"DELETE FROM {table} WHERE figure = ? AND {column} = ? AND root = ?"  # noqa: S608 (constant fragments)
            " AND level = ? AND counter = ? AND value = 0",
            [row[:5] for row in rows],
        )

    async def place(self, agency: str, roots: Iterable[str], level: str) -> None:
        """Record that ``agency`` (at ``level``) is within itself and each of ``roots``."""
        await self.tx.executemany(
            "INSERT INTO stats_tree (agency, root, level) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(agency, root, level) for root in (agency, *roots)],
        )
        await self.tx.execute(
            "INSERT INTO stats_agencies (agency) VALUES (?) ON CONFLICT DO NOTHING", (agency,)
        )

    async def replace_agency(
        self, figure: str, agency: str, cells: Mapping[str, Mapping[str, int]]
    ) -> None:
        """Store every day's counters of one agency and figure (``cells`` by day; a rebuild,
        which recomputes the monthly and subtree rows after) and take its cells off the queue."""
        await self.tx.execute(
            "DELETE FROM stats_daily WHERE figure = ? AND agency = ?", (figure, agency)
        )
        await self.tx.executemany(
            "INSERT INTO stats_daily (figure, day, agency, counter, value) VALUES (?, ?, ?, ?, ?)",
            [
                (figure, day, agency, name, value)
                for day, counters in sorted(cells.items())
                for name, value in sorted(counters.items())
                if value
            ],
        )
        await self.tx.execute(
            "DELETE FROM stats_dirty WHERE figure = ? AND agency = ?", (figure, agency)
        )

    async def resum(self, figure: str, month: str) -> None:
        """Recompute the monthly and subtree rows of a figure group's month ``YYYY-MM`` from
        the daily ones (a rebuild's end)."""
        values = {"figure": figure, "month": month, "first": f"{month}-01", "last": f"{month}-31"}
        for sql, keys in RESUM:
            await self.tx.execute(sql, [values[k] for k in keys])

    async def refresh_month(self, figure: str, month: str, agency: str) -> None:
        """Recompute one (figure, month ``YYYY-MM``, agency) of ``stats_monthly`` from the days."""
        key = (figure, month, agency)
        await self.tx.execute(
            "DELETE FROM stats_monthly WHERE figure = ? AND month = ? AND agency = ?", key
        )
        await self.tx.execute(
            "INSERT INTO stats_monthly (figure, month, agency, counter, value)"
            " SELECT figure, ?, agency, counter, SUM(value) FROM stats_daily"
            " WHERE figure = ? AND agency = ? AND day >= ? AND day <= ?"
            " GROUP BY figure, agency, counter HAVING SUM(value) != 0",
            (month, figure, agency, f"{month}-01", f"{month}-31"),
        )
        await self.tx.execute(
            "INSERT INTO stats_agencies VALUES (?) ON CONFLICT DO NOTHING", (agency,)
        )

    async def clear(self) -> None:
        """Forget every rollup (a rebuild's start)."""
        for table in ROLLUP_TABLES:
            await self.tx.execute(f"DELETE FROM {table}")  # noqa: S608 (constant names)

    async def raw_agencies(self, figure: str) -> list[str]:
        """Every agency the raw rows of a figure group name (the cells a rebuild computes)."""
        rows = await self.tx.fetchall(RAW_AGENCIES[figure])
        return sorted(r[0] for r in rows)

    async def queued(self) -> int:
        """How many cells wait to be folded."""
        row = await self.tx.fetchone("SELECT COUNT(*) AS n FROM stats_dirty")
        return 0 if row is None else int(row["n"])

    async def all_cells(self) -> list[tuple[str, str, str, str, int]]:
        """Every stored rollup row (figure, day, agency, counter, value), sorted."""
        rows = await self.tx.fetchall(
            "SELECT figure, day, agency, counter, value FROM stats_daily"
            " ORDER BY figure, day, agency, counter"
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    async def all_months(self) -> list[tuple[str, str, str, str, int]]:
        """Every stored monthly row (figure, month, agency, counter, value), sorted."""
        rows = await self.tx.fetchall(
            "SELECT figure, month, agency, counter, value FROM stats_monthly"
            " ORDER BY figure, month, agency, counter"
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    async def all_subtrees(self) -> list[tuple[str, str, str, str, str, int]]:
        """Every stored subtree row (figure, day or month, root, level, counter, value), the
        daily then the monthly, sorted; and the tree (agency, root, level) as rows of ``tree``."""
        out = []
        for table, column in (("stats_subtree_daily", "day"), ("stats_subtree_monthly", "month")):
            rows = await self.tx.fetchall(
                f"SELECT figure, {column}, root, level, counter, value FROM {table}"  # noqa: S608 (constant names)
                f" ORDER BY figure, {column}, root, level, counter"
            )
            out += [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
        tree = await self.tx.fetchall(
            "SELECT agency, root, level FROM stats_tree ORDER BY agency, root"
        )
        return out + [("tree", r[0], r[1], r[2], "", 0) for r in tree]

    # --- what the queries read -----------------------------------------------------------

    async def agency_sums(
        self, figure: str, tree: Tree, span: Span, *, counter: str | tuple[str, ...] | None = None
    ) -> list[tuple[str, str, int]]:
        """(agency, counter, sum) over ``span`` of each agency in ``tree``, of one ``counter``
        (a LIKE pattern when it holds ``%``) or of a few if given."""
        table, _ = span.source()
        within, params = tree.where("t")
        only, more = _counter_filter("m", counter)
        rows = await self.tx.fetchall(
            # grouped in the order the rows are read (the tree's (root, level, agency), then the
            # agency's index by counter): no sort
            f"SELECT t.agency, m.counter, SUM(m.value) FROM stats_tree t CROSS JOIN {table} m"  # noqa: S608 (constant fragments)
            f" WHERE m.figure = ? AND m.agency = t.agency AND {within}"
            f" AND {span.by_agency('m')}{only} GROUP BY t.level, t.agency, m.counter",
            (figure, *params, span.first, span.last, *more),
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def tree_sums(
        self, figure: str, tree: Tree, span: Span, *, by: str, counter: str | None = None
    ) -> list[tuple[str, str, int]]:
        """(key, counter, sum) over ``span`` of every agency in ``tree``: the subtree rows of
        its root plus the root's own rows; the key is the month (``by="month"``), the level
        (``by="level"``) or ``*``."""
        table, column = span.source()
        key = {"month": "p", "level": "lv"}.get(by, "'*'")
        within, params = tree.where("t")
        level, levels = ("", ()) if tree.level is None else (" AND s.level = ?", (tree.level,))
        own, owns = _counter_filter("m", counter)
        mine, mines = _counter_filter("s", counter)
        rows = await self.tx.fetchall(
            f"SELECT {key} AS k, counter, SUM(value) FROM ("  # noqa: S608 (constant fragments)
            f" SELECT {span.month_of('s')} AS p, s.level AS lv, s.counter, s.value"
            f" FROM {span.subtree_source()} s WHERE s.figure = ? AND s.root = ?"
            f" AND s.{column} BETWEEN ? AND ?{level}{mine}"
            f" UNION ALL SELECT {span.month_of('m')},"
            f" t.level, m.counter, m.value FROM stats_tree t CROSS JOIN {table} m"
            f" WHERE m.figure = ? AND m.agency = t.agency AND {within} AND t.agency = t.root"
            f" AND {span.by_agency('m')}{own}"
            ") AS x GROUP BY k, counter",
            (
                *(figure, tree.root, span.first, span.last, *levels, *mines),
                *(figure, *params, span.first, span.last, *owns),
            ),
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def active(
        self, figure: str, tree: Tree, spans: Iterable[Span], *, by: str
    ) -> dict[str, int]:
        """How many agencies of ``tree`` sent or received a document over ``spans``, by month
        (``by="month"``), by level (``by="level"``) or in all (key ``*``)."""
        parts, params = [], []
        within, scope = tree.where("t")
        for span in spans:
            table, _ = span.source()
            parts.append(
                f"SELECT {span.month_of('m')} AS p, t.level AS lv, m.agency"  # noqa: S608 (constant fragments)
                f" FROM stats_tree t CROSS JOIN {table} m"
                f" WHERE m.figure = ? AND m.agency = t.agency AND {within}"
                f" AND m.counter IN ('sent', 'received') AND {span.by_agency('m')}"
                " AND m.value > 0"
            )
            params += [figure, *scope, span.first, span.last]
        if not parts:
            return {}
        key = {"month": "p", "level": "lv"}.get(by, "'*'")
        rows = await self.tx.fetchall(
            f"SELECT {key} AS k, COUNT(DISTINCT agency) FROM ("  # noqa: S608 (constant fragments)
            f"{' UNION ALL '.join(parts)}) AS x GROUP BY k",
            params,
        )
        return {r[0]: int(r[1]) for r in rows}

    async def procedure_names(self) -> dict[str, str]:
        """The procedures' names by code."""
        rows = await self.tx.fetchall(
            f"SELECT code, {json_field(self.tx.dialect, 'body', 'name', checked=True)} AS name"  # noqa: S608
            " FROM procedures"
        )
        return {r["code"]: r["name"] or r["code"] for r in rows}

    async def category_names(self) -> dict[str, str]:
        """The feedback categories' names by code."""
        rows = await self.tx.fetchall("SELECT code, name FROM feedback_categories")
        return {r["code"]: r["name"] for r in rows}

    async def agencies(self) -> list[tuple[str, str, str | None]]:
        """Every agency a figure may name: (organ id, name, registered at or None).

        The agencies of this axis, and those only the rollups know (a feedback's competent
        agency hosted elsewhere)."""
        rows = await self.tx.fetchall(
            "SELECT organ_id, name, created_at FROM agencies UNION"
            " SELECT agency, agency, NULL FROM stats_agencies"
            " WHERE agency NOT IN (SELECT organ_id FROM agencies)"
        )
        return [(r[0], r[1], r[2]) for r in rows]

    # --- the raw rows ---------------------------------------------------------------------

    async def sent_documents(self, sender: str, start: str, end: str) -> list[SentDocument]:
        """Documents ``sender`` sent between the stored times ``start`` (incl.) and ``end``."""
        rows = await self.tx.fetchall(
            "SELECT d.id, d.document_id, d.received_at,"  # noqa: S608 (constant fragments)
            f" {json_field(self.tx.dialect, 'd.meta_json', 'business.paper', checked=True)}"
            " AS paper,"
            f" {_FIRST_VERDICT.format(verdict='valid')} AS signed_valid,"
            f" {_FIRST_VERDICT.format(verdict='invalid')} AS signature_failed"
            " FROM documents d WHERE d.sender = ? AND d.kind = 'document'"
            " AND d.received_at >= ? AND d.received_at < ? ORDER BY d.received_at, d.id",
            (sender, start, end),
        )
        return [_sent(r) for r in rows]

    async def received_deliveries(
        self, recipient: str, start: str, end: str
    ) -> list[ReceivedDelivery]:
        """Documents delivered to ``recipient`` between ``start`` (incl.) and ``end``."""
        rows = await self.tx.fetchall(
            "SELECT l.document_id AS document, d.document_id, d.sender, d.received_at AS sent_at,"
            " l.created_at, l.acked_at,"
            " (SELECT MIN(s.received_at) FROM statuses s WHERE s.document_id = l.document_id"
            "  AND s.sender = l.recipient AND s.code = '03') AS first_03_at"
            " FROM deliveries l JOIN documents d ON d.id = l.document_id"
            " WHERE l.recipient = ? AND l.kind = 'document'"
            " AND l.created_at >= ? AND l.created_at < ? ORDER BY l.created_at, l.id",
            (recipient, start, end),
        )
        return [
            ReceivedDelivery(
                r["document"],
                r["document_id"],
                r["sender"],
                r["sent_at"],
                r["created_at"],
                r["acked_at"],
                r["first_03_at"],
            )
            for r in rows
        ]

    async def dossiers(self, agency: str, start: str, end: str) -> list[DossierFacts]:
        """The dossiers of ``agency`` received, due or moved between the stored times ``start``
        (incl.) and ``end``: every dossier that can count on those days."""
        return await self._dossiers(
            "d.code IN (SELECT code FROM dossiers WHERE agency = ? AND received_at >= ?"
            " AND received_at < ? UNION SELECT code FROM dossiers WHERE agency = ?"
            " AND due_at >= ? AND due_at < ? UNION SELECT e.dossier FROM dossier_events e"
            " JOIN dossiers x ON x.code = e.dossier WHERE x.agency = ? AND e.at >= ?"
            " AND e.at < ?)",
            (agency, start, end) * 3,
        )

    async def dossiers_before(self, agency: str, end: str) -> list[DossierFacts]:
        """The dossiers of ``agency`` received before the stored time ``end``."""
        return await self._dossiers("d.agency = ? AND d.received_at < ?", (agency, end))

    async def _dossiers(self, where: str, params: tuple[str, ...]) -> list[DossierFacts]:
        finals = ", ".join(map(str, FINAL_DOSSIER_STATUSES))
        results = ", ".join(map(str, RESULT_STATUSES))
        rows = await self.tx.fetchall(
            "SELECT d.code, d.agency, d.procedure, d.channel, d.received_at, d.due_at, d.late,"  # noqa: S608 (constant fragments)
            " (SELECT e.at FROM dossier_events e WHERE e.dossier = d.code"
            f"  AND e.to_status IN ({finals}) ORDER BY e.id LIMIT 1) AS end_at,"
            " (SELECT COUNT(*) FROM dossier_events e WHERE e.dossier = d.code"
            "  AND e.to_status = 5) AS supplements,"
            " EXISTS (SELECT 1 FROM dossier_files f JOIN dossier_events e ON e.id = f.event"
            f"  WHERE f.dossier = d.code AND e.to_status IN ({results})) AS electronic"
            f" FROM dossiers d WHERE {where} ORDER BY d.received_at, d.code",
            params,
        )
        return [_dossier(r) for r in rows]

    async def feedback(self, agency: str, start: str, end: str) -> list[FeedbackFacts]:
        """Feedback of the competent ``agency`` received between ``start`` (incl.) and ``end``."""
        rows = await self.tx.fetchall(
            "SELECT code, agency, category, received_at, answer_due, answered_at, rating"
            " FROM feedback WHERE agency = ? AND received_at >= ? AND received_at < ?"
            " ORDER BY received_at, code",
            (agency, start, end),
        )
        return [
            FeedbackFacts(
                r["code"],
                r["agency"],
                r["category"],
                r["received_at"],
                r["answer_due"],
                r["answered_at"],
                r["rating"],
            )
            for r in rows
        ]


def _counter_filter(
    alias: str, counter: str | tuple[str, ...] | None
) -> tuple[str, tuple[str, ...]]:
    """The condition on one counter (a LIKE pattern when it holds ``%``) or on a few, or none."""
    if counter is None:
        return "", ()
    if isinstance(counter, tuple):
        return f" AND {alias}.counter IN ({', '.join('?' for _ in counter)})", counter
    operator = "LIKE" if "%" in counter else "="
    return f" AND {alias}.counter {operator} ?", (counter,)


def _sent(r: sqlite3.Row) -> SentDocument:
    paper = r["paper"]
    return SentDocument(
        r["id"],
        r["document_id"],
        r["received_at"],
        int(paper) if isinstance(paper, int | float) or str(paper).isdigit() else None,
        bool(r["signed_valid"]),
        bool(r["signature_failed"]),
    )


def _dossier(r: sqlite3.Row) -> DossierFacts:
    return DossierFacts(
        r["code"],
        r["agency"],
        r["procedure"],
        int(r["channel"]),
        r["received_at"],
        r["due_at"],
        bool(r["late"]),
        r["end_at"],
        int(r["supplements"]),
        bool(r["electronic"]),
    )
