"""The lifecycle of a feedback: its statuses, the move table, who may make each move, and its
working-day limits (docs/feedback.md, "Lifecycle").

Two parties: the receiving unit (``R``, which took the feedback in, classifies, forwards and
publishes) and the competent agency (``C``, which must answer); a unit that is both may make
every move. The limits, in working days of the shared calendar (server/calendar/):

- classify within 2 working days of receipt;
- transfer to the competent agency within 5 working days of receipt (NĐ 20/2008 Art. 9);
- answer within 15 working days of receipt, or of the last transfer (the supplement pause
  pushes it by the working time the pause took);
- publish within 2 working days of the answer.

How to call it::

    check_move(row.status, "classified", receiving=True, competent=False)  # or a refusal
    flags = overdue_flags(row, utcnow())   # {"classify": False, "transfer": True, ...}
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from server.calendar.clock import WorkingClock
from server.feedback.errors import MoveNotPermitted, MoveRefused
from storage.repos.feedback import OPEN_FOR_ANSWER, FeedbackRow

RECEIVED = "received"
CLASSIFIED = "classified"
NOT_ACCEPTED = "not_accepted"
TRANSFERRED = "transferred"
PROCESSING = "processing"
SUPPLEMENT = "supplement"
ANSWERED = "answered"
PUBLISHED = "published"

LABELS = {
    RECEIVED: "Đã tiếp nhận",
    CLASSIFIED: "Đã phân loại, thụ lý",
    NOT_ACCEPTED: "Không thụ lý",
    TRANSFERRED: "Đã chuyển cơ quan có thẩm quyền",
    PROCESSING: "Đang xử lý",
    SUPPLEMENT: "Chờ bổ sung thông tin",
    ANSWERED: "Đã trả lời",
    PUBLISHED: "Đã công khai",
}

CLASSIFY_DAYS = 2
TRANSFER_DAYS = 5
ANSWER_DAYS = 15
PUBLISH_DAYS = 2


class Party(Enum):
    """Who may make a move."""

    RECEIVING = "receiving unit"
    COMPETENT = "competent agency"
    EITHER = "either"


R, C, E = Party.RECEIVING, Party.COMPETENT, Party.EITHER

# from status -> {to status: who may make it}. ``transferred`` is made by forwarding the
# feedback over the axis (server/feedback/forwarding.py), never by a plain move.
MOVES: dict[str, dict[str, Party]] = {
    RECEIVED: {CLASSIFIED: R, NOT_ACCEPTED: R},
    CLASSIFIED: {TRANSFERRED: R, PROCESSING: C, SUPPLEMENT: C, ANSWERED: C},
    TRANSFERRED: {PROCESSING: C, SUPPLEMENT: C, ANSWERED: C},
    PROCESSING: {SUPPLEMENT: C, ANSWERED: C},
    SUPPLEMENT: {PROCESSING: E},
    ANSWERED: {PUBLISHED: R},
    NOT_ACCEPTED: {},
    PUBLISHED: {},
}
# Moves whose note is required: the reason of a refusal, the answer, what to supplement.
NOTE_REQUIRED = {NOT_ACCEPTED: "the reason", ANSWERED: "the answer", SUPPLEMENT: "what is missing"}


def allowed_moves(current: str) -> list[str]:
    """The statuses a feedback in ``current`` may move to, by anyone."""
    return sorted(MOVES.get(current, {}))


def moves_of(current: str, *, receiving: bool, competent: bool) -> list[str]:
    """The statuses the caller (receiving unit, competent agency or both) may move it to."""
    return sorted(
        status
        for status, party in MOVES.get(current, {}).items()
        if party is E or (party is R and receiving) or (party is C and competent)
    )


def check_move(
    row: FeedbackRow, wanted: str, *, receiving: bool, competent: bool, forwarding: bool = False
) -> None:
    """Refuse an illegal move (:class:`MoveRefused`, 409), a second supplement request (409),
    a plain move to ``transferred`` (409: forward it) or the other party's move (403)."""
    allowed = allowed_moves(row.status)
    if wanted not in allowed:
        raise MoveRefused(f"From {row.status}, feedback cannot move to {wanted}.", allowed)
    if wanted == TRANSFERRED and not forwarding:
        raise MoveRefused("A feedback is transferred by forwarding it to the agency.", allowed)
    if wanted == SUPPLEMENT and row.supplements >= 1:
        raise MoveRefused("The sender was asked to supplement once already.", allowed)
    mine = moves_of(row.status, receiving=receiving, competent=competent)
    if wanted not in mine:
        raise MoveNotPermitted(f"From {row.status}, this agency may not move it to {wanted}.", mine)


def overdue_flags(row: FeedbackRow, now: datetime) -> dict[str, bool]:
    """Which limits the feedback has passed without the move they ask for."""
    return {
        "classify": row.status == RECEIVED and now > row.classify_due,
        "transfer": row.status in (RECEIVED, CLASSIFIED)
        and row.agency != row.receiving_unit
        and now > row.transfer_due,
        "answer": row.status in OPEN_FOR_ANSWER and row.paused_at is None and now > row.answer_due,
        "publish": row.status == ANSWERED and row.publish_due is not None and now > row.publish_due,
    }


def after_move(
    clock: WorkingClock, row: FeedbackRow, wanted: str, note: str, at: datetime
) -> FeedbackRow:
    """The feedback as a move to ``wanted`` at ``at`` leaves it: its limits, pause, answer."""
    changes: dict[str, object] = {"status": wanted, "updated_at": at}
    if wanted == TRANSFERRED:
        changes["answer_due"] = clock.due_at(at, ANSWER_DAYS)
    elif wanted == SUPPLEMENT:
        changes["paused_at"] = at
        changes["supplements"] = row.supplements + 1
    elif row.status == SUPPLEMENT and row.paused_at is not None:
        paused = clock.working_time_between(row.paused_at, at)
        changes["answer_due"] = clock.add_working_time(row.answer_due, paused)
        changes["paused_at"] = None
    if wanted == ANSWERED:
        changes["answer"] = note
        changes["answered_at"] = at
        changes["publish_due"] = clock.due_at(at, PUBLISH_DAYS)
    elif wanted == PUBLISHED:
        changes["published_at"] = at
    return row.but(**changes)
