"""Every VDXP operation through server/vdxp/client.py against the real app (SQLite + files)."""

from __future__ import annotations

import base64
import json

import pytest
from axis_client import NGHE_AN, SO_TTTT, VPCP, document, sha256, status
from vdxp_fixtures import Vdxp, http_head, raw_request, vdxp_fixture  # noqa: F401

import edxml
from edxml import StatusCode
from server.vdxp.client import VdxpFailure
from server.vdxp.errors import ErrorCode


async def test_document_round_trip_through_every_operation(vdxp: Vdxp) -> None:
    package = document(VPCP, [NGHE_AN, SO_TTTT], subject="Công văn thử nghiệm")
    body = edxml.serialize(package)
    doc_id = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=[NGHE_AN, SO_TTTT])
    assert len(doc_id) == 32

    assert await vdxp[NGHE_AN].count_receive_edoc() == 1
    assert await vdxp[NGHE_AN].count_receive_status() == 0
    [item] = await vdxp[NGHE_AN].get_received_edoc_list()
    assert item["docId"] == doc_id
    assert item["from"] == VPCP
    assert item["to"] == NGHE_AN
    assert item["messageType"] == "edoc"
    assert item["status"] == "initial"
    assert all(isinstance(v, str) for v in item.values())

    fetched = await vdxp[NGHE_AN].get_edoc(doc_id)
    downloaded = await vdxp[NGHE_AN].download_edoc(doc_id)
    assert fetched == downloaded
    parsed = edxml.parse(fetched)
    assert isinstance(parsed, edxml.Envelope)
    assert parsed.header == package.header
    assert parsed.trace_headers[-1].organ_id == vdxp.axis.config.server.axis_id

    # processing keeps it in the list; done acknowledges it.
    await vdxp[NGHE_AN].update_status(doc_id, "processing")
    [item] = await vdxp[NGHE_AN].get_received_edoc_list()
    assert item["status"] == "processing"
    await vdxp[NGHE_AN].update_status(doc_id, "done")
    await vdxp[NGHE_AN].update_status(doc_id, "done")  # idempotent
    assert await vdxp[NGHE_AN].get_received_edoc_list() == []
    assert await vdxp[NGHE_AN].count_receive_edoc() == 0
    # a late "fail" cannot put a received item back
    await vdxp[NGHE_AN].update_status(doc_id, "fail")
    assert await vdxp[NGHE_AN].count_receive_edoc() == 0

    sent = await vdxp[VPCP].get_sent_edoc_list()
    by_recipient = {s["toCode"]: s for s in sent}
    assert set(by_recipient) == {NGHE_AN, SO_TTTT}
    assert by_recipient[NGHE_AN]["receiveStatus"] == "done"
    assert by_recipient[NGHE_AN]["receivedTime"] != ""
    assert by_recipient[SO_TTTT]["receiveStatus"] == "initial"
    assert by_recipient[SO_TTTT]["receivedTime"] == ""
    assert by_recipient[NGHE_AN]["title"] == "Công văn thử nghiệm"
    assert by_recipient[NGHE_AN]["senderDocId"] == doc_id

    # A business status back through sendEdoc (messagetype status), received by the sender.
    answer = edxml.serialize(status(NGHE_AN, package, StatusCode.ACCEPTED))
    status_id = await vdxp[NGHE_AN].send_edoc(
        answer, sender=NGHE_AN, to=VPCP, message_type="status"
    )
    assert await vdxp[VPCP].count_receive_status() == 1
    [st] = await vdxp[VPCP].get_received_edoc_list("status")
    assert st["docId"] == status_id
    assert st["messageType"] == "status"
    got = edxml.parse(await vdxp[VPCP].get_edoc(status_id))
    assert isinstance(got, edxml.StatusMessage)
    assert got.status_code == StatusCode.ACCEPTED
    await vdxp[VPCP].update_status(status_id, "done")
    assert await vdxp[VPCP].count_receive_status() == 0
    sent = await vdxp[VPCP].get_sent_edoc_list()
    assert {s["toCode"]: s["receiveStatusDesc"][:2] for s in sent}[NGHE_AN] == "03"


async def test_resend_is_idempotent_and_other_bytes_conflict(vdxp: Vdxp) -> None:
    package = document(VPCP, [NGHE_AN])
    body = edxml.serialize(package)
    first = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)
    again = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)
    assert again == first
    assert await vdxp[NGHE_AN].count_receive_edoc() == 1
    other = document(VPCP, [NGHE_AN], document_id=package.header.document_id, subject="Khác")
    with pytest.raises(VdxpFailure) as info:
        await vdxp[VPCP].send_edoc(edxml.serialize(other), sender=VPCP, to=NGHE_AN)
    assert info.value.code == ErrorCode.CONFLICT


