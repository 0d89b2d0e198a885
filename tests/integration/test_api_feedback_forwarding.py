"""Citizen feedback end to end on the real app with two agencies: the province's office
receives it, classifies it and forwards it over the axis as an edXML package to the
department; the department replies over the axis (processing, then its answer), the answer
becomes the feedback's, the office publishes it with an approved photo, the sender rates it
once; the public sees the answer, the masked name and never the contacts."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timedelta

import aiohttp
import pytest
from axis_client import NGHE_AN, SO_TTTT, XA, Axis
from PIL import Image
from test_api_feedback import BASE, ROAD, seed
from test_dossier_transfers import call

from edxml import parse
from server.exchange.delivery import sweep_orphans
from server.http.appkeys import CALENDAR, DATABASE, EXCHANGE, OBJECTS
from server.runtime.config import Config
from storage.ids import utcnow
from storage.repos.pending_objects import PendingObjectRepo


@pytest.fixture
def axis_config(axis_config: Config) -> Config:
    feedback = dataclasses.replace(axis_config.feedback, receiving_unit=NGHE_AN)
    return dataclasses.replace(axis_config, feedback=feedback)


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 10)).save(out, "PNG")
    return out.getvalue()


async def test_forward_answer_publish_rate(axis: Axis) -> None:
    await seed(axis)
    exchange = axis.client.app[EXCHANGE]
    clock = axis.client.app[CALENDAR].clock
    form = aiohttp.FormData()
    for key, value in {**BASE, "content": "Có <b>ổ gà</b> sâu"}.items():
        form.add_field(key, str(value))
    form.add_field("photo", photo(), filename="o-ga.png", content_type="image/png")
    form.add_field("photo", photo(), filename="o-ga-2.png", content_type="image/png")
    resp = await axis.client.post("/api/v1/feedback", data=form)
    made = await resp.json()
    assert resp.status == 201, made
    code, token = made["code"], made["token"]
    events = f"/api/v1/feedback/{code}/events"

    await call(axis, "POST", events, NGHE_AN, 200, json={"status": "classified"})
    # forwarding to the office itself is refused; to the department, it goes over the axis
    problem = await call(
        axis, "POST", events, NGHE_AN, 422, json={"status": "transferred", "agency": NGHE_AN}
    )
    assert problem["field"] == "agency"
    moved = await call(axis, "POST", events, NGHE_AN, 200, json={"status": "transferred"})
    assert (moved["status"], moved["agency"]) == ("transferred", SO_TTTT)
    transferred_at = datetime.fromisoformat(moved["events"][-1]["at"])
    assert datetime.fromisoformat(moved["due"]["answer"]) == clock.due_at(transferred_at, 15)
    await call(axis, "POST", events, NGHE_AN, 409, json={"status": "transferred"})
    await exchange.settle()

    # The package is an ordinary document in the department's inbox: phan-anh.json, photos.
    inbox = await axis.inbox(SO_TTTT)
    assert len(inbox["items"]) == 1
    raw = await axis.get(f"/api/v1/documents/{inbox['items'][0]['document_id']}", SO_TTTT)
    envelope = parse(await raw.read())
    assert envelope.header.application_type == "PAKN"
    assert [a.name for a in envelope.attachments] == ["phan-anh.json", "anh-1.png", "anh-2.png"]
    carried = json.loads(envelope.attachments[0].data or b"")
    assert (carried["code"], carried["content"]) == (code, "Có <b>ổ gà</b> sâu")
    assert carried["sender"]["phone"] == "0912345678"

    # The department's side: its forwarded feedback, its replies back over the axis.
    listed = await call(axis, "GET", "/api/v1/feedback-inbox", SO_TTTT, 200)
    assert [(i["feedback"], i["status"]) for i in listed["items"]] == [(code, "transferred")]
    assert (await call(axis, "GET", "/api/v1/feedback-inbox", XA, 200))["items"] == []
    tid = listed["items"][0]["id"]
    await call(axis, "GET", f"/api/v1/feedback-inbox/{tid}", XA, 404)
    one = await call(axis, "GET", f"/api/v1/feedback-inbox/{tid}", SO_TTTT, 200)
    assert one["feedback_json"]["title"] == BASE["title"]
    path = f"/api/v1/feedback-inbox/{tid}/events"
    await call(axis, "POST", path, SO_TTTT, 200, json={"status": "processing"})
    await call(axis, "POST", path, SO_TTTT, 422, json={"status": "answered"})  # no answer
    answer = "Đã vá ổ gà ngày 10/3. <i>Cảm ơn</i> ông."
    await call(axis, "POST", path, SO_TTTT, 200, json={"status": "answered", "note": answer})
    await call(axis, "POST", path, SO_TTTT, 409, json={"status": "processing"})
    await exchange.settle()

    full = await call(axis, "GET", f"/api/v1/feedback/{code}", NGHE_AN, 200)
    assert full["status"] == "answered" and full["answer"] == answer
    assert [(e["actor"], e["to"]) for e in full["events"]][-3:] == [
        (NGHE_AN, "transferred"),
        (SO_TTTT, "processing"),
        (SO_TTTT, "answered"),
    ]
    answered_at = datetime.fromisoformat(full["answered_at"])
    assert datetime.fromisoformat(full["due"]["publish"]) == clock.due_at(answered_at, 2)

    # Not public before publication; the office approves photo 2 and publishes.
    assert (await axis.client.get(f"/api/v1/public/feedback/{code}")).status == 404
    await call(
        axis, "POST", f"/api/v1/feedback/{code}/moderation", NGHE_AN, 200,
        json={"approved_photos": [2]},
    )  # fmt: skip
    await call(axis, "POST", events, SO_TTTT, 403, json={"status": "published"})
    await call(axis, "POST", events, NGHE_AN, 200, json={"status": "published"})

    resp = await axis.client.get("/api/v1/public/feedback")
    public = await resp.json()
    assert resp.status == 200
    [item] = public["items"]
    assert item["code"] == code and item["answer"] == answer
    assert item["sender_name"] == "Nguyễn V. A."
    assert item["category"] == {"code": ROAD, "name": "Đường hư hỏng"}
    assert item["agency"]["organ_id"] == SO_TTTT and item["photos"] == [2]
    text = json.dumps(public, ensure_ascii=False)
    assert "0912" not in text and "an@example.vn" not in text and "Nguyễn Văn An" not in text
    photos = f"/api/v1/public/feedback/{code}/photos"
    assert (await axis.client.get(f"{photos}/2")).status == 200
    assert (await axis.client.get(f"{photos}/1")).status == 404  # not approved
    assert (await axis.client.get(f"{photos}/1", params={"token": token})).status == 200

    # The sender rates once, through the private link.
    rating = f"/api/v1/public/feedback/{code}/rating"
    resp = await axis.client.post(rating, json={"token": "wrong", "rating": "hai-long"})
    assert resp.status == 404
    resp = await axis.client.post(rating, json={"token": token, "rating": "so-so"})
    assert resp.status == 422
    resp = await axis.client.post(rating, json={"token": token, "rating": "hai-long"})
    mine = await resp.json()
    assert resp.status == 200 and mine["rating"] == "hai-long" and not mine["may_rate"]
    resp = await axis.client.post(rating, json={"token": token, "rating": "khong-hai-long"})
    assert resp.status == 409
    steps = [s["status"] for s in mine["steps"]]
    assert steps == [
        "received", "classified", "transferred", "processing", "answered", "published"
    ]  # fmt: skip

    # Hidden by the office (personal data in the text): gone from public view.
    problem = await call(
        axis, "POST", f"/api/v1/feedback/{code}/moderation", NGHE_AN, 422, json={"hidden": True}
    )
    assert problem["field"] == "reason"
    await call(
        axis, "POST", f"/api/v1/feedback/{code}/moderation", NGHE_AN, 200,
        json={"hidden": True, "reason": "Có số điện thoại trong nội dung"},
    )  # fmt: skip
    assert (await (await axis.client.get("/api/v1/public/feedback")).json())["items"] == []
    assert (await axis.client.get(f"/api/v1/public/feedback/{code}")).status == 404
    assert (await axis.client.get(f"{photos}/2")).status == 404


async def test_a_photo_named_by_a_feedback_survives_the_orphan_sweep(axis: Axis) -> None:
    """The same photo sent again by an intake that dies before its transaction leaves a stale
    intent record: the sweep finds the digest named by the first feedback and keeps it."""
    await seed(axis)
    form = aiohttp.FormData()
    for key, value in BASE.items():
        form.add_field(key, str(value))
    form.add_field("photo", photo(), filename="o-ga.png", content_type="image/png")
    resp = await axis.client.post("/api/v1/feedback", data=form)
    made = await resp.json()
    assert resp.status == 201, made
    one = await call(axis, "GET", f"/api/v1/feedback/{made['code']}", NGHE_AN, 200)
    sha = one["photos"][0]["sha256"]
    database, objects = axis.client.app[DATABASE], axis.client.app[OBJECTS]
    async with database.transaction() as tx:
        await PendingObjectRepo(tx).record(sha, utcnow() - timedelta(seconds=10))
    assert await sweep_orphans(database, objects, grace=5) == 0
    assert await objects.exists(sha)
