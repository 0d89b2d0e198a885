"""Dossier slips over HTTP on the real app and real SQLite: each kind filled from the stored
dossier (read back with pdftotext), kinds the history does not hold, other agencies; a slip
sealed with the SoftHSM2 seal and the test PKI's TSA verifies as TOTAL_PASSED. Also the apology
(overdue dossiers only), the list filters ``agency=`` and ``received_after=``, and result files
with the moves to 9 and 10."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, XA, Axis
from axis_client import axis_config as plain_config  # noqa: F401 (a fixture)
from test_api_dossiers import APPLICANT, MARRIAGE, VN, intake, moved, seed, stored
from test_receipts_seal import hsm_config, seal_hsm, seal_pki  # noqa: F401 (fixtures)

from server.http.appkeys import DATABASE
from server.runtime.config import Config
from signing import VerificationPolicy, verify
from signing import devpki as pki_cli
from signing.report import Indication
from storage.audit import AuditRepo, verify_log


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "slip.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


async def slip(axis: Axis, code: str, kind: str, organ_id: str = XA) -> Any:
    return await axis.get(f"/api/v1/dossiers/{code}/slips/{kind}.pdf", organ_id)


async def slip_pdf(axis: Axis, code: str, kind: str, organ_id: str = XA) -> bytes:
    resp = await slip(axis, code, kind, organ_id)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.read()
    assert body.startswith(b"%PDF-")
    return bytes(body)


async def overdue_dossier(axis: Axis) -> dict[str, Any]:
    """A paper dossier received 25 days ago, due 3 working days later: overdue now (even
    with Tết in between)."""
    when = datetime.now(VN) - timedelta(days=25)
    return await intake(axis, received_at=when.isoformat())


async def test_receipt_slip_from_the_stored_dossier(axis: Axis, tmp_path: Path) -> None:
    await seed(axis)
    body = await intake(axis)
    code = body["code"]
    text = pdf_text(await slip_pdf(axis, code, "receipt"), tmp_path)
    flat = " ".join(text.split())
    assert code in flat
    assert APPLICANT["name"] in flat
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in flat
    assert "Đăng ký khai sinh" in flat and "1.001193" in flat
    assert "UBND XÃ NGHI PHONG" in flat and "UBND TỈNH NGHỆ AN" in flat  # the header, upper case
    assert "Tờ khai" in flat and "Giấy chứng sinh" in flat
    assert "Nghệ An, ngày" in flat
    due = datetime.fromisoformat(body["due_at"]).strftime("%d/%m/%Y %H:%M")
    assert due in flat
    assert f"{axis.config.base_url}/tra-cuu?ma={code}" in flat
    # the competent agency sees it too; any other agency does not
    await slip_pdf(axis, code, "receipt", SO_TTTT)
    assert (await slip(axis, code, "receipt", OUTSIDER)).status == 404


async def test_supplement_and_refusal_slips(axis: Axis, tmp_path: Path) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    note = "- Bản sao sổ hộ khẩu\n- Giấy chứng sinh bản chính\nGhi chú: nộp tại quầy số 3"
    await moved(axis, SO_TTTT, code, 5, note=note)
    flat = " ".join(pdf_text(await slip_pdf(axis, code, "supplement"), tmp_path).split())
    assert code in flat and APPLICANT["name"] in flat
    assert "PHIẾU YÊU CẦU BỔ SUNG" in flat
    assert "Bản sao sổ hộ khẩu" in flat and "Giấy chứng sinh bản chính" in flat
    assert "nộp tại quầy số 3" in flat

    online = await intake(axis, procedure=MARRIAGE, channel=2, files={"TK": b"x"})
    assert (await slip(axis, online["code"], "receipt")).status == 409  # not accepted yet
    await moved(axis, XA, online["code"], 3, note="Thủ tục không thuộc thẩm quyền của xã.")
    flat = " ".join(pdf_text(await slip_pdf(axis, online["code"], "refusal"), tmp_path).split())
    assert online["code"] in flat and APPLICANT["name"] in flat
    assert "PHIẾU TỪ CHỐI TIẾP NHẬN" in flat
    assert "Thủ tục không thuộc thẩm quyền của xã." in flat


async def test_kinds_the_history_does_not_hold(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    for kind in ("supplement", "refusal", "apology"):
        resp = await slip(axis, code, kind)
        problem = await resp.json()
        assert resp.status == 409, problem
        assert problem["type"].endswith("/slip-not-applicable") and problem["kind"] == kind
    resp = await slip(axis, code, "invoice")
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    assert (await slip(axis, f"{XA}-000101-0001", "receipt")).status == 404


SEALED = {"test_a_sealed_slip_verifies"}  # the tests whose axis has a seal


@pytest.fixture
def axis_config(request: pytest.FixtureRequest, tmp_path: Path, db_backend: str) -> Config:
    """The usual test config on each backend (`db_backend` named here so that the tests are
    parametrised by it); for a test of ``SEALED``, the one with ``[seal]`` on the session's
    SoftHSM2 axis-seal token and the test PKI's TSA (tests/integration/test_receipts_seal.py)."""
    if request.node.originalname in SEALED:
        return cast(Config, request.getfixturevalue("hsm_config"))
    return cast(Config, request.getfixturevalue("plain_config"))


