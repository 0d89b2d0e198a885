"""A list item is the dossier as ``GET /api/v1/dossiers/{code}`` shows it, field for field, and
follows every change: the list renders items through a cache keyed by what they show
(server/http/dossiers.py), which must never serve an item as it was before a move."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from axis_client import SO_TTTT, XA, Axis
from test_api_dossiers import VN, intake, moved, seed

ITEM_FIELDS = (
    "code", "status", "status_label", "procedure", "receiving_unit", "agency", "channel",
    "received_at", "due_at", "paused", "overdue", "late", "lookup_url",
)  # fmt: skip


async def item(axis: Axis, code: str, organ_id: str = XA) -> dict[str, Any]:
    """The dossier's item in the caller's list (the page starting right at it)."""
    cursor = code[:-1].encode("ascii").hex()  # just before the code
    page = await (await axis.get(f"/api/v1/dossiers?after={cursor}&limit=1", organ_id)).json()
    (found,) = page["items"]
    assert found["code"] == code
    return dict(found)


async def assert_as_shown(axis: Axis, code: str) -> dict[str, Any]:
    listed = await item(axis, code)
    shown = await (await axis.get(f"/api/v1/dossiers/{code}", XA)).json()
    assert {k: listed[k] for k in ITEM_FIELDS} == {k: shown[k] for k in ITEM_FIELDS}
    assert listed["applicant_name"] == shown["applicant"]["name"]
    assert set(listed) == {*ITEM_FIELDS, "applicant_name"}
    return listed


async def test_a_list_item_follows_every_change(axis: Axis) -> None:
    await seed(axis)
    now = datetime.now(VN).replace(microsecond=0)
    code = (await intake(axis, received_at=(now - timedelta(days=25)).isoformat()))["code"]
    first = await assert_as_shown(axis, code)
    assert first["status"] == 2 and first["overdue"] is True and first["late"] is False
    assert await assert_as_shown(axis, code) == first  # asked again: the same
    await moved(axis, SO_TTTT, code, 4)
    assert (await assert_as_shown(axis, code))["status_label"] == "Đang xử lý"
    await moved(axis, SO_TTTT, code, 5, note="Thiếu tờ khai")
    paused = await assert_as_shown(axis, code)
    assert paused["paused"] is True and paused["overdue"] is False
    resumed = await moved(axis, XA, code, 4)
    listed = await assert_as_shown(axis, code)
    # The due date moves by the working time paused, none at all during the lunch break or at
    # night (the pause lasted a moment): never earlier, and the list shows the moved one.
    assert listed["due_at"] == resumed["due_at"]
    assert datetime.fromisoformat(resumed["due_at"]) >= datetime.fromisoformat(first["due_at"])
    await moved(axis, SO_TTTT, code, 9)
    done = await assert_as_shown(axis, code)
    assert datetime.fromisoformat(resumed["due_at"]) < datetime.now(VN)
    assert done["late"] is True and done["overdue"] is False  # done after its due date
    assert (await item(axis, code, SO_TTTT)) == done  # the other party's list: the same item
