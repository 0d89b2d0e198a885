"""One-stop dossiers across agencies on the real app: a two-step procedure (the commune, then the
department), the dossier sent over the axis as an edXML package, the department moves it and the
commune sees those moves as events of its dossier, with each step's due date."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from axis_client import OUTSIDER, SO_TTTT, XA, Axis
from test_api_dossiers import APPLICANT, FILES, form

from edxml import Organization, ResponseFor, StaffInfo, StatusCode, StatusMessage, parse
from server.dossiers.catalogue import Located, store_procedures
from server.dossiers.procedures import procedure_from_mapping
from server.http.appkeys import CALENDAR, DATABASE, EXCHANGE
from server.http.dossier_transfers import TRANSFERS
from server.runtime.audit import ADMIN
from storage.db import Database

TWO_STEPS = "1.004227"


async def store_two_steps(
    database: Database, first: str, second: str, competent: str | None = None
) -> None:
    """The procedure TWO_STEPS: 2 days at ``first`` (the commune), then 3 at ``second``, the
    competent agency unless ``competent`` names another."""
    procedure = {
        "code": TWO_STEPS,
        "name": "Đăng ký thường trú",
        "agency": competent or second,
        "days": 5,
        "components": [
            {"code": "TK", "name": "Tờ khai", "required": True},
            {"code": "GCS", "name": "Giấy tờ chỗ ở", "required": True},
        ],
        "steps": [{"agency": first, "days": 2}, {"agency": second, "days": 3}],
    }
    async with database.transaction() as tx:
        await store_procedures(
            tx, [Located(TWO_STEPS, procedure_from_mapping(procedure))], ADMIN, "test"
        )


async def seed(axis: Axis) -> None:
    await store_two_steps(axis.client.app[DATABASE], XA, SO_TTTT)


async def call(axis: Axis, method: str, path: str, organ_id: str, expect: int, **kw: Any) -> Any:
    resp = await axis.client.request(method, path, headers=axis.auth(organ_id), **kw)
    body = await resp.json()
    assert resp.status == expect, body
    return body


async def test_transfer_to_another_agency_and_its_moves_come_back(axis: Axis) -> None:
    await seed(axis)
    exchange = axis.client.app[EXCHANGE]
    clock = axis.client.app[CALENDAR].clock
    resp = await axis.client.post(
        "/api/v1/dossiers",
        data=form({"procedure": TWO_STEPS, "applicant": dict(APPLICANT), "channel": 1}),
        headers=axis.auth(XA),
    )
    intake = await resp.json()
    assert resp.status == 201, intake
    code = intake["code"]
    received = datetime.fromisoformat(intake["received_at"])

    # The steps' due dates follow the split of days: 2, then 2 + 3.
    steps = await call(axis, "GET", f"/api/v1/dossiers/{code}/steps", XA, 200)
    assert [(s["agency"], datetime.fromisoformat(s["due_at"])) for s in steps["steps"]] == [
        (XA, clock.due_at(received, 2)),
        (SO_TTTT, clock.due_at(received, 5)),
    ]
    # Not to an agency outside the steps, nor to the unit itself.
    await call(axis, "POST", f"/api/v1/dossiers/{code}/transfer", XA, 422, json={"agency": XA})

    sent = await call(
        axis, "POST", f"/api/v1/dossiers/{code}/transfer", XA, 201, json={"agency": SO_TTTT}
    )
    assert sent["step"] == 2 and sent["agency"] == SO_TTTT
    assert datetime.fromisoformat(sent["due_at"]) == clock.due_at(received, 5)
    await call(axis, "POST", f"/api/v1/dossiers/{code}/transfer", XA, 409, json={"agency": SO_TTTT})
    await exchange.settle()

    # The package is an ordinary document in the department's inbox: ho-so.json and the files.
    inbox = await axis.inbox(SO_TTTT)
    assert [i["document_id"] for i in inbox["items"]] == [sent["package"]]
    raw = await axis.get(f"/api/v1/documents/{sent['package']}", SO_TTTT)
    envelope = parse(await raw.read())
    assert envelope.header.application_type == "MCDT_LT"
    assert envelope.header.subject.startswith("Hồ sơ một cửa liên thông " + code)
    names = [a.name for a in envelope.attachments]
    assert names == ["ho-so.json", "TK.pdf", "GCS.pdf"]
    assert [a.data for a in envelope.attachments[1:]] == [FILES["TK"], FILES["GCS"]]
    carried = json.loads(envelope.attachments[0].data or b"")
    assert carried["code"] == code and carried["step"]["number"] == 2

    # The department sees the dossier among those transferred to it.
    listed = await call(axis, "GET", "/api/v1/dossier-transfers", SO_TTTT, 200)
    assert [(i["dossier"], i["status"], i["procedure"]) for i in listed["items"]] == [
        (code, 2, TWO_STEPS)
    ]
    assert (await call(axis, "GET", "/api/v1/dossier-transfers", XA, 200))["items"] == []
    # The department is the dossier's competent agency here: it lists the dossier itself, once.
    mine = await call(axis, "GET", "/api/v1/dossiers", SO_TTTT, 200)
    assert [(i["code"], "transferred_in" in i) for i in mine["items"]] == [(code, False)]
    tid = listed["items"][0]["id"]
    await call(axis, "GET", f"/api/v1/dossier-transfers/{tid}", XA, 404)
    one = await call(axis, "GET", f"/api/v1/dossier-transfers/{tid}", SO_TTTT, 200)
    assert one["dossier_json"]["applicant"]["name"] == APPLICANT["name"]

    # Its moves: processing, then done; each goes back as a status message.
    path = f"/api/v1/dossier-transfers/{tid}/events"
    await call(axis, "POST", path, SO_TTTT, 200, json={"status": 4, "note": "Đang thẩm định"})
    await call(axis, "POST", path, SO_TTTT, 409, json={"status": 10})
    await call(axis, "POST", path, SO_TTTT, 200, json={"status": 9, "note": "Đã cấp"})
    await exchange.settle()

    full = await call(axis, "GET", f"/api/v1/dossiers/{code}", XA, 200)
    moves = [(e["actor"], e["from"], e["to"]) for e in full["events"]]
    assert moves == [(XA, None, 2), (SO_TTTT, 2, 4), (SO_TTTT, 4, 9)]
    assert full["events"][1]["note"].startswith("Bước 2")
    assert full["status"] == 9
    steps = await call(axis, "GET", f"/api/v1/dossiers/{code}/steps", XA, 200)
    assert [(t["step"], t["status"]) for t in steps["transfers"]] == [(2, 9)]
    # The commune returns the result.
    await call(axis, "POST", f"/api/v1/dossiers/{code}/events", XA, 200, json={"status": 10})


async def test_dossiers_transferred_in_are_in_the_agency_s_list(axis: Axis) -> None:
    """The department is no party of the commune's dossiers (the commune is competent, the
    department does step 2): those transferred to it join its own dossiers in its list, in
    code order and pages, and the overdue list keeps the one whose step is late."""
    await store_two_steps(axis.client.app[DATABASE], XA, SO_TTTT, competent=XA)
    exchange = axis.client.app[EXCHANGE]

    async def intake(unit: str, **extra: Any) -> str:
        body = {"procedure": TWO_STEPS, "applicant": dict(APPLICANT), "channel": 1, **extra}
        resp = await axis.client.post("/api/v1/dossiers", data=form(body), headers=axis.auth(unit))
        answer = await resp.json()
        assert resp.status == 201, answer
        return str(answer["code"])

    own = await intake(SO_TTTT)  # the department's own (it received it), before the commune's
    ago = (datetime.now(UTC) - timedelta(days=29)).isoformat()  # overdue even across Tết
    late, fresh = await intake(XA, received_at=ago), await intake(XA)
    transfers = axis.client.app[TRANSFERS]
    await call(axis, "POST", f"/api/v1/dossiers/{late}/transfer", XA, 201, json={"agency": SO_TTTT})
    # The axis stops as `fresh`'s package commits, before its arrival hook runs (the hook is
    # taken away): the catch-up at the next start records it.
    exchange.on_accepted.remove(transfers.on_accepted)
    try:
        path = f"/api/v1/dossiers/{fresh}/transfer"
        await call(axis, "POST", path, XA, 201, json={"agency": SO_TTTT})
        await exchange.settle()
    finally:
        exchange.on_accepted.append(transfers.on_accepted)
    page = await call(axis, "GET", "/api/v1/dossiers", SO_TTTT, 200)
    assert [i["code"] for i in page["items"]] == [own, late]
    assert await transfers.catch_up_arrivals() == 1
    assert await transfers.catch_up_arrivals() == 0

    async def codes(query: str, organ_id: str = SO_TTTT) -> list[tuple[str, bool]]:
        page = await call(axis, "GET", f"/api/v1/dossiers{query}", organ_id, 200)
        return [(i["code"], "transferred_in" in i) for i in page["items"]]

    first = await call(axis, "GET", "/api/v1/dossiers?limit=2", SO_TTTT, 200)
    assert [(i["code"], "transferred_in" in i) for i in first["items"]] == [
        (own, False), (late, True)
    ]  # fmt: skip
    assert await codes(f"?limit=2&after={first['next']}") == [(fresh, True)]
    assert await codes(f"?procedure={TWO_STEPS}&status=2") == [
        (own, False), (late, True), (fresh, True)
    ]  # fmt: skip
    today = datetime.now(ZoneInfo(axis.config.dossiers.timezone)).date().isoformat()
    assert await codes(f"?received_after={today}") == [(own, False), (fresh, True)]
    assert await codes("?overdue=true") == [(late, True)]
    assert await codes("", OUTSIDER) == []
    await call(axis, "GET", f"/api/v1/dossiers/{late}", OUTSIDER, 404)

    # The late step done, the overdue list is empty; the list shows the step's status. The
    # commune's axis (this one) stops as each status commits, before its hook runs (the hook
    # is taken away): the catch-up that runs at start and every minute makes the events.
    shown = await call(axis, "GET", f"/api/v1/dossiers/{late}", SO_TTTT, 200)
    tid = shown["transferred_in"]["id"]
    assert shown["overdue"] is True and shown["status"] == 2
    exchange.on_status.remove(transfers.on_status)
    try:
        for status in (4, 9):
            await call(axis, "POST", f"/api/v1/dossier-transfers/{tid}/events", SO_TTTT, 200,
                       json={"status": status})  # fmt: skip
        await exchange.settle()
    finally:
        exchange.on_status.append(transfers.on_status)
    assert await codes("?overdue=true") == []
    assert await codes("?status=9") == [(late, True)]
    missed = await call(axis, "GET", f"/api/v1/dossiers/{late}", XA, 200)
    assert missed["status"] == 2
    assert await transfers.catch_up() == 2
    assert await transfers.catch_up() == 0
    caught = await call(axis, "GET", f"/api/v1/dossiers/{late}", XA, 200)
    assert [(e["from"], e["to"]) for e in caught["events"]] == [(None, 2), (2, 4), (4, 9)]
    assert caught["status"] == 9
    # Done by the step's agency after the dossier's due date: late for the KPIs, as a local 9.
    assert missed["late"] is False and caught["late"] is True


async def test_moves_that_arrive_out_of_order_become_events_in_order(axis: Axis) -> None:
    """Status messages numbered by their move (#K) reach the originating unit in another
    order (as after an outage): the second waits for the first; a repeat is ignored."""
    await seed(axis)
    exchange = axis.client.app[EXCHANGE]
    resp = await axis.client.post(
        "/api/v1/dossiers",
        data=form({"procedure": TWO_STEPS, "applicant": dict(APPLICANT), "channel": 1}),
        headers=axis.auth(XA),
    )
    code = (await resp.json())["code"]
    sent = await call(
        axis, "POST", f"/api/v1/dossiers/{code}/transfer", XA, 201, json={"agency": SO_TTTT}
    )
    await exchange.settle()

    def report(status: int, seq: int, minute: int) -> StatusMessage:
        at = datetime(2026, 12, 7, 9, minute, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
        return StatusMessage(
            from_=Organization(SO_TTTT),
            response_for=ResponseFor(organ_id=XA, document_id=sent["document_id"]),
            status_code=StatusCode.PROCESSING,
            description=f"[ho-so {status} {at.isoformat()} #{seq}] bước {seq}",
            timestamp=at,
        )

    async def events() -> list[tuple[int | None, int]]:
        await exchange.settle()
        full = await call(axis, "GET", f"/api/v1/dossiers/{code}", XA, 200)
        return [(e["from"], e["to"]) for e in full["events"]]

    second = report(5, 2, 10)
    assert (await axis.send_status(SO_TTTT, second)).status == 201
    assert await events() == [(None, 2)]  # waits for the first
    assert (await axis.send_status(SO_TTTT, report(4, 1, 5))).status == 201
    assert await events() == [(None, 2), (2, 4), (4, 5)]
    # The second again, in other bytes (another officer named): a new status, no new event.
    again = dataclasses.replace(second, staff_info=StaffInfo(staff="Nguyễn Văn A"))
    assert (await axis.send_status(SO_TTTT, again)).status == 201
    assert await events() == [(None, 2), (2, 4), (4, 5)]
    steps = await call(axis, "GET", f"/api/v1/dossiers/{code}/steps", XA, 200)
    assert [(t["status"], t["paused_at"] is not None) for t in steps["transfers"]] == [(5, True)]