@pytest.mark.sqlite_only  # the sealed axis's config (hsm_config) is on SQLite
async def test_a_sealed_slip_verifies(axis: Axis, pki: pki_cli.DevPki, tmp_path: Path) -> None:
    sealed_axis = axis
    await seed(sealed_axis)
    code = (await intake(sealed_axis))["code"]
    pdf = await slip_pdf(sealed_axis, code, "receipt")
    policy = VerificationPolicy.with_roots([pki.root_cert], online=True, context_ttl=0)
    report = await asyncio.to_thread(verify, pdf, policy, file_name="receipt.pdf")
    assert report.status == "signed" and report.all_passed, report.errors
    [signature] = report.signatures
    assert signature.indication is Indication.TOTAL_PASSED, signature.reasons
    flat = " ".join(pdf_text(pdf, tmp_path).split())
    assert code in flat and APPLICANT["name"] in flat


async def apologise(axis: Axis, code: str, organ_id: str = XA, **body: Any) -> Any:
    return await axis.client.post(
        f"/api/v1/dossiers/{code}/apology", json=body, headers=axis.auth(organ_id)
    )


async def refused(resp: Any, status: int, slug: str) -> dict[str, Any]:
    problem = await resp.json()
    assert resp.status == status, problem
    assert problem["type"].endswith(f"/{slug}"), problem
    return dict(problem)


async def test_apology_for_an_overdue_dossier(axis: Axis, tmp_path: Path) -> None:
    await seed(axis)
    code = (await overdue_dossier(axis))["code"]
    before = await (await axis.get(f"/api/v1/dossiers/{code}", XA)).json()
    assert before["overdue"] and not before["late"]
    new_due = (datetime.now(VN) + timedelta(days=5)).replace(microsecond=0)
    reason = "Cần xác minh thêm thông tin tại Sở Tư pháp."
    resp = await apologise(axis, code, SO_TTTT, new_due_at=new_due.isoformat(), reason=reason)
    after = await resp.json()
    assert resp.status == 200, after
    assert datetime.fromisoformat(after["due_at"]) == new_due
    assert after["late"] and not after["overdue"]
    [apology] = after["apologies"]
    assert apology["reason"] == reason and apology["actor"] == SO_TTTT
    assert apology["old_due_at"] == before["due_at"]
    event = after["events"][-1]
    assert (event["id"], event["from"], event["to"], event["note"]) == (
        apology["event"],
        2,
        2,
        reason,
    )
    async with axis.client.app[DATABASE].reader() as tx:
        entries = await AuditRepo(tx).for_object(code)
        report, _ = await verify_log(tx)
    assert report.ok
    assert entries[-1].action == "dossier.apology"
    assert entries[-1].details["new_due_at"] == new_due.isoformat()

    flat = " ".join(pdf_text(await slip_pdf(axis, code, "apology"), tmp_path).split())
    assert code in flat and APPLICANT["name"] in flat
    assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in flat and reason in flat
    assert new_due.strftime("%d/%m/%Y %H:%M") in flat

    # no longer overdue: no second apology until the new date is missed; late for good
    await refused(await apologise(axis, code, new_due_at=new_due.isoformat(), reason="x"),
                  409, "dossier-not-overdue")  # fmt: skip
    await moved(axis, SO_TTTT, code, 4)
    done = await moved(axis, SO_TTTT, code, 9)
    assert done["late"]
    listed = await (await axis.get("/api/v1/dossiers", XA)).json()
    assert [d["late"] for d in listed["items"] if d["code"] == code] == [True]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x"}, "new_due_at"),
        ({"new_due_at": "2030-01-01T08:00", "reason": "x"}, "new_due_at"),  # no offset
        ({"new_due_at": "soon", "reason": "x"}, "new_due_at"),
        ({"new_due_at": "2030-01-01T08:00+07:00"}, "reason"),
        ({"new_due_at": "2030-01-01T08:00+07:00", "reason": "  "}, "reason"),
        ({"new_due_at": "2030-01-01T08:00+07:00", "reason": "x", "late": True}, "late"),
        ("PAST", "new_due_at"),  # later than the old due date, but in the past
        ("EARLIER", "new_due_at"),  # before the old due date
    ],
)
async def test_apology_bad_input_names_the_field(axis: Axis, body: Any, field: str) -> None:
    await seed(axis)
    code = (await overdue_dossier(axis))["code"]
    shown = await (await axis.get(f"/api/v1/dossiers/{code}", XA)).json()
    due = datetime.fromisoformat(shown["due_at"])
    if body == "PAST":
        body = {"new_due_at": (due + timedelta(hours=1)).isoformat(), "reason": "x"}
    elif body == "EARLIER":
        body = {"new_due_at": (due - timedelta(hours=1)).isoformat(), "reason": "x"}
    problem = await refused(await apologise(axis, code, **body), 422, "invalid-dossier")
    assert problem["field"] == field
    again = await (await axis.get(f"/api/v1/dossiers/{code}", XA)).json()
    assert again["due_at"] == shown["due_at"] and not again["late"] and not again["apologies"]


