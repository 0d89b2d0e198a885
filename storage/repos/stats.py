"""The dashboard's rollups (migration 0034) and the raw rows they are computed from.

The rules (what counts, which day, which agency) live in server/stats/; this module only reads
the other domains' tables for them and stores the cells. A cell is one figure group's counters
for one day (``YYYY-MM-DD`` in Asia/Ho_Chi_Minh) and one agency; ``stats_dirty`` queues the
cells whose raw rows changed (filled by the triggers of migration 0034).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from storage.db import Tx
from storage.dialects import day_of, in_json_array, json_field

FINAL_DOSSIER_STATUSES = (3, 7, 8, 9, 10)
"""Refused, withdrawn, stopped, done, returned: the first move to one of these ends a dossier."""
RESULT_STATUSES = (9, 10)
"""Moves whose files are the dossier's result (an electronic result)."""

# `lienthong stats rebuild`: queue every cell the raw rows touch (as migration 0034 did once).
_MARK_ALL = (
    ("exchange", "received_at", "sender", "documents WHERE kind = 'document'"),
    ("exchange", "created_at", "recipient", "deliveries WHERE kind = 'document'"),
    ("dossiers", "received_at", "agency", "dossiers WHERE true"),
    ("dossiers", "due_at", "agency", "dossiers WHERE true"),
    ("dossiers", "e.at", "d.agency", "dossier_events e JOIN dossiers d ON d.code = e.dossier"),
    ("feedback", "received_at", "agency", "feedback WHERE true"),
)


def mark_all(dialect: str) -> list[str]:
    """The statements queueing every cell (a WHERE before ON CONFLICT: SQLite's parser needs
    one after a FROM)."""
    return [
        f"INSERT INTO stats_dirty SELECT '{figure}', {day_of(dialect, column)}, {agency}"  # noqa: S608 (constants)
        f" FROM {source}{' WHERE true' if 'JOIN' in source else ''} ON CONFLICT DO NOTHING"
        for figure, column, agency, source in _MARK_ALL
    ]


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

    def source(self) -> tuple[str, str, str]:
        """The table, its time column and the expression of a row's month."""
        if self.whole_months:
            return "stats_monthly", "month", "month"
        return "stats_daily", "day", "substr(day, 1, 7)"


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

    async def replace(self, cell: Cell, counters: Mapping[str, int]) -> None:
        """Store a cell's counters (zeros are not stored) and take it off the queue."""
        key = (cell.figure, cell.day, cell.agency)
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
        """Forget every rollup and queue every cell the raw rows touch (a rebuild's start)."""
        await self.tx.execute("DELETE FROM stats_daily")
        await self.tx.execute("DELETE FROM stats_monthly")
        for sql in mark_all(self.tx.dialect):
            await self.tx.execute(sql)

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

    # --- what the queries read -----------------------------------------------------------

    async def sums(
        self,
        figure: str,
        agencies: Iterable[str] | None,
        span: Span,
        *,
        by_month: bool,
        by_agency: bool,
        counter: str | None = None,
    ) -> list[tuple[str, str, str, int]]:
        """(month, agency, counter, sum) over ``span`` of ``agencies`` (None: every agency), of
        one ``counter`` if given; ``*`` stands for the month or agency not grouped by."""
        table, column, month = span.source()
        where, params = _agency_filter(self.tx.dialect, agencies, counter)
        month_key = month if by_month else "'*'"
        agency_key = "agency" if by_agency else "'*'"
        rows = await self.tx.fetchall(
            f"SELECT {month_key} AS m, {agency_key} AS a, counter, SUM(value) AS total"  # noqa: S608 (constant fragments)
            f" FROM {table} WHERE figure = ? AND {column} BETWEEN ? AND ?{where}"
            " GROUP BY m, a, counter",
            (figure, span.first, span.last, *params),
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def active(
        self, figure: str, agencies: Iterable[str] | None, span: Span, *, by_month: bool
    ) -> list[tuple[str, str]]:
        """(month or ``*``, agency) with a document sent or received over ``span``."""
        table, column, month = span.source()
        where, params = _agency_filter(self.tx.dialect, agencies, None)
        month_key = month if by_month else "'*'"
        rows = await self.tx.fetchall(
            f"SELECT DISTINCT {month_key}, agency FROM {table}"  # noqa: S608 (constant fragments)
            f" WHERE figure = ? AND {column} BETWEEN ? AND ?{where}"
            " AND counter IN ('sent', 'received') AND value > 0",
            (figure, span.first, span.last, *params),
        )
        return [(r[0], r[1]) for r in rows]

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


def _agency_filter(
    dialect: str, agencies: Iterable[str] | None, counter: str | None
) -> tuple[str, tuple[str, ...]]:
    where = ""
    params: tuple[str, ...] = ()
    if agencies is not None:
        where = f" AND agency IN {in_json_array(dialect)}"
        params = (json.dumps(sorted(set(agencies))),)
    if counter is not None:  # a LIKE pattern when it holds a %
        operator = "LIKE" if "%" in counter else "="
        where, params = f"{where} AND counter {operator} ?", (*params, counter)
    return where, params


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
