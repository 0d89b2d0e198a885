"""Citizen feedback on the real app (issue 17): intake by anyone and by officers, photos
re-encoded without metadata, the codes, the private link, bad input named field by field, the
rate limit of anonymous posts, the lifecycle with its move table and the agencies' isolation."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, XA, Axis
from PIL import Image
from test_dossier_transfers import call

from server.feedback.categories import add_category, read_category
from server.feedback.queries import category_names
from server.http.appkeys import CALENDAR, DATABASE
from server.runtime.audit import ADMIN
from server.runtime.config import Config
from storage.ids import utcnow
from storage.repos.feedback import FeedbackRepo
from storage.repos.open311_requests import Open311Repo

ROAD = "DUONG-HU-HONG"
CITIZEN = {"name": "Nguyễn Văn An", "phone": "0912 345 678", "email": "an@example.vn"}
BASE = {
    "category": ROAD,
    "title": "Ổ gà trên đường Lê Lợi",
    "content": "Đoạn trước số 12 có ổ gà sâu, xe máy dễ ngã.",
    "address": "12 Lê Lợi, Vinh, Nghệ An",
    "lat": 18.6796,
    "long": 105.6813,
    **CITIZEN,
}
SEVERITY = {
    "attributes": [
        {
            "code": "muc-do",
            "datatype": "singlevaluelist",
            "required": True,
            "description": "Mức độ",
            "values": [{"key": "nhe", "name": "Nhẹ"}, {"key": "nang", "name": "Nặng"}],
        }
    ]
}


@pytest.fixture
def axis_config(axis_config: Config) -> Config:
    """The province's office (NGHE_AN) receives anonymous feedback; 12 posts a minute."""
    feedback = dataclasses.replace(
        axis_config.feedback, receiving_unit=NGHE_AN, submit_per_minute=12
    )
    return dataclasses.replace(axis_config, feedback=feedback)


async def seed(axis: Axis, attributes: Any = None) -> None:
    data = {"code": ROAD, "name": "Đường hư hỏng", "agency": SO_TTTT, "attributes": attributes}
    async with axis.client.app[DATABASE].transaction() as tx:
        await add_category(tx, read_category(data), ADMIN)


