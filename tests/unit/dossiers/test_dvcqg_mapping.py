"""What the DVCQG sync sends for each of our statuses 1–10 (docs/dossiers.md, "Statuses sent"):
one case per row of the table, rendered by the pure functions of server/dossiers/dvcqg.py from a
dossier whose history leads to that status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.dossiers.dvcqg import DossierView, render_dossier, render_steps
from storage.repos.dossiers import ApologyRow, DossierEventRow, DossierRow

UNIT, AGENCY = "000.05.31.H41", "000.00.31.H41"
RECEIVED = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)  # Mon 09/03/2026 09:00 +07:00
DUE = datetime(2026, 3, 12, 2, 0, tzinfo=UTC)  # Thu 12/03/2026 09:00 +07:00
HOUR = timedelta(hours=1)


def view(path: list[int], *, due_at: datetime = DUE, **extra: Any) -> DossierView:
    """A dossier received at RECEIVED, then moved along ``path`` an hour apart."""
    events, before = [], None
    for i, status in enumerate(path):
        events.append(DossierEventRow(i + 1, UNIT, RECEIVED + i * HOUR, before, status, "", due_at))
        before = status
    dossier = DossierRow(
        code=f"{UNIT}-260309-0001", receiving_unit=UNIT, day="2026-03-09", seq=1,
        procedure="1.001193", agency=AGENCY, channel=1, status=path[-1],
        applicant={"name": "Nguyễn Văn An", "id_number": "040203001234", "phone": "0912345678"},
        received_at=RECEIVED, due_at=due_at, paused_at=None, idempotency_key=None,
        created_at=RECEIVED, updated_at=RECEIVED + len(path) * HOUR,
    )  # fmt: skip
    return DossierView(dossier, None, [], events, {}, **extra)


def at(hours: int) -> str:
    """The DVCQG date of RECEIVED + ``hours`` (yyyyMMddHHmmss, +07:00)."""
    return (RECEIVED + hours * HOUR + timedelta(hours=7)).strftime("%Y%m%d%H%M%S")


# status: (the path to it, NgayKetThucXuLy, NgayTra, NgayTuChoi, supplement requests)
ROWS = {
    1: ([1], "", "", "", 0),
    2: ([2], "", "", "", 0),
    3: ([1, 3], at(1), "", at(1), 0),
    4: ([2, 4], "", "", "", 0),
    5: ([2, 4, 5], "", "", "", 1),
    6: ([2, 4, 6], "", "", "", 0),
    7: ([2, 7], at(1), "", "", 0),
    8: ([2, 4, 8], at(2), "", "", 0),
    9: ([2, 4, 9], at(2), "", "", 0),
    10: ([2, 4, 9, 10], at(2), at(3), "", 0),
}


@pytest.mark.parametrize("status", sorted(ROWS))
def test_each_status_as_sent(status: int) -> None:
    path, ended, returned, refused, supplements = ROWS[status]
    v = view(path)
    item = render_dossier(v)
    assert item["TrangThaiHoSo"] == str(status)  # our codes are the portal's
    assert item["NgayKetThucXuLy"] == ended
    assert item["NgayTra"] == returned
    assert item["NgayTuChoi"] == refused
    assert len(item["DanhSachHoSoBoSung"]) == supplements
    assert item["NgayTiepNhan"] == at(0) and item["NgayHenTra"] == "20260312090000"
    steps = render_steps(v)
    assert [s["TrangThai"] for s in steps] == [str(s) for s in path]  # one step per move
    assert steps[-1]["ThoiDiemXuLy"] == at(len(path) - 1)


def test_a_withdrawal_before_acceptance_ends_no_processing() -> None:
    """QĐ 766: a withdrawal ends only a dossier that had been accepted."""
    assert render_dossier(view([1, 7]))["NgayKetThucXuLy"] == ""


def test_the_supplement_sends_the_due_dates_before_and_after_it() -> None:
    v = view([2, 4, 5, 4])
    moved = DUE + timedelta(hours=26)
    events = list(v.events)
    events[3] = DossierEventRow(4, AGENCY, RECEIVED + 3 * HOUR, 5, 4, "Đã bổ sung", moved)
    item = render_dossier(DossierView(v.dossier, None, [], events, {}))
    (supplement,) = item["DanhSachHoSoBoSung"]
    assert supplement["NgayHenTraTruoc"] == "20260312090000"
    assert supplement["NgayHenTraMoi"] == (moved + timedelta(hours=7)).strftime("%Y%m%d%H%M%S")
    assert supplement["TrangThaiBoSung"] == "1"


def test_an_apology_does_not_move_the_date_the_portal_judges_by() -> None:
    """The new appointment is the dossier's due date here, but NgayHenTra stays the date the
    first apology missed: the dossier is late at the portal as it is late here."""
    new_due = DUE + timedelta(days=5)
    apology = ApologyRow(1, 3, AGENCY, DUE + HOUR, DUE, new_due, "Chờ xác minh")
    item = render_dossier(view([2, 4, 4], due_at=new_due, apologies=[apology]))
    assert item["NgayHenTra"] == "20260312090000"
    assert render_dossier(view([2, 4], due_at=new_due))["NgayHenTra"] == "20260317090000"
