"""The daily rollups: a cell's counters computed from the raw rows, the fold of the queued cells
and the rebuild of them all (docs/dashboard.md, "How the figures are kept").

The triggers of migration 0034 queue a (figure, day, agency) cell in the same transaction as
the change that touches it; :func:`fold` (one worker, ``StatsFolder`` in server/app/lifetimes.py)
recomputes queued cells from the raw rows in one write transaction each batch and adds what
changed to the rows of the agency's OrganId ancestors and of the whole tree (migration 0040), so
a cell and every sum it is in are exactly what the raw rows say once the queue is empty.
:func:`rebuild` recomputes every cell agency by agency and the sums by GROUP BY: the incremental
and the rebuilt rollups come from the same counters (:func:`agency_counters`) and differ only if
a trigger missed a change or a difference was mis-added, which the tests check.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date

from server.stats.figures import (
    FIGURES,
    bucket,
    day_bounds,
    day_of,
    level_of,
    roots_of,
    seconds_between,
)
from storage.db import Database
from storage.repos.stats import Cell, DossierFacts, FeedbackFacts, StatsRepo

BATCH = 200
"""Cells folded per write transaction (the writer is shared: keep each short)."""
SATISFIED = "hai-long"
"""The feedback rating that counts as satisfied (server/feedback/moves.py RATINGS)."""


async def fold(database: Database, *, batch: int = BATCH) -> int:
    """Recompute the queued cells from the raw rows until the queue is empty; how many."""
    done = 0
    while True:
        async with database.transaction() as tx:
            repo = StatsRepo(tx)
            cells = await repo.dirty(batch)
            for agency in sorted({c.agency for c in cells}):
                await repo.place(agency, roots_of(agency), level_of(agency))
            for cell in cells:
                counters = await cell_counters(repo, cell)
                roots, level = roots_of(cell.agency), level_of(cell.agency)
                await repo.replace(cell, counters, roots=roots, level=level)
            for figure, month, agency in sorted({(c.figure, c.day[:7], c.agency) for c in cells}):
                await repo.refresh_month(figure, month, agency)
        done += len(cells)
        if len(cells) < batch:
            return done


async def rebuild(database: Database) -> int:
    """Forget every rollup and recompute all from the raw rows; how many cells.

    Set-based rather than cell by cell: each agency's cells of a figure group come from one
    read of its raw rows (in the write transaction that stores them, so a change committed
    meanwhile is either in it or queued after it), then the monthly and subtree sums from the
    daily rows by GROUP BY. The counters are those of :func:`agency_counters`, as the fold's."""
    async with database.transaction() as tx:
        await StatsRepo(tx).clear()
    cells = 0
    for figure in FIGURES:
        async with database.reader() as tx:
            agencies = await StatsRepo(tx).raw_agencies(figure)
        months: set[str] = set()
        for agency in agencies:
            async with database.transaction() as tx:
                repo = StatsRepo(tx)
                by_day = await agency_counters(repo, figure, agency, EVER)
                await repo.place(agency, roots_of(agency), level_of(agency))
                await repo.replace_agency(figure, agency, by_day)
            cells += sum(1 for counters in by_day.values() if any(counters.values()))
            months.update(day[:7] for day in by_day)
        for month in sorted(months):  # one transaction each: a month's sums are whole or old
            async with database.transaction() as tx:
                await StatsRepo(tx).resum(figure, month)
    return cells + await fold(database)


EVER = ("0000", "9999")
"""Stored-time bounds around every stored time (``YYYY-...`` text)."""


async def cell_counters(repo: StatsRepo, cell: Cell) -> Counter[str]:
    """The counters of one cell, from the raw rows."""
    by_day = await agency_counters(
        repo, cell.figure, cell.agency, day_bounds(date.fromisoformat(cell.day))
    )
    return by_day.get(cell.day, Counter())