def jpeg_with_gps() -> bytes:
    """A small JPEG carrying EXIF with a GPS position and a camera model."""
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "Camera X"  # Model
    exif[0x8825] = {1: "N", 2: (18.0, 40.0, 0.0), 3: "E", 4: (105.0, 40.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def post(axis: Axis, body: Any, expect: int, **headers: str) -> Any:
    resp = await axis.client.post("/api/v1/feedback", json=body, headers=headers)
    answer = await resp.json()
    assert resp.status == expect, answer
    return answer


async def test_intake_codes_limits_private_link_and_bad_input(axis: Axis) -> None:
    await seed(axis)
    clock = axis.client.app[CALENDAR].clock
    first = await post(axis, {**BASE, "content": "<script>alert(1)</script> & ổ gà"}, 201)
    second = await post(axis, BASE, 201)
    assert re.fullmatch(r"PA-\d{6}-0001", first["code"])
    assert second["code"] == first["code"][:-1] + "2"
    received = datetime.fromisoformat(first["received_at"])
    assert datetime.fromisoformat(first["due"]["classify"]) == clock.due_at(received, 2)
    assert datetime.fromisoformat(first["due"]["transfer"]) == clock.due_at(received, 5)
    assert datetime.fromisoformat(first["due"]["answer"]) == clock.due_at(received, 15)
    assert first["private_link"].endswith(f"/phan-anh/{first['code']}?token={first['token']}")

    # The sender's private view; a wrong token is as unknown as a wrong code.
    path = f"/api/v1/public/feedback/{first['code']}"
    resp = await axis.client.get(path, params={"token": first["token"]})
    mine = await resp.json()
    assert resp.status == 200 and mine["status"] == "received"
    assert mine["content"] == "<script>alert(1)</script> & ổ gà"  # stored as text
    resp = await axis.client.get(path, params={"token": second["token"]})
    assert resp.status == 404
    resp = await axis.client.get(path)  # not published: not public
    assert resp.status == 404

    # Bad input: 422 naming the field; nothing stored, no number taken.
    for change, field in [
        ({"category": "KHONG-CO"}, "category"),
        ({"lat": 91}, "lat"),
        ({"long": "east"}, "long"),
        ({"lat": None, "long": None, "address": ""}, "address"),
        ({"phone": "", "email": ""}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"content": "x" * 4001}, "content"),
        ({"channel": "phone"}, "channel"),  # only officers say how it came
        ({"colour": "red"}, "colour"),
    ]:
        problem = await post(axis, {**BASE, **change}, 422)
        assert problem["field"] == field, problem
        assert problem["type"].endswith("/invalid-feedback")
    # an app posts for a citizen (the channel Open311 uses): the refused ones took no number
    by_app = await post(axis, {**BASE, "channel": "app"}, 201)
    assert by_app["code"] == first["code"][:-1] + "3"


async def test_rate_limit_spares_officers_and_idempotency_key(axis: Axis) -> None:
    await seed(axis)
    keyed = await post(axis, BASE, 201, **{"Idempotency-Key": "k-1"})
    again = await post(axis, BASE, 200, **{"Idempotency-Key": "k-1"})
    assert (again["code"], again["token"]) == (keyed["code"], keyed["token"])
    # The budget is 12 posts a minute per address (the two above included, each one counts).
    statuses = []
    for _ in range(11):
        resp = await axis.client.post("/api/v1/feedback", json=BASE)
        statuses.append(resp.status)
    assert statuses == [201] * 10 + [429]
    problem = await resp.json()
    assert problem["type"].endswith("/too-many-feedback")
    assert int(resp.headers["Retry-After"]) >= 1
    # A receiving officer enters a feedback that came by phone: not counted, its agency receives.
    by_phone = await call(
        axis, "POST", "/api/v1/feedback", XA, 201, json={**BASE, "channel": "phone"}
    )
    one = await call(axis, "GET", f"/api/v1/feedback/{by_phone['code']}", XA, 200)
    assert (one["channel"], one["receiving_unit"], one["agency"]) == ("phone", XA, SO_TTTT)
    assert one["sender"] == {
        "name": "Nguyễn Văn An",
        "phone": "0912345678",
        "email": CITIZEN["email"],
    }
    # the idempotency key is stored hashed, like the token
    async with axis.client.app[DATABASE].reader() as tx:
        row = await FeedbackRepo(tx).get(keyed["code"])
    assert row is not None and row.idempotency_key != "k-1" and keyed["token"] not in row.token_hash


async def test_photos_reencoded_without_metadata_and_attributes_checked(axis: Axis) -> None:
    await seed(axis, SEVERITY)
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the GPS is there

    def form(photos: list[bytes], severity: str | None = "nang") -> aiohttp.FormData:
        data = aiohttp.FormData()
        for key, value in BASE.items():
            data.add_field(key, str(value))
        if severity is not None:
            data.add_field("attributes[muc-do]", severity)
        for i, photo in enumerate(photos):
            data.add_field("photo", photo, filename=f"p{i}.jpg", content_type="image/jpeg")
        return data

    resp = await axis.client.post("/api/v1/feedback", data=form([original]), headers=axis.auth(XA))
    made = await resp.json()
    assert resp.status == 201, made
    one = await call(axis, "GET", f"/api/v1/feedback/{made['code']}", XA, 200)
    assert one["attributes"] == {"muc-do": "nang"}
    assert [(p["n"], p["content_type"], p["width"], p["height"]) for p in one["photos"]] == [
        (1, "image/jpeg", 64, 48)
    ]
    resp = await axis.client.get(f"/api/v1/feedback/{made['code']}/photos/1", headers=axis.auth(XA))
    stored = await resp.read()
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    kept = Image.open(io.BytesIO(stored))
    assert kept.size == (64, 48)
    assert len(kept.getexif()) == 0 and "exif" not in kept.info
    assert b"Camera X" not in stored
    # a photo outside the parties' view: not found
    resp = await axis.client.get(
        f"/api/v1/feedback/{made['code']}/photos/1", headers=axis.auth(OUTSIDER)
    )
    assert resp.status == 404

    async def refused(data: aiohttp.FormData) -> dict[str, Any]:
        resp = await axis.client.post("/api/v1/feedback", data=data, headers=axis.auth(XA))
        body = await resp.json()
        assert resp.status == 422, body
        return body

    assert (await refused(form([b"GIF89a not really"])))["field"] == "photos[1]"
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 400 Mpx in a few kB
    assert len(bomb.getvalue()) < 200_000
    assert (await refused(form([original, bomb.getvalue()])))["field"] == "photos[2]"
    assert (await refused(form([original] * 6)))["field"] == "photos"
    assert (await refused(form([], severity=None)))["field"] == "attribute[muc-do]"
    assert (await refused(form([], severity="rat-nang")))["field"] == "attribute[muc-do]"
    # none of the refused took a number
    second = await call(axis, "POST", "/api/v1/feedback", XA, 201, json={
        **BASE, "attributes": {"muc-do": "nhe"}})  # fmt: skip
    assert second["code"] == made["code"][:-1] + "2"


async def test_lifecycle_moves_isolation_lists_and_overdue(axis: Axis) -> None:
    await seed(axis)
    made = await post(axis, BASE, 201)
    code = made["code"]
    events = f"/api/v1/feedback/{code}/events"
    # Only its parties see it: the province's office (receiving) and the department (to answer).
    await call(axis, "GET", f"/api/v1/feedback/{code}", OUTSIDER, 404)
    await call(axis, "POST", events, OUTSIDER, 404, json={"status": "classified"})
    listed = await call(axis, "GET", "/api/v1/feedback", SO_TTTT, 200)
    assert [i["code"] for i in listed["items"]] == [code]
    assert (await call(axis, "GET", "/api/v1/feedback", OUTSIDER, 200))["items"] == []

    # The move table: 409 with what is allowed, 403 for the other party's move.
    refused = await call(
        axis, "POST", events, NGHE_AN, 409, json={"status": "answered", "note": "x"}
    )
    assert refused["allowed"] == ["classified", "not_accepted"]
    refused = await call(axis, "POST", events, SO_TTTT, 403, json={"status": "classified"})
    assert refused["allowed"] == []
    problem = await call(axis, "POST", events, NGHE_AN, 422, json={"status": "not_accepted"})
    assert problem["field"] == "note"
    one = await call(axis, "POST", events, NGHE_AN, 200, json={"status": "classified"})
    assert one["status"] == "classified"
    # a plain move cannot say "transferred": forwarding does (test_api_feedback_forwarding)
    await call(axis, "POST", events, SO_TTTT, 200, json={"status": "processing"})
    await call(axis, "POST", events, SO_TTTT, 200, json={"status": "supplement", "note": "Ảnh rõ"})
    await call(axis, "POST", events, SO_TTTT, 200, json={"status": "processing"})
    refused = await call(
        axis, "POST", events, SO_TTTT, 409, json={"status": "supplement", "note": "lần hai"}
    )
    assert "once" in refused["detail"]
    one = await call(axis, "GET", f"/api/v1/feedback/{code}", NGHE_AN, 200)
    assert [(e["from"], e["to"]) for e in one["events"]] == [
        (None, "received"),
        ("received", "classified"),
        ("classified", "processing"),
        ("processing", "supplement"),
        ("supplement", "processing"),
    ]
    # The events are append-only.
    async with axis.client.app[DATABASE].transaction() as tx:
        with pytest.raises(Exception, match="append-only"):
            await tx.execute("DELETE FROM feedback_events WHERE feedback = ?", (code,))

    # Filters and paging.
    other = await post(axis, BASE, 201)
    mine = await call(axis, "GET", "/api/v1/feedback?status=received", NGHE_AN, 200)
    assert [i["code"] for i in mine["items"]] == [other["code"]]
    page = await call(axis, "GET", "/api/v1/feedback?limit=1", NGHE_AN, 200)
    assert [i["code"] for i in page["items"]] == [code] and page["next"]
    rest = await call(axis, "GET", f"/api/v1/feedback?limit=1&after={page['next']}", NGHE_AN, 200)
    assert [i["code"] for i in rest["items"]] == [other["code"]] and rest["next"] is None
    await call(axis, "GET", "/api/v1/feedback?status=nope", NGHE_AN, 400)
    # Nothing is overdue yet (received just now); backdated by an officer, the limits pass.
    assert (await call(axis, "GET", "/api/v1/feedback?overdue=true", NGHE_AN, 200))["items"] == []
    async with axis.client.app[DATABASE].transaction() as tx:
        row = await FeedbackRepo(tx).get(other["code"])
        assert row is not None
        past = row.received_at.replace(year=row.received_at.year - 1)
        await FeedbackRepo(tx).update(
            row.but(classify_due=past, transfer_due=past, answer_due=past)
        )
    late = await call(axis, "GET", "/api/v1/feedback?overdue=true", NGHE_AN, 200)
    assert [i["code"] for i in late["items"]] == [other["code"]]
    assert late["items"][0]["overdue"] == {
        "classify": True,
        "transfer": True,
        "answer": True,
        "publish": False,
    }


async def test_public_queries_leave_hidden_feedback_out(axis: Axis) -> None:
    await seed(axis)
    first, second, third = [(await post(axis, BASE, 201))["code"] for _ in range(3)]
    await call(
        axis, "POST", f"/api/v1/feedback/{second}/moderation", NGHE_AN, 200,
        json={"hidden": True, "reason": "Lộ số điện thoại"},
    )  # fmt: skip
    await call(
        axis, "POST", f"/api/v1/feedback/{third}/events", NGHE_AN, 200,
        json={"status": "classified"},
    )  # fmt: skip
    now = utcnow()
    since, until = now - timedelta(days=1), now + timedelta(seconds=1)
    async with axis.client.app[DATABASE].reader() as tx:
        # the one public list (Open311 GET requests), several categories, newest first
        repo = Open311Repo(tx)
        everything = await repo.window(since, until, (), (), 1000)
        received = await repo.window(since, until, (ROAD, "KHAC"), ("received",), 1000)
        other = await repo.window(since, until, ("KHAC",), (), 1000)
        before = await repo.window(since - timedelta(days=1), since, (), (), 1000)
        assert [r.code for r in await repo.by_codes([first, second])] == [first]
        assert await category_names(tx) == {ROAD: "Đường hư hỏng"}
        # SQLite's plan (PostgreSQL's planner reads a table this small whole, index or not)
        plan = (
            await tx.fetchall(
                "EXPLAIN QUERY PLAN SELECT code FROM feedback WHERE hidden = 0"
                " AND received_at >= ? AND received_at <= ? ORDER BY received_at DESC, code DESC",
                ("", "~"),
            )
            if tx.dialect == "sqlite"
            else [("feedback_open311_window",)]
        )
    assert any("feedback_open311_window" in str(tuple(p)) for p in plan), plan
    assert [r.code for r in everything] == [third, first]  # newest first, the hidden one out
    assert [r.code for r in received] == [first]
    assert other == [] and before == []


async def test_garbage_gets_a_problem_never_a_traceback(axis: Axis) -> None:
    await seed(axis, SEVERITY)
    made = await post(axis, {**BASE, "attributes": {"muc-do": "nhe"}}, 201)
    code = made["code"]
    json_ct = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, Any, dict[str, str], int]] = [
        ("POST", "/api/v1/feedback", b"not json", json_ct, 422),
        ("POST", "/api/v1/feedback", b"\xff\xfe", json_ct, 422),
        ("POST", "/api/v1/feedback", b"[1, 2]", json_ct, 422),
        ("POST", "/api/v1/feedback", json.dumps({**BASE, "name": 5}), json_ct, 422),
        ("POST", "/api/v1/feedback", json.dumps({**BASE, "lat": [1], "long": 2}), json_ct, 422),
        ("POST", "/api/v1/feedback", json.dumps({**BASE, "attributes": [1]}), json_ct, 422),
        (
            "POST", "/api/v1/feedback",
            json.dumps({**BASE, "attributes": {"muc-do": {"x": 1}}}), json_ct, 422,
        ),
        (
            "POST", "/api/v1/feedback", b"--x\r\nbroken",
            {"Content-Type": "multipart/form-data; boundary=y"}, 400,
        ),
        ("POST", "/api/v1/feedback", b"x" * (2 * 1024 * 1024), json_ct, 422),
        ("POST", f"/api/v1/public/feedback/{code}/rating", b"{", json_ct, 422),
        ("POST", f"/api/v1/public/feedback/{code}/rating", b'{"token": 1}', json_ct, 422),
        ("GET", f"/api/v1/public/feedback/{code}/photos/abc", None, {}, 404),
        ("GET", "/api/v1/public/feedback?after=zz", None, {}, 400),
    ]  # fmt: skip
    for method, path, body, headers, status in cases:
        resp = await axis.client.request(method, path, data=body, headers=headers)
        problem = await resp.json()
        assert resp.status == status, (path, body, problem)
        assert resp.content_type == "application/problem+json", (path, body)
        assert "Traceback" not in json.dumps(problem)
    events = f"/api/v1/feedback/{code}/events"
    for body, field in [
        (b"[]", "event"),
        (json.dumps({"status": 5}).encode(), "status"),
        (json.dumps({"status": "flying"}).encode(), "status"),
        (json.dumps({"status": "classified", "colour": 1}).encode(), "colour"),
        (json.dumps({"status": "processing", "agency": SO_TTTT}).encode(), "agency"),
    ]:
        resp = await axis.client.post(events, data=body, headers=axis.auth(NGHE_AN, **json_ct))
        problem = await resp.json()
        assert (resp.status, problem.get("field")) == (422, field), problem
    moderation = f"/api/v1/feedback/{code}/moderation"
    for body in ({"hidden": "yes"}, {"approved_photos": [9]}, {"approved_photos": "1"}):
        await call(axis, "POST", moderation, NGHE_AN, 422, json=body)
    # the competent agency does not moderate: the receiving unit does
    await call(axis, "POST", moderation, SO_TTTT, 404, json={"approved_photos": []})
