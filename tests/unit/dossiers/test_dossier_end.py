"""The end of a dossier for the on-time rate (QĐ 766/QĐ-TTg KPI 2.1): ``finishes_late``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.dossiers.moves import finishes_late

DUE = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 09:00 +07:00
AFTER, BEFORE = DUE + timedelta(seconds=1), DUE - timedelta(hours=1)


@pytest.mark.parametrize(
    ("from_status", "to_status", "at", "late"),
    [
        (4, 9, AFTER, True),  # done after the due date
        (4, 9, DUE, False),  # done at the due time: on time
        (4, 9, BEFORE, False),
        (9, 10, AFTER, False),  # returned late, but done (the end) was earlier
        (4, 10, AFTER, True),  # a result returned without a recorded 9 is the end
        (6, 10, BEFORE, False),
        (4, 8, AFTER, False),  # a stop is no late result
        (1, 3, AFTER, False),  # nor a refusal
        (5, 7, AFTER, False),  # nor a withdrawal
        (2, 4, AFTER, False),  # overdue, not ended: the lists flag it, the KPI waits
        (None, 2, AFTER, False),
    ],
)
def test_which_move_ends_a_dossier_late(
    from_status: int | None, to_status: int, at: datetime, late: bool
) -> None:
    assert finishes_late(from_status, to_status, at, DUE) is late