async def test_apology_only_for_overdue_dossiers_of_the_caller(axis: Axis) -> None:
    await seed(axis)
    later = (datetime.now(VN) + timedelta(days=30)).isoformat()
    fresh = (await intake(axis))["code"]  # due in 3 working days
    problem = await refused(
        await apologise(axis, fresh, new_due_at=later, reason="x"), 409, "dossier-not-overdue"
    )
    assert "due_at" in problem
    late = (await overdue_dossier(axis))["code"]
    assert (await apologise(axis, late, OUTSIDER, new_due_at=later, reason="x")).status == 404
    await moved(axis, SO_TTTT, late, 5, note="Bản sao sổ hộ khẩu")  # paused: not overdue
    await refused(await apologise(axis, late, new_due_at=later, reason="x"),
                  409, "dossier-not-overdue")  # fmt: skip


async def codes(axis: Axis, organ_id: str, query: str) -> list[str]:
    resp = await axis.get(f"/api/v1/dossiers?{query}", organ_id)
    body = await resp.json()
    assert resp.status == 200, body
    return [d["code"] for d in body["items"]]


async def test_list_filters_agency_and_received_after(axis: Axis) -> None:
    await seed(axis)
    old = (await overdue_dossier(axis))["code"]  # 25 days ago, at SO_TTTT
    birth = (await intake(axis))["code"]
    marriage = (await intake(axis, procedure=MARRIAGE, files={"TK": b"x"}))["code"]
    assert await codes(axis, XA, "") == sorted([old, birth, marriage])
    assert await codes(axis, XA, f"agency={SO_TTTT}") == sorted([old, birth])
    assert await codes(axis, XA, f"agency={NGHE_AN}") == [marriage]
    assert await codes(axis, SO_TTTT, f"agency={NGHE_AN}") == []  # not among its dossiers
    since = (datetime.now(VN) - timedelta(days=5)).date().isoformat()
    assert await codes(axis, XA, f"received_after={since}") == sorted([birth, marriage])
    moment = quote((datetime.now(VN) - timedelta(days=28)).isoformat())
    assert await codes(axis, XA, f"received_after={moment}&agency={SO_TTTT}") == sorted(
        [old, birth]
    )
    assert await codes(axis, XA, f"received_after={since}&overdue=true") == []
    for bad in ("yesterday", "2026-13-01", "2026-03-01T08:00"):
        resp = await axis.get(f"/api/v1/dossiers?received_after={bad}", XA)
        problem = await refused(resp, 400, "invalid-query")
        assert "received_after" in problem["detail"]


def result_form(status: int, files: dict[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("event", json.dumps({"status": status}), content_type="application/json")
    for name, content in files.items():
        data.add_field(name, content, filename=f"{name}.pdf", content_type="application/pdf")
    return data


async def test_result_files_with_the_moves_to_9_and_10(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    await moved(axis, SO_TTTT, code, 4)
    url = f"/api/v1/dossiers/{code}/events"
    before = await stored(axis)
    resp = await axis.client.post(
        url, data=result_form(5, {"KQ": b"%PDF early"}), headers=axis.auth(SO_TTTT)
    )
    assert (await refused(resp, 422, "invalid-dossier"))["field"] == "KQ"
    assert await stored(axis) == before  # nothing stored, nothing left in the spool

    result = b"%PDF-1.7 giay khai sinh"
    resp = await axis.client.post(
        url, data=result_form(9, {"KQ": result}), headers=axis.auth(SO_TTTT)
    )
    done = await resp.json()
    assert resp.status == 200, done
    [kq] = [f for f in done["files"] if f["component"] == "KQ"]
    assert kq["event"] == done["events"][-1]["id"] and done["status"] == 9
    assert kq["sha256"] == hashlib.sha256(result).hexdigest() and kq["size"] == len(result)
    resp = await axis.client.post(
        url, data=result_form(10, {"BN": b"%PDF bien nhan"}), headers=axis.auth(XA)
    )
    returned = await resp.json()
    assert resp.status == 200, returned
    assert [f["component"] for f in returned["files"]][-2:] == ["KQ", "BN"]
    after = await stored(axis)
    assert len(after["objects"]) == len(before["objects"]) + 2
    assert after["rows"]["pending_objects"] == 0 and after["spool"] == []
