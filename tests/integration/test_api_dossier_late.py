"""Late without an apology (QĐ 766/QĐ-TTg KPI 2.1) on the real app: a dossier done after its due
date is marked late at that move; one done in time is not, with the supplement pause in the due
date; a result returned after the date of a dossier done in time does not make it late."""

from __future__ import annotations

from datetime import datetime, timedelta

from axis_client import SO_TTTT, XA, Axis
from test_api_dossiers import VN, intake, moved, seed

from server.http.appkeys import DATABASE
from storage.audit import AuditRepo


async def late_in_list(axis: Axis, code: str, status: int) -> bool:
    """The dossier's ``late`` as the list shows it (among the caller's in that status)."""
    path = f"/api/v1/dossiers?procedure=1.001193&status={status}&limit=500"
    listed = await (await axis.get(path, XA)).json()
    return next(d["late"] for d in listed["items"] if d["code"] == code)


async def test_done_after_the_due_date_is_late_at_that_move(axis: Axis) -> None:
    await seed(axis)
    now = datetime.now(VN).replace(microsecond=0)
    first = await intake(axis, received_at=(now - timedelta(days=25)).isoformat())
    code, due = first["code"], datetime.fromisoformat(first["due_at"])
    assert due < now - timedelta(minutes=2)
    processing = await moved(axis, SO_TTTT, code, 4, at=(due - timedelta(minutes=1)).isoformat())
    assert processing["late"] is False and processing["overdue"] is True
    done = await moved(axis, SO_TTTT, code, 9, at=(due + timedelta(minutes=1)).isoformat())
    assert done["late"] is True and done["overdue"] is False and done["apologies"] == []
    assert await late_in_list(axis, code, 9) is True
    returned = await moved(axis, XA, code, 10)
    assert returned["late"] is True  # for good
    async with axis.client.app[DATABASE].reader() as tx:
        entries = await AuditRepo(tx).for_object(code)
    moves = [e.details for e in entries if e.action == "dossier.move"]
    assert [m.get("late") for m in moves] == [None, True, None]  # marked once, by the 9


async def test_done_by_the_due_date_is_on_time_even_if_returned_later(axis: Axis) -> None:
    await seed(axis)
    now = datetime.now(VN).replace(microsecond=0)
    first = await intake(axis, received_at=(now - timedelta(days=25)).isoformat())
    code, due = first["code"], datetime.fromisoformat(first["due_at"])
    await moved(axis, SO_TTTT, code, 4, at=(due - timedelta(minutes=2)).isoformat())
    done = await moved(axis, SO_TTTT, code, 9, at=due.isoformat())  # at the due time: on time
    assert done["late"] is False
    returned = await moved(axis, XA, code, 10)  # weeks after the due date: not the end
    assert returned["late"] is False
    assert await late_in_list(axis, code, 10) is False


async def test_the_supplement_pause_is_in_the_due_date_it_is_judged_by(axis: Axis) -> None:
    """Received 25 days ago and waiting for the applicant's supplement nearly all that time: done
    now, past the date of the receipt but within the date the pause moved, it is on time."""
    await seed(axis)
    now = datetime.now(VN).replace(microsecond=0)
    received = now - timedelta(days=25)
    first = await intake(axis, received_at=received.isoformat())
    code = first["code"]
    assert datetime.fromisoformat(first["due_at"]) < now - timedelta(minutes=2)
    at = (received + timedelta(minutes=1)).isoformat()
    await moved(axis, SO_TTTT, code, 5, note="Thiếu giấy chứng sinh", at=at)
    resumed = await moved(axis, XA, code, 4, at=(now - timedelta(minutes=1)).isoformat())
    assert datetime.fromisoformat(resumed["due_at"]) > now
    done = await moved(axis, SO_TTTT, code, 9, at=now.isoformat())
    assert done["late"] is False
