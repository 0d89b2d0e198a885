"""Moving a feedback through its lifecycle, reading it as one of its parties, moderating it,
and the sender's rating.

A move is checked against the move table (server/feedback/lifecycle.py), then written with its
event and audit entry in one transaction; events are append-only (triggers of migration 0027).

How to call it::

    row = await advance(database, clock, FeedbackMove(actor, code, "classified", note))
    async with database.reader() as tx:
        row = await feedback_of(tx, code, organ_id)      # FeedbackNotFound unless a party
        rows = await FeedbackRepo(tx).page(FeedbackFilter(organ_id, ...), after, limit)
    await moderate(database, Moderation(actor, code, hidden=True, reason="..."))
    await rate(database, code, token, "hai-long")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.calendar.clock import WorkingClock
from server.feedback.errors import FeedbackNotFound, InvalidFeedback, MoveRefused
from server.feedback.intake import by_token
from server.feedback.lifecycle import (
    ANSWERED,
    LABELS,
    NOTE_REQUIRED,
    PUBLISHED,
    after_move,
    check_move,
)
from server.runtime.audit import record
from storage.db import Database, Tx
from storage.ids import utcnow
from storage.repos.feedback import FeedbackRepo, FeedbackRow

MAX_NOTE = 4000
RATINGS = {"hai-long": "Hài lòng", "khong-hai-long": "Không hài lòng"}


@dataclass(frozen=True)
class FeedbackMove:
    """A move asked for by ``actor`` (an organ id): to ``status`` with ``note`` (the reason,
    the answer, what to supplement); ``agency`` re-assigns the competent agency when
    classifying."""

    actor: str
    code: str
    status: str
    note: str = ""
    agency: str | None = None


def visible(row: FeedbackRow | None, organ_id: str) -> FeedbackRow:
    """The feedback if ``organ_id`` received it or must answer it; else not found."""
    if row is None or organ_id not in (row.receiving_unit, row.agency):
        raise FeedbackNotFound("No such feedback among this agency's.")
    return row


async def feedback_of(tx: Tx, code: str, organ_id: str) -> FeedbackRow:
    """The feedback with this code, as one of its parties sees it."""
    return visible(await FeedbackRepo(tx).get(code), organ_id)


def check_fields(move: FeedbackMove) -> None:
    """A known status, a note within bounds and present where the move needs one."""
    if move.status not in LABELS:
        raise InvalidFeedback("status", f"must be one of {', '.join(LABELS)}")
    if len(move.note) > MAX_NOTE:
        raise InvalidFeedback("note", f"must be at most {MAX_NOTE} characters")
    if move.status in NOTE_REQUIRED and not move.note.strip():
        raise InvalidFeedback("note", f"is required: {NOTE_REQUIRED[move.status]}")
    if move.agency is not None and move.status != "classified":
        raise InvalidFeedback("agency", "is given only when classifying")


async def apply_move(
    tx: Tx,
    clock: WorkingClock,
    current: FeedbackRow,
    move: FeedbackMove,
    at: datetime,
    *,
    forwarding: bool = False,
    details: dict[str, object] | None = None,
) -> FeedbackRow:
    """In ``tx``: check and make the move on ``current``; the feedback after it."""
    check_move(
        current,
        move.status,
        receiving=move.actor == current.receiving_unit,
        competent=move.actor == current.agency,
        forwarding=forwarding,
    )
    after = after_move(clock, current, move.status, move.note, at)
    if move.agency is not None:
        after = after.but(agency=move.agency)
    repo = FeedbackRepo(tx)
    await repo.add_event(current.code, move.actor, at, current.status, move.status, move.note)
    await repo.update(after)
    audit: dict[str, object] = {"from": current.status, "to": move.status, "note": move.note}
    if move.agency is not None:
        audit["agency"] = move.agency
    await record(tx, move.actor, "feedback.move", [current.code], {**audit, **(details or {})})
    return after


async def advance(database: Database, clock: WorkingClock, move: FeedbackMove) -> FeedbackRow:
    """Make a plain move (not a forwarding); the feedback as it is after it."""
    check_fields(move)
    async with database.transaction() as tx:
        current = await feedback_of(tx, move.code, move.actor)
        return await apply_move(tx, clock, current, move, utcnow())


@dataclass(frozen=True)
class Moderation:
    """An officer of the receiving unit hides (or shows again) a feedback from public view
    (abuse, personal data in its text) and approves which photos the public sees."""

    actor: str
    code: str
    hidden: bool | None = None
    reason: str = ""
    approved_photos: frozenset[int] | None = None


async def moderate(database: Database, moderation: Moderation) -> FeedbackRow:
    """Apply a moderation, audited; the feedback after it."""
    m = moderation
    if m.hidden and not m.reason.strip():
        raise InvalidFeedback("reason", "is required to hide a feedback")
    if len(m.reason) > MAX_NOTE:
        raise InvalidFeedback("reason", f"must be at most {MAX_NOTE} characters")
    async with database.transaction() as tx:
        current = await feedback_of(tx, m.code, m.actor)
        if m.actor != current.receiving_unit:
            raise FeedbackNotFound("Only the receiving unit moderates a feedback.")
        repo = FeedbackRepo(tx)
        after = current
        details: dict[str, object] = {}
        if m.hidden is not None:
            after = after.but(hidden=m.hidden, hidden_reason=m.reason if m.hidden else "")
            details.update(hidden=m.hidden, reason=m.reason)
        if m.approved_photos is not None:
            numbers = {p.n for p in await repo.photos(m.code)}
            extra = sorted(m.approved_photos - numbers)
            if extra:
                raise InvalidFeedback("approved_photos", f"no photo number {extra[0]}")
            await repo.approve_photos(m.code, set(m.approved_photos))
            details["approved_photos"] = sorted(m.approved_photos)
        after = after.but(updated_at=utcnow())
        await repo.update(after)
        await record(tx, m.actor, "feedback.moderate", [m.code], details)
    return after


async def rate(database: Database, code: str, token: str, rating: str) -> FeedbackRow:
    """The sender rates the answer once (``hai-long`` or ``khong-hai-long``), through the
    private link; 409 before the answer or a second time."""
    if rating not in RATINGS:
        raise InvalidFeedback("rating", f"must be one of {', '.join(RATINGS)}")
    await by_token(database, code, token)
    async with database.transaction() as tx:
        repo = FeedbackRepo(tx)
        current = await repo.get(code)
        assert current is not None
        if current.status not in (ANSWERED, PUBLISHED):
            raise MoveRefused("A feedback is rated once answered.", [])
        if current.rating is not None:
            raise MoveRefused("This feedback was rated already.", [])
        now = utcnow()
        after = current.but(rating=rating, rated_at=now, updated_at=now)
        await repo.update(after)
        await record(tx, "citizen", "feedback.rating", [code], {"rating": rating})
    return after
