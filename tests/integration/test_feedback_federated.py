"""Citizen feedback across federated axes: the district's office (district axis) forwards a
feedback to the province (hosted by the province axis, one hop up); the province's answer
comes back over the axes and becomes the feedback's answer at the district."""

from __future__ import annotations

import aiohttp
from test_api_feedback import BASE
from test_federation_three_axes import HUYEN, NGHE_AN, Node, axes, call, eventually, knows

from server.feedback.categories import add_category, read_category
from server.runtime.audit import ADMIN

__all__ = ["axes"]


async def test_forwarded_to_another_axis_and_answered_back(axes: tuple[Node, Node, Node]) -> None:
    _, province, district = axes
    await eventually(lambda: knows(district, NGHE_AN))
    async with district.db.transaction() as tx:
        category = {"code": "CAU-DUONG", "name": "Cầu đường", "agency": NGHE_AN}
        await add_category(tx, read_category(category), ADMIN)
    async with aiohttp.ClientSession() as session:
        # An officer of the district's office enters a feedback received by letter.
        status, made = await call(
            session, district, "POST", "/api/v1/feedback", HUYEN,
            json={**BASE, "category": "CAU-DUONG", "channel": "letter"},
        )  # fmt: skip
        assert status == 201, made
        code = made["code"]
        events = f"/api/v1/feedback/{code}/events"
        status, body = await call(
            session, district, "POST", events, HUYEN, json={"status": "classified"}
        )
        assert status == 200, body
        status, body = await call(
            session, district, "POST", events, HUYEN, json={"status": "transferred"}
        )
        assert status == 200 and body["agency"] == NGHE_AN, body

        async def arrived() -> list[dict[str, object]]:
            _, page = await call(session, province, "GET", "/api/v1/feedback-inbox", NGHE_AN)
            return list(page["items"])

        [item] = await eventually(arrived)
        assert (item["feedback"], item["origin"]) == (code, HUYEN)
        answer = "Tỉnh đã chỉ đạo sửa cầu."
        status, body = await call(
            session, province, "POST", f"/api/v1/feedback-inbox/{item['id']}/events", NGHE_AN,
            json={"status": "answered", "note": answer},
        )  # fmt: skip
        assert status == 200, body

        async def answered() -> dict[str, object] | None:
            _, one = await call(session, district, "GET", f"/api/v1/feedback/{code}", HUYEN)
            return one if one["status"] == "answered" else None

        one = await eventually(answered)
        assert one["answer"] == answer
        assert one["events"][-1]["actor"] == NGHE_AN