async def test_agency_directory_operations(vdxp: Vdxp) -> None:
    agencies = await vdxp[VPCP].get_agencies_list()
    by_code = {a["code"]: a for a in agencies}
    assert by_code[NGHE_AN]["name"] == "UBND tỉnh Nghệ An"
    assert by_code[SO_TTTT]["pid"] == NGHE_AN
    assert by_code[VPCP]["pid"] == ""
    assert set(by_code[VPCP]) == {"id", "pid", "code", "name", "mail", "oldCode"}
    qd20 = await vdxp[VPCP].get_agencies_list(qd20=True)
    assert all(a["code102"] == a["code"] for a in qd20)
    units = await vdxp[VPCP].get_synchronize_unit()
    assert {u["code"] for u in units} == set(by_code)
    assert all(u["deleted"] is False and u["centerCode"] for u in units)

    unit = {"code": "002.01.00.H41", "name": "Phòng Văn thư", "mail": "vt@nghean.gov.vn"}
    registered = await vdxp[NGHE_AN].register_agency(unit)
    assert registered["data"]["pid"] == NGHE_AN
    codes = {a["code"] for a in await vdxp[VPCP].get_agencies_list()}
    assert "002.01.00.H41" in codes
    # the new unit can receive documents at once
    doc_id = await vdxp[VPCP].send_edoc(
        edxml.serialize(document(VPCP, ["002.01.00.H41"])), sender=VPCP, to="002.01.00.H41"
    )
    assert doc_id
    with pytest.raises(VdxpFailure) as info:  # a new request (a repeated one is a replay)
        await vdxp.fresh(NGHE_AN).register_agency(unit)
    assert info.value.code == ErrorCode.CONFLICT
    with pytest.raises(VdxpFailure) as info:  # only under oneself
        await vdxp[VPCP].register_agency({**unit, "code": "003.01.00.H41", "pid": NGHE_AN})
    assert info.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(VdxpFailure) as info:  # only what one registered
        await vdxp[VPCP].delete_agency("002.01.00.H41")
    assert info.value.code == ErrorCode.NOT_FOUND
    await vdxp[NGHE_AN].delete_agency("002.01.00.H41")
    assert "002.01.00.H41" not in {a["code"] for a in await vdxp[VPCP].get_agencies_list()}
    units = {u["code"]: u for u in await vdxp[VPCP].get_synchronize_unit()}
    assert units["002.01.00.H41"]["deleted"] is True
    # registering it again (a new request) restores it
    await vdxp.fresh(NGHE_AN).register_agency(unit)
    assert "002.01.00.H41" in {a["code"] for a in await vdxp[VPCP].get_agencies_list()}


async def test_get_edoc_is_base64_of_the_stored_package(vdxp: Vdxp) -> None:
    pdf = bytes(range(256)) * 150  # not a multiple of 3 once wrapped: exercises the carry
    package = document(VPCP, [NGHE_AN], attachments=[("a.pdf", "application/pdf", pdf)])
    doc_id = await vdxp[VPCP].send_edoc(edxml.serialize(package), sender=VPCP, to=NGHE_AN)
    answer = await vdxp[NGHE_AN].call(
        "getEdoc", {"docId": doc_id}, body=b"{}", expect_continue=True
    )
    assert isinstance(answer, dict)
    assert list(answer)[:3] == ["status", "ErrorCode", "ErrorDesc"]
    stored = base64.b64decode(answer["data"])
    resp = await vdxp.axis.get(f"/api/v1/documents/{doc_id}", NGHE_AN)
    assert sha256(stored) == sha256(await resp.read())
    parsed = edxml.parse(stored)
    assert isinstance(parsed, edxml.Envelope)
    assert parsed.attachments[0].data == pdf


async def test_unknown_operation_is_a_fail_answer(vdxp: Vdxp) -> None:
    with pytest.raises(VdxpFailure) as info:
        await vdxp[VPCP].call("getEverything")
    assert info.value.code == ErrorCode.UNKNOWN_OPERATION


async def test_stale_docid_of_another_case_rides_along(vdxp: Vdxp) -> None:
    """The SDK keeps every key it was given: after updateStatus({"docid": A}) a getEdoc of B
    carries docId=B *and* docid=A. The axis serves the item still waiting (B). (Sent on a raw
    socket: aiohttp's client folds headers that differ only in case.)"""
    first = await vdxp[VPCP].send_edoc(
        edxml.serialize(document(VPCP, [NGHE_AN])), sender=VPCP, to=NGHE_AN
    )
    second = await vdxp[VPCP].send_edoc(
        edxml.serialize(document(VPCP, [NGHE_AN])), sender=VPCP, to=NGHE_AN
    )
    client = vdxp[NGHE_AN]
    await client.call(
        "updateStatus", {"docid": first, "status": "done"}, body=b"{}", expect_continue=True
    )

    async def sdk_call(operation: str, params: dict[str, str]) -> dict[str, str]:
        headers = client.build_headers(params, "application/json")
        assert "XroadVnpt-docid" in headers and "XroadVnpt-docId" in headers
        status, _, body = await raw_request(
            vdxp.axis, http_head(operation, headers, length=2), b"{}"
        )
        assert status == 200
        return dict(json.loads(body))

    answer = await sdk_call("getEdoc", {"docid": first, "status": "done", "docId": second})
    assert answer["status"] == "OK", answer
    assert base64.b64decode(answer["data"]) == await client.download_edoc(second)
    answer = await sdk_call("updateStatus", {"docid": first, "status": "done", "docId": second})
    assert answer["status"] == "OK", answer
    assert await client.count_receive_edoc() == 0
    # with nothing left to tell them apart, it is a FAIL, not a guess
    answer = await sdk_call("getEdoc", {"docid": first, "docId": second})
    assert answer["status"] == "FAIL"
    assert answer["ErrorCode"] == ErrorCode.AMBIGUOUS_HEADER
