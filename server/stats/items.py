"""The drill-down: the records one cell of a figure counts (documents, dossiers, feedback), read
from the raw rows by the same rules as the rollups (docs/dashboard.md, "Drill-down")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.stats.errors import InvalidStatsQuery
from server.stats.figures import COLUMNS, LEVELS, bucket, day_bounds, day_of, seconds_between
from server.stats.query import Viewer, check_choice, check_period, scope_of
from server.stats.rollups import SATISFIED
from storage.db import Database
from storage.repos.stats import DossierFacts, FeedbackFacts, SentDocument, StatsRepo

_SENT_SIDE = {"sent", "without_paper", "signed_valid", "signature_failed"}
_SHARES = {
    "share_without_paper": "without_paper",
    "share_signed_valid": "signed_valid",
    "share_signature_failed": "signature_failed",
    "share_online": "received_online",
    "on_time_rate": "on_time",
    "share_electronic_results": "electronic_results",
    "satisfaction_rate": "satisfied",
    "avg_processing_days": "finished",
}


SCOPES = ("subtree", "own")
"""``subtree``: the agency and those under it (what a month's point or a total counts);
``own``: the agency alone (what a bar per agency counts)."""


@dataclass(frozen=True)
class ItemFilter:
    """Which records a drill-down lists, as the cell clicked counts them.

    ``agency`` (default: the viewer's own subtree; an admin's: every agency) with ``scope``
    ``subtree`` or ``own``; ``level`` keeps the agencies at that level (a bar per level);
    ``procedure`` (dossiers) and ``category`` (feedback) a bar per procedure or category."""

    agency: str | None = None
    scope: str = "subtree"
    level: str | None = None
    procedure: str | None = None
    category: str | None = None

    def check(self, figure: str) -> None:
        """InvalidStatsQuery naming the first parameter that does not apply or is unknown."""
        check_choice("scope", self.scope, SCOPES)
        check_choice("level", self.level, LEVELS)
        if self.scope == "own" and self.agency is None:
            raise InvalidStatsQuery("scope", "`own` needs `agency`: the agency whose own records")
        if self.procedure is not None and figure != "dossiers":
            raise InvalidStatsQuery("procedure", "applies to the dossiers only")
        if self.category is not None and figure != "feedback":
            raise InvalidStatsQuery("category", "applies to the feedback only")


@dataclass(frozen=True)
class Item:
    """One counted record: its sort key (time, id) and what the API shows of it."""

    at: str
    id: str
    body: dict[str, Any]

    @property
    def cursor(self) -> str:
        """The ``after`` value that lists the items after this one."""
        return f"{self.at}|{self.id}"


async def items(
    database: Database,
    figure: str,
    *,
    start: date,
    end: date,
    where: ItemFilter,
    column: str,
    viewer: Viewer,
    after: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """The records counted in ``column`` of ``figure`` for the agencies ``where`` chooses over
    ``start..end``, in (time, id) order after the cursor ``after``; and the next cursor. Their
    number is the value of the cell that counts them (a bar per agency: ``scope="own"``; per
    level: ``level``; per procedure or category: ``procedure``, ``category``; a month or the
    totals: the subtree).

    A share's or an average's cell lists the records of its numerator (``on_time_rate``: the
    dossiers on time; ``avg_processing_days``: the dossiers finished); a median's, the
    deliveries it was read from."""
    if figure not in COLUMNS:
        raise InvalidStatsQuery("figure", "must be one of exchange, dossiers, feedback")
    if column not in {c.key for c in COLUMNS[figure]} or column in {
        "agencies_connected",
        "agencies_active",
    }:
        raise InvalidStatsQuery("column", f"is not a column of {figure} with records behind it")
    check_period(start, end)
    where.check(figure)
    scope = await scope_of(database, viewer, where.agency, where.level)
    organs = sorted(scope.agencies)
    if where.scope == "own":
        organs = [o for o in organs if o == where.agency]
    wanted = _SHARES.get(column, column)
    if figure == "feedback" and column == "on_time_rate":
        wanted = "answered_on_time"
    first, _ = day_bounds(start)
    _, last = day_bounds(end)
    found: list[Item] = []
    async with database.reader() as tx:
        repo = StatsRepo(tx)
        for organ in organs:
            if figure == "exchange":
                found += await _exchange(repo, organ, wanted, first, last)
            elif figure == "dossiers":
                dossiers = await repo.dossiers_before(organ, last)
                chosen = (d for d in dossiers if where.procedure in (None, d.procedure))
                found += _dossiers(chosen, wanted, start, end)
            else:
                feedback = await repo.feedback(organ, first, last)
                found += _feedback(
                    (f for f in feedback if where.category in (None, f.category)), wanted
                )
    found.sort(key=lambda i: (i.at, i.id))
    if after is not None:
        found = [i for i in found if (i.at, i.id) > tuple(after.split("|", 1))]
    page = found[:limit]
    return [i.body for i in page], (page[-1].cursor if len(found) > limit else None)


async def _exchange(repo: StatsRepo, organ: str, wanted: str, first: str, last: str) -> list[Item]:
    if wanted in _SENT_SIDE:
        docs = await repo.sent_documents(organ, first, last)
        return [
            Item(
                d.received_at,
                d.id,
                {
                    "id": d.id,
                    "document_id": d.document_id,
                    "agency": organ,
                    "sent_at": d.received_at,
                    "value": {"paper": d.paper, "signed_valid": d.signed_valid}
                    if wanted != "signature_failed"
                    else {"signature_failed": True},
                },
            )
            for d in docs
            if _sent_kept(d, wanted)
        ]
    out = []
    for d in await repo.received_deliveries(organ, first, last):
        at = {"median_ack_seconds": d.acked_at, "median_first_processing_seconds": d.first_03_at}
        if wanted in at and at[wanted] is None:
            continue
        value = None if wanted == "received" else seconds_between(d.sent_at, at[wanted] or "")
        out.append(
            Item(
                d.created_at,
                d.document,
                {
                    "id": d.document,
                    "document_id": d.document_id,
                    "agency": organ,
                    "sender": d.sender,
                    "sent_at": d.sent_at,
                    "acked_at": d.acked_at,
                    "first_03_at": d.first_03_at,
                    "value": value,
                    "bucket": None if value is None else bucket(value),
                },
            )
        )
    return out


def _dossiers(dossiers: Iterable[DossierFacts], wanted: str, start: date, end: date) -> list[Item]:
    out = []
    period_end = day_bounds(end)[1]
    for d in dossiers:
        ended = None if d.end_at is None else day_of(d.end_at)
        in_period = ended is not None and start <= ended <= end
        on_time = not d.late and d.supplements <= 1
        keep = {
            "received": start <= day_of(d.received_at) <= end,
            "received_online": start <= day_of(d.received_at) <= end and d.channel == 2,
            "finished": in_period,
            "on_time": in_period and on_time,
            "late": in_period and not on_time,
            "electronic_results": in_period and d.electronic_result,
            "open_overdue": day_of(d.due_at) <= end and (ended is None or ended > end),
        }[wanted]
        if not keep:
            continue
        days = None if d.end_at is None else seconds_between(d.received_at, d.end_at) / 86400
        out.append(
            Item(
                d.received_at,
                d.code,
                {
                    "code": d.code,
                    "agency": d.agency,
                    "procedure": d.procedure,
                    "received_at": d.received_at,
                    "due_at": d.due_at,
                    "end_at": d.end_at,
                    "supplements": d.supplements,
                    "late": d.late,
                    "value": round(days, 2) if days is not None else None,
                    "open_at": None if d.end_at is not None else period_end,
                },
            )
        )
    return out


def _feedback(feedback: Iterable[FeedbackFacts], wanted: str) -> list[Item]:
    return [
        Item(
            f.received_at,
            f.code,
            {
                "code": f.code,
                "agency": f.agency,
                "category": f.category,
                "received_at": f.received_at,
                "answer_due": f.answer_due,
                "answered_at": f.answered_at,
                "rating": f.rating,
                "value": 1,
            },
        )
        for f in feedback
        if _feedback_kept(f, wanted)
    ]


def _sent_kept(doc: SentDocument, wanted: str) -> bool:
    if wanted == "without_paper":
        return doc.paper != 1
    if wanted == "signed_valid":
        return doc.signed_valid
    if wanted == "signature_failed":
        return doc.signature_failed
    return True


def _feedback_kept(item: FeedbackFacts, wanted: str) -> bool:
    if wanted == "answered":
        return item.answered_at is not None
    if wanted == "answered_on_time":
        return item.answered_at is not None and item.answered_at <= item.answer_due
    if wanted == "rated":
        return item.rating is not None
    if wanted == "satisfied":
        return item.rating == SATISFIED
    return True
