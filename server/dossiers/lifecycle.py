"""The lifecycle of a dossier: the DVCQG status codes 1–10 (shared/ONE-STOP.md §2.1) as a state
machine, and which party may make which move (docs/dossiers.md, "Lifecycle").

The receiving unit (bộ phận một cửa) accepts or refuses a dossier, takes a withdrawal, the
applicant's supplement or payment at the counter and returns the result; the competent agency
processes it: asks for a supplement or a financial obligation, stops it, finishes it. A unit
that is both parties may make every move.
"""

from __future__ import annotations

from enum import Enum

from server.dossiers.errors import IllegalMove, MoveNotPermitted

LABELS = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính",
    7: "Công dân yêu cầu rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}

NEW, ACCEPTED, REFUSED, PROCESSING, SUPPLEMENT, FINANCIAL = 1, 2, 3, 4, 5, 6
WITHDRAWN, STOPPED, DONE, RETURNED = 7, 8, 9, 10

# Statuses whose dossiers are never overdue: nothing is left for the agencies to do in time.
FINAL = frozenset({REFUSED, WITHDRAWN, STOPPED, DONE, RETURNED})


class Party(Enum):
    """Who may make a move."""

    RECEIVING = "receiving unit"
    COMPETENT = "competent agency"
    EITHER = "either"


R, C, E = Party.RECEIVING, Party.COMPETENT, Party.EITHER

# from status -> {to status: who may make the move}
MOVES: dict[int, dict[int, Party]] = {
    NEW: {ACCEPTED: R, REFUSED: R, WITHDRAWN: R},
    ACCEPTED: {PROCESSING: C, SUPPLEMENT: C, FINANCIAL: C, WITHDRAWN: R, STOPPED: C},
    PROCESSING: {SUPPLEMENT: C, FINANCIAL: C, WITHDRAWN: R, STOPPED: C, DONE: C},
    SUPPLEMENT: {PROCESSING: E, WITHDRAWN: R, STOPPED: C},
    FINANCIAL: {PROCESSING: E, WITHDRAWN: R, STOPPED: C},
    DONE: {RETURNED: R},
    REFUSED: {},
    WITHDRAWN: {},
    STOPPED: {},
    RETURNED: {},
}


def allowed_moves(current: int) -> list[int]:
    """The statuses a dossier in ``current`` may move to, by anyone."""
    return sorted(MOVES.get(current, {}))


def moves_of(current: int, *, receiving: bool, competent: bool) -> list[int]:
    """The statuses the caller (receiving unit, competent agency or both) may move it to."""
    mine = []
    for status, party in MOVES.get(current, {}).items():
        if party is E or (party is R and receiving) or (party is Party.COMPETENT and competent):
            mine.append(status)
    return sorted(mine)


def check_move(current: int, wanted: int, *, receiving: bool, competent: bool) -> None:
    """Refuse an illegal move (:class:`IllegalMove`, 409) or one that is the other party's
    (:class:`MoveNotPermitted`, 403)."""
    if wanted not in MOVES.get(current, {}):
        raise IllegalMove(current, wanted, allowed_moves(current))
    mine = moves_of(current, receiving=receiving, competent=competent)
    if wanted not in mine:
        raise MoveNotPermitted(current, wanted, mine)
