"""One-stop dossiers on the real app and real SQLite: intake, codes, idempotency, bad input (nothing
stored), the lifecycle with its supplement pause, visibility, lists and the audit chain."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, XA, Axis

from server.calendar.clock import WorkingClock
from server.dossiers.catalogue import Located, store_procedures
from server.dossiers.procedures import procedure_from_mapping
from server.exchange.delivery import sweep_orphans
from server.http.appkeys import CALENDAR, DATABASE, OBJECTS
from server.runtime.audit import ADMIN
from storage.audit import AuditRepo, verify_log
from storage.ids import utcnow
from storage.repos.dossiers import DossierRepo
from storage.repos.pending_objects import PendingObjectRepo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BIRTH = "1.001193"  # working days, at SO_TTTT; components TK*, GCS*, UQ
MARRIAGE = "2.000806"  # calendar days, at NGHE_AN; component TK*

APPLICANT = {
    "name": "Nguyễn Văn An",
    "id_number": "040203001234",
    "phone": "0912 345 678",
    "email": "an@example.vn",
    "address": "Nghi Phong, Nghi Lộc, Nghệ An",
    "kind": "citizen",
}
FILES = {"TK": b"%PDF-1.7 to khai", "GCS": b"%PDF-1.7 giay chung sinh"}


async def seed(axis: Axis) -> None:
    birth = {
        "code": BIRTH,
        "name": "Đăng ký khai sinh",
        "agency": SO_TTTT,
        "days": 3,
        "components": [
            {"code": "TK", "name": "Tờ khai", "required": True},
            {"code": "GCS", "name": "Giấy chứng sinh", "required": True},
            {"code": "UQ", "name": "Văn bản ủy quyền", "required": False},
        ],
    }
    marriage = {
        "code": MARRIAGE,
        "name": "Đăng ký kết hôn",
        "agency": NGHE_AN,
        "days": 15,
        "calendar_days": True,
        "components": [{"code": "TK", "name": "Tờ khai", "required": True}],
    }
    entries = [Located(d["code"], procedure_from_mapping(d)) for d in (birth, marriage)]
    async with axis.client.app[DATABASE].transaction() as tx:
        await store_procedures(tx, entries, ADMIN, "test")


def form(dossier: dict[str, Any], files: dict[str, bytes] | None = None) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("dossier", json.dumps(dossier), content_type="application/json")
    for name, content in (FILES if files is None else files).items():
        data.add_field(name, content, filename=f"{name}.pdf", content_type="application/pdf")
    return data


def request(**changes: Any) -> dict[str, Any]:
    return {"procedure": BIRTH, "applicant": dict(APPLICANT), "channel": 1, **changes}


async def intake(
    axis: Axis,
    organ_id: str = XA,
    files: dict[str, bytes] | None = None,
    expect: int = 201,
    headers: dict[str, str] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    resp = await axis.client.post(
        "/api/v1/dossiers",
        data=form(request(**changes), files),
        headers=axis.auth(organ_id, **(headers or {})),
    )
    body = await resp.json()
    assert resp.status == expect, body
    return dict(body)


async def move(axis: Axis, organ_id: str, code: str, status: int, **extra: Any) -> Any:
    return await axis.client.post(
        f"/api/v1/dossiers/{code}/events",
        json={"status": status, **extra},
        headers=axis.auth(organ_id),
    )


async def moved(axis: Axis, organ_id: str, code: str, status: int, **extra: Any) -> Any:
    resp = await move(axis, organ_id, code, status, **extra)
    body = await resp.json()
    assert resp.status == 200, body
    return body


def clock_of(axis: Axis) -> WorkingClock:
    return axis.client.app[CALENDAR].clock


async def stored(axis: Axis) -> dict[str, Any]:
    """Row counts of the dossier tables (either backend), object files and spool files."""
    async with axis.client.app[DATABASE].reader() as tx:
        rows = {
            t: (await tx.fetchone(f"SELECT count(*) FROM {t}"))[0]  # type: ignore[index]  # noqa: S608
            for t in (
                "dossiers",
                "dossier_files",
                "dossier_events",
                "pending_objects",
                "audit_log",
                "inline_objects",
            )
        }
    objects = sorted(str(p) for p in axis.config.objects_dir.rglob("*") if p.is_file())
    spool = sorted(p.name for p in axis.config.spool_dir.iterdir())
    return {"rows": rows, "objects": objects, "spool": spool}


def today() -> str:
    return datetime.now(VN).strftime("%y%m%d")


async def test_counter_intake(axis: Axis) -> None:
    await seed(axis)
    body = await intake(axis)
    assert body["code"] == f"{XA}-{today()}-0001"
    assert body["status"] == 2
    assert body["lookup_url"] == f"{axis.config.base_url}/tra-cuu?ma={body['code']}"
    received = datetime.fromisoformat(body["received_at"])
    assert received.utcoffset() == timedelta(hours=7)
    assert datetime.fromisoformat(body["due_at"]) == clock_of(axis).due_at(received, 3)
    resp = await axis.get(f"/api/v1/dossiers/{body['code']}", XA)
    full = await resp.json()
    assert resp.status == 200, full
    assert full["applicant"]["phone"] == "0912345678"
    assert {f["component"] for f in full["files"]} == {"TK", "GCS"}
    assert [(e["from"], e["to"], e["actor"]) for e in full["events"]] == [(None, 2, XA)]
    snapshot = await stored(axis)
    assert snapshot["rows"]["pending_objects"] == 0 and len(snapshot["objects"]) == 2


async def test_online_intake_on_calendar_days_waits_at_status_1(axis: Axis) -> None:
    await seed(axis)
    body = await intake(axis, procedure=MARRIAGE, channel=2, files={"TK": b"x"})
    assert body["status"] == 1
    received = datetime.fromisoformat(body["received_at"])
    assert datetime.fromisoformat(body["due_at"]) == clock_of(axis).due_at_calendar_days(
        received, 15
    )
    full = await (await axis.get(f"/api/v1/dossiers/{body['code']}", NGHE_AN)).json()
    assert full["agency"] == NGHE_AN and full["receiving_unit"] == XA and full["channel"] == 2


async def test_backdated_paper_intake_carries_its_date(axis: Axis) -> None:
    await seed(axis)
    when = datetime.now(VN) - timedelta(days=12)
    body = await intake(axis, received_at=when.isoformat())
    assert body["code"] == f"{XA}-{when.strftime('%y%m%d')}-0001"
    assert datetime.fromisoformat(body["received_at"]) == when
    assert datetime.fromisoformat(body["due_at"]) == clock_of(axis).due_at(when, 3)


async def test_concurrent_intakes_number_without_gap_or_repeat(axis: Axis) -> None:
    await seed(axis)
    results = await asyncio.gather(
        *(intake(axis, files={"TK": f"tk {i}".encode(), "GCS": b"g"}) for i in range(30))
    )
    codes = sorted(r["code"] for r in results)
    assert codes == [f"{XA}-{today()}-{n:04d}" for n in range(1, 31)]
    other = await intake(axis, SO_TTTT)  # another unit starts its own sequence
    assert other["code"] == f"{SO_TTTT}-{today()}-0001"


async def test_idempotency_key_answers_the_same_dossier(axis: Axis) -> None:
    await seed(axis)
    key = {"Idempotency-Key": "clerk-7:2026-0001"}
    first = await intake(axis, headers=key)
    again = await intake(axis, headers=key, expect=200)
    assert again == first
    other_unit = await intake(axis, SO_TTTT, headers=key)  # keys are per unit
    assert other_unit["code"] != first["code"]
    fresh = await intake(axis)
    assert fresh["code"].endswith("-0002")


@pytest.mark.parametrize(
    ("changes", "files", "status", "field"),
    [
        ({"procedure": "9.999999"}, None, 422, "procedure"),
        ({}, {"TK": b"only the form"}, 422, "GCS"),
        ({}, {**FILES, "XX": b"?"}, 422, "XX"),
        ({"applicant": {**APPLICANT, "id_number": "12345"}}, None, 422, "applicant.id_number"),
        (
            {"applicant": {**APPLICANT, "id_number": "04020300123A"}},
            None,
            422,
            "applicant.id_number",
        ),
        ({"applicant": {**APPLICANT, "phone": "12345"}}, None, 422, "applicant.phone"),
        ({"applicant": {**APPLICANT, "name": ""}}, None, 422, "applicant.name"),
        ({"applicant": {**APPLICANT, "kind": "alien"}}, None, 422, "applicant.kind"),
        ({"channel": 4}, None, 422, "channel"),
        ({"agency": "000.00.00.Z99"}, None, 422, "agency"),
        ({"received_at": "2099-01-01T08:00:00+07:00"}, None, 422, "received_at"),
        ({"received_at": "2020-01-01T08:00:00+07:00"}, None, 422, "received_at"),
        ({"received_at": "2026-01-01T08:00:00"}, None, 422, "received_at"),
        ({}, {**FILES, "GCS": b"x" * 2000}, 413, "GCS"),
    ],
)
async def test_bad_input_names_the_field_and_stores_nothing(
    axis: Axis,
    changes: dict[str, Any],
    files: dict[str, bytes] | None,
    status: int,
    field: str,
) -> None:
    await seed(axis)
    before = await stored(axis)
    body = await intake(axis, files=files, expect=status, **changes)
    assert body["field"] == field, body
    assert await stored(axis) == before
    # and the refused intake took no number
    assert (await intake(axis))["code"].endswith("-0001")


@pytest.fixture
def axis_config(tmp_path: Any) -> Any:
    from server.runtime.config import load_config

    return load_config(
        env={
            "LIENTHONG_SERVER_MAX_BODY_BYTES": str(1024 * 1024),
            "LIENTHONG_SERVER_LOG_JSON": "0",
            "LIENTHONG_DOSSIERS_MAX_FILE_BYTES": "1000",
            "LIENTHONG_SERVER_PUBLIC_URL": "https://dichvucong.nghean.gov.vn/",
        },
        data_dir=tmp_path / "data",
    )


async def test_lookup_url_uses_the_public_url(axis: Axis) -> None:
    await seed(axis)
    body = await intake(axis)
    assert body["lookup_url"] == (
        f"https://dichvucong.nghean.gov.vn/tra-cuu?ma={XA}-{today()}-0001"
    )


async def test_the_lifecycle_legal_and_illegal_moves(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis, channel=2))["code"]  # status 1, receiving XA, competent SO_TTTT
    resp = await move(axis, XA, code, 9)
    problem = await resp.json()
    assert resp.status == 409 and problem["type"] == "/problems/illegal-move"
    assert problem["allowed"] == [2, 3, 7]
    resp = await move(axis, SO_TTTT, code, 2)  # accepting is the receiving unit's move
    problem = await resp.json()
    assert resp.status == 403 and problem["type"] == "/problems/move-not-permitted"
    assert problem["allowed"] == []
    await moved(axis, XA, code, 2, note="Đủ hồ sơ")
    await moved(axis, SO_TTTT, code, 4)
    await moved(axis, SO_TTTT, code, 6, note="Nộp lệ phí")
    await moved(axis, XA, code, 4, note="Đã nộp")
    await moved(axis, SO_TTTT, code, 9)
    done = await moved(axis, XA, code, 10, note="Đã trả kết quả")
    assert done["status"] == 10 and done["status_label"] == "Đã trả kết quả"
    steps = [(e["from"], e["to"], e["actor"]) for e in done["events"]]
    assert steps == [
        (None, 1, XA),
        (1, 2, XA),
        (2, 4, SO_TTTT),
        (4, 6, SO_TTTT),
        (6, 4, XA),
        (4, 9, SO_TTTT),
        (9, 10, XA),
    ]
    resp = await move(axis, XA, code, 4)
    assert resp.status == 409 and (await resp.json())["allowed"] == []
    bad = await move(axis, XA, code, 11)
    assert bad.status == 422 and (await bad.json())["field"] == "status"
    # the events are append-only, in the database itself
    conn = sqlite3.connect(axis.config.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE dossier_events SET note = 'x'")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("DELETE FROM dossier_events")
    finally:
        conn.close()


async def test_supplement_pauses_the_clock_and_moves_the_due_date(axis: Axis) -> None:
    await seed(axis)
    now = datetime.now(VN).replace(microsecond=0)
    received = now - timedelta(days=20)
    paused_at, resumed_at = now - timedelta(days=15), now - timedelta(days=9, hours=3)
    first = await intake(axis, received_at=received.isoformat())
    code = first["code"]
    await moved(axis, SO_TTTT, code, 4, at=(received + timedelta(hours=1)).isoformat())
    waiting = await moved(axis, SO_TTTT, code, 5, note="Thiếu bản sao", at=paused_at.isoformat())
    assert waiting["paused"] is True and waiting["overdue"] is False
    early = await move(axis, SO_TTTT, code, 4, at=(paused_at - timedelta(hours=1)).isoformat())
    assert early.status == 422 and (await early.json())["field"] == "at"
    future = await move(axis, XA, code, 4, at=(now + timedelta(hours=1)).isoformat())
    assert future.status == 422 and (await future.json())["field"] == "at"
    overdue = await (await axis.get("/api/v1/dossiers?overdue=true", XA)).json()
    assert overdue["items"] == []  # a paused dossier is never overdue
    data = aiohttp.FormData()
    event = {"status": 4, "note": "Đã bổ sung", "at": resumed_at.isoformat()}
    data.add_field("event", json.dumps(event), content_type="application/json")
    data.add_field("UQ", b"%PDF uy quyen", filename="uq.pdf", content_type="application/pdf")
    resp = await axis.client.post(
        f"/api/v1/dossiers/{code}/events", data=data, headers=axis.auth(XA)
    )
    resumed = await resp.json()
    assert resp.status == 200, resumed
    clock = clock_of(axis)
    paused = clock.working_time_between(paused_at, resumed_at)
    assert paused > timedelta(0)
    expected = clock.add_working_time(datetime.fromisoformat(first["due_at"]), paused)
    assert datetime.fromisoformat(resumed["due_at"]) == expected
    assert resumed["paused_at"] is None
    supplement = [f for f in resumed["files"] if f["component"] == "UQ"]
    assert len(supplement) == 1 and supplement[0]["event"] == resumed["events"][-1]["id"]
    # 20 days back and 3 working days plus the pause: overdue now
    assert resumed["overdue"] is True
    listed = await (await axis.get("/api/v1/dossiers?overdue=true", SO_TTTT)).json()
    assert [d["code"] for d in listed["items"]] == [code]
    async with axis.client.app[DATABASE].reader() as tx:
        entries = await AuditRepo(tx).for_object(code)
        report, _ = await verify_log(tx)
    assert [e.action for e in entries] == ["dossier.intake"] + ["dossier.move"] * 3
    assert entries[-1].details["paused_seconds"] == int(paused.total_seconds())
    assert entries[2].details == {
        "from": 4,
        "to": 5,
        "note": "Thiếu bản sao",
        "at": paused_at.isoformat(),
    }
    assert report.ok


async def test_another_agency_sees_nothing(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    resp = await axis.get(f"/api/v1/dossiers/{code}", OUTSIDER)
    assert resp.status == 404
    resp = await move(axis, OUTSIDER, code, 4)
    assert resp.status == 404
    assert (await (await axis.get("/api/v1/dossiers", OUTSIDER)).json())["items"] == []
    resp = await axis.get("/api/v1/dossiers/nothing-like-it", XA)
    assert resp.status == 404


async def test_lists_filters_and_paging(axis: Axis) -> None:
    await seed(axis)
    birth = [(await intake(axis))["code"] for _ in range(3)]
    marriage = (await intake(axis, procedure=MARRIAGE, files={"TK": b"k"}))["code"]
    await moved(axis, SO_TTTT, birth[0], 4)
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        resp = await axis.get(f"/api/v1/dossiers?limit=2{cursor}", XA)
        page = await resp.json()
        assert resp.status == 200, page
        seen += [d["code"] for d in page["items"]]
        if page["next"] is None:
            break
        cursor = f"&after={page['next']}"
    assert seen == sorted([*birth, marriage])
    mine = await (await axis.get("/api/v1/dossiers", SO_TTTT)).json()
    assert [d["code"] for d in mine["items"]] == birth  # it processes the births only
    theirs = await (await axis.get("/api/v1/dossiers", NGHE_AN)).json()
    assert [d["code"] for d in theirs["items"]] == [marriage]
    by_status = await (await axis.get("/api/v1/dossiers?status=4", XA)).json()
    assert [d["code"] for d in by_status["items"]] == [birth[0]]
    by_procedure = await (await axis.get(f"/api/v1/dossiers?procedure={MARRIAGE}", XA)).json()
    assert [d["code"] for d in by_procedure["items"]] == [marriage]
    assert (await (await axis.get("/api/v1/dossiers?overdue=true", XA)).json())["items"] == []
    for query in ("status=11", "overdue=maybe", "limit=0", "after=zz"):
        resp = await axis.get(f"/api/v1/dossiers?{query}", XA)
        assert resp.status == 400, query


async def test_the_orphan_sweep_keeps_a_dossiers_files(axis: Axis) -> None:
    """An intake settles its intent records; a lingering record of the same bytes (another
    intake that died) never lets the sweep delete an object a dossier names."""
    await seed(axis)
    code = (await intake(axis))["code"]
    app = axis.client.app
    database, objects = app[DATABASE], app[OBJECTS]
    async with database.reader() as tx:
        files = await DossierRepo(tx).files(code)
        assert [await PendingObjectRepo(tx).get(f.sha256) for f in files] == [None, None]
    async with database.transaction() as tx:
        for f in files:
            await PendingObjectRepo(tx).record(f.sha256, utcnow() - timedelta(seconds=10))
    assert await sweep_orphans(database, objects, grace=5) == 0
    assert all([await objects.exists(f.sha256) for f in files])
