"""The daily rollups: a cell's counters computed from the raw rows, the fold of the queued cells
and the rebuild of them all (docs/dashboard.md, "Rollups").

The triggers of migration 0034 queue a (figure, day, agency) cell in the same transaction as
the change that touches it; :func:`fold` (one worker, ``StatsFolder`` in server/app/lifetimes.py)
recomputes queued cells from the raw rows in one write transaction each batch, so a cell is
always exactly what its raw rows say once the queue is empty. :func:`rebuild` queues every cell
and folds them all: the incremental and the rebuilt rollups are computed by the same function
(:func:`cell_counters`) and differ only if a trigger missed a change, which the tests check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date

from server.stats.figures import bucket, day_bounds, day_of, seconds_between
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
            for cell in cells:
                await repo.replace(cell, await cell_counters(repo, cell))
            for figure, month, agency in sorted({(c.figure, c.day[:7], c.agency) for c in cells}):
                await repo.refresh_month(figure, month, agency)
        done += len(cells)
        if len(cells) < batch:
            return done


async def rebuild(database: Database) -> int:
    """Forget every rollup, recompute all from the raw rows; how many cells."""
    async with database.transaction() as tx:
        await StatsRepo(tx).clear()
    return await fold(database)


async def cell_counters(repo: StatsRepo, cell: Cell) -> Counter[str]:
    """The counters of one cell, from the raw rows."""
    day = date.fromisoformat(cell.day)
    if cell.figure == "exchange":
        return await _exchange(repo, cell.agency, day)
    if cell.figure == "dossiers":
        counters: Counter[str] = Counter()
        for dossier in await repo.dossiers(cell.agency, *day_bounds(day)):
            for at, name, value in dossier_contributions(dossier):
                if at == day:
                    counters[name] += value
                    counters[procedure_counter(dossier.procedure, name)] += value
        return counters
    start, end = day_bounds(day)
    return feedback_counters(await repo.feedback(cell.agency, start, end))


async def _exchange(repo: StatsRepo, agency: str, day: date) -> Counter[str]:
    start, end = day_bounds(day)
    counters: Counter[str] = Counter()
    for doc in await repo.sent_documents(agency, start, end):
        counters["sent"] += 1
        counters["without_paper"] += doc.paper != 1
        counters["signed_valid"] += doc.signed_valid
        counters["signature_failed"] += doc.signature_failed
    for delivery in await repo.received_deliveries(agency, start, end):
        counters["received"] += 1
        if delivery.acked_at is not None:
            counters[f"ack_h{bucket(seconds_between(delivery.sent_at, delivery.acked_at))}"] += 1
        if delivery.first_03_at is not None:
            seconds = seconds_between(delivery.sent_at, delivery.first_03_at)
            counters[f"first03_h{bucket(seconds)}"] += 1
    return counters


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