async def agency_counters(
    repo: StatsRepo, figure: str, agency: str, bounds: tuple[str, str]
) -> dict[str, Counter[str]]:
    """The counters of one agency's cells of a figure group, by day (``YYYY-MM-DD``), from
    the raw rows between the stored times ``bounds`` (what the cell's day is read from: a
    document's sending, a delivery's making, a dossier's receipt, due day or events, a
    feedback's receipt). The days outside ``bounds`` a dossier also touches are included."""
    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    if figure == "exchange":
        for doc in await repo.sent_documents(agency, *bounds):
            counters = by_day[day_of(doc.received_at).isoformat()]
            counters["sent"] += 1
            counters["without_paper"] += doc.paper != 1
            counters["signed_valid"] += doc.signed_valid
            counters["signature_failed"] += doc.signature_failed
        for delivery in await repo.received_deliveries(agency, *bounds):
            counters = by_day[day_of(delivery.created_at).isoformat()]
            counters["received"] += 1
            if delivery.acked_at is not None:
                seconds = seconds_between(delivery.sent_at, delivery.acked_at)
                counters[f"ack_h{bucket(seconds)}"] += 1
            if delivery.first_03_at is not None:
                seconds = seconds_between(delivery.sent_at, delivery.first_03_at)
                counters[f"first03_h{bucket(seconds)}"] += 1
    elif figure == "dossiers":
        every = bounds == EVER  # every dossier of the agency: the cheaper read
        dossiers = (
            repo.dossiers_before(agency, EVER[1]) if every else repo.dossiers(agency, *bounds)
        )
        for dossier in await dossiers:
            for at, name, value in dossier_contributions(dossier):
                counters = by_day[at.isoformat()]
                counters[name] += value
                counters[procedure_counter(dossier.procedure, name)] += value
    else:
        days: dict[str, list[FeedbackFacts]] = defaultdict(list)
        for item in await repo.feedback(agency, *bounds):
            days[day_of(item.received_at).isoformat()].append(item)
        for day, items in days.items():
            by_day[day] = feedback_counters(items)
    return by_day


def dossier_contributions(dossier: DossierFacts) -> Iterable[tuple[date, str, int]]:
    """What one dossier adds to which day's counters (docs/dashboard.md, "Dossiers")."""
    received = day_of(dossier.received_at)
    yield received, "received", 1
    if dossier.channel == 2:
        yield received, "received_online", 1
    due = day_of(dossier.due_at)
    ended = None if dossier.end_at is None else day_of(dossier.end_at)
    if dossier.end_at is not None and ended is not None:
        yield ended, "finished", 1
        on_time = not dossier.late and dossier.supplements <= 1
        yield ended, "on_time" if on_time else "late", 1
        yield (
            ended,
            "processing_seconds",
            round(seconds_between(dossier.received_at, dossier.end_at)),
        )
        if dossier.electronic_result:
            yield ended, "electronic_results", 1
    # Open and overdue at the end of a day T: due on a day <= T and not ended by T's end. The
    # running sum of these deltas up to T counts exactly those.
    if ended is None or ended > due:
        yield due, "overdue_delta", 1
        if ended is not None:
            yield ended, "overdue_delta", -1


def feedback_counters(items: Iterable[FeedbackFacts]) -> Counter[str]:
    """The feedback counters of a day's feedback (docs/dashboard.md, "Feedback"): each also
    per category, as ``c:<category>:<counter>``."""
    counters: Counter[str] = Counter()
    for item in items:
        own: Counter[str] = Counter(received=1)
        if item.answered_at is not None:
            own["answered"] += 1
            own["answered_on_time"] += item.answered_at <= item.answer_due
        if item.rating is not None:
            own["rated"] += 1
            own["satisfied"] += item.rating == SATISFIED
        counters.update(own)
        counters.update({category_counter(item.category, k): v for k, v in own.items()})
    return counters


def procedure_counter(procedure: str, counter: str) -> str:
    """The name of a dossier counter of one procedure."""
    return f"p:{procedure}:{counter}"


def category_counter(category: str, counter: str) -> str:
    """The name of a feedback counter of one category."""
    return f"c:{category}:{counter}"
