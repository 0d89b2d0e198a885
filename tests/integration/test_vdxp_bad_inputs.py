"""VDXP bad inputs against the real app: always HTTP 200 + FAIL, nothing stored, nothing leaked."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta

import pytest
from axis_client import NGHE_AN, OUTSIDER, VPCP, document
from vdxp_fixtures import Vdxp, http_head, raw_request, read_response, vdxp_fixture  # noqa: F401

import edxml
from server.vdxp import protocol
from server.vdxp.client import OCTETS, VdxpClient, VdxpFailure
from server.vdxp.errors import ErrorCode


def _fail(status: int, body: bytes) -> dict[str, str]:
    assert status == 200
    assert body.isascii()
    answer = json.loads(body)
    assert answer["status"] == "FAIL"
    assert answer["ErrorCode"] != "0" and answer["ErrorDesc"]
    return dict(answer)


async def _code(call: object) -> str:
    with pytest.raises(VdxpFailure) as info:
        await call  # type: ignore[misc]
    return info.value.code


async def test_wrong_secret_fails_and_stores_nothing(vdxp: Vdxp) -> None:
    before = await vdxp.axis.snapshot()
    bad = VdxpClient(vdxp.endpoint, vdxp.system_id(VPCP), "not-the-secret")
    try:
        body = edxml.serialize(document(VPCP, [NGHE_AN]))
        code = await _code(bad.send_edoc(body, sender=VPCP, to=NGHE_AN))
        assert code == ErrorCode.BAD_SIGNATURE
        assert await _code(bad.get_received_edoc_list()) == ErrorCode.BAD_SIGNATURE
    finally:
        await bad.close()
    assert (await vdxp.axis.snapshot()) == before


async def test_unknown_system_id(vdxp: Vdxp) -> None:
    stranger = VdxpClient(vdxp.endpoint, "sys-nobody", vdxp.secrets[VPCP])
    try:
        assert await _code(stranger.count_receive_edoc()) == ErrorCode.UNKNOWN_SYSTEM
    finally:
        await stranger.close()


@pytest.mark.parametrize(
    "missing", ["XroadVnpt-systemid", "XroadVnpt-sign-header", "XroadVnpt-hash-header"]
)
async def test_missing_header_is_a_fail_answer(vdxp: Vdxp, missing: str) -> None:
    headers = vdxp[VPCP].build_headers({}, "application/json")
    del headers[missing]
    status, _, body = await raw_request(vdxp.axis, http_head("countReceiveEdoc", headers))
    assert _fail(status, body)["ErrorCode"] == ErrorCode.MISSING_HEADER


async def test_no_headers_at_all_is_a_fail_answer_not_401(vdxp: Vdxp) -> None:
    resp = await vdxp.axis.client.post("/vdxp/getReceivedEdocList")
    assert resp.status == 200
    answer = await resp.json()
    assert answer["status"] == "FAIL"
    assert answer["ErrorCode"] == ErrorCode.MISSING_HEADER


def _mangled_headers(vdxp: Vdxp, value: str) -> dict[str, str | bytes]:
    """What the Java client sends: it signs UTF-8 text but writes one byte per character."""
    client = vdxp[VPCP]
    params = {
        "note": value,
        "systemid": client.system_id,
        "timestamp": client.timestamp,
        "Content-Type": "application/json",
    }
    headers = protocol.signed_headers(params, vdxp.secrets[VPCP])
    return {k: bytes(ord(c) & 0xFF for c in v) for k, v in headers.items()}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        # ệ arrives as 0xC7: invalid UTF-8, seen and named
        ("UBND tỉnh Nghệ An", ErrorCode.MANGLED_HEADER),
        # Ã (U+00C3) and © (U+00A9) arrive as 0xC3 0xA9: valid UTF-8 "é"; the HMAC fails
        ("Ã©", ErrorCode.MANGLED_HEADER),
        # Ũ (U+0168) arrives as "h": looks like ASCII, only the signature can tell
        ("Ũ", ErrorCode.BAD_SIGNATURE),
    ],
)
async def test_mangled_non_ascii_header_gets_a_clear_error(
    vdxp: Vdxp, value: str, code: ErrorCode
) -> None:
    wire = _mangled_headers(vdxp, value)
    status, _, body = await raw_request(vdxp.axis, http_head("getReceivedEdocList", wire))
    answer = _fail(status, body)
    assert answer["ErrorCode"] == code
    assert "non-ASCII" in answer["ErrorDesc"]


async def test_mangled_control_byte_is_refused_by_the_http_parser(vdxp: Vdxp) -> None:
    """Đ (U+0110) arrives as 0x10, a control byte the HTTP/1.1 parser refuses before any
    handler runs: a plain 400 naming the header (not a VDXP answer; see docs/vdxp.md)."""
    before = await vdxp.axis.snapshot()
    wire = _mangled_headers(vdxp, "Sở Đồng Tháp")
    status, _, body = await raw_request(vdxp.axis, http_head("getReceivedEdocList", wire))
    assert status == 400
    assert b"XroadVnpt-note" in body
    assert (await vdxp.axis.snapshot()) == before


async def test_header_changed_after_signing_is_refused(vdxp: Vdxp) -> None:
    headers = vdxp[OUTSIDER].build_headers({"docId": "x", "status": "done"}, "application/json")
    headers["XroadVnpt-docId"] = "y"
    status, _, body = await raw_request(vdxp.axis, http_head("updateStatus", headers))
    assert _fail(status, body)["ErrorCode"] == ErrorCode.SIGNED_VALUE_MISMATCH


async def test_hash_file_mismatch_stores_nothing(vdxp: Vdxp) -> None:
    package = edxml.serialize(document(VPCP, [NGHE_AN]))
    before = await vdxp.axis.snapshot()
    client = vdxp[VPCP]
    params = {"from": VPCP, "to": '"000.00.00.H41"', "servicetype": "eDoc", "messagetype": "edoc"}
    for wrong in (protocol.hash_file(package + b"x"), "0" * 64, "zz"):
        with pytest.raises(VdxpFailure) as info:
            await client.call(
                "sendEdoc", params, body=package + b"\r\n", content_type=OCTETS, file_hash=wrong
            )
        assert info.value.code == ErrorCode.HASH_FILE_MISMATCH
    assert (await vdxp.axis.snapshot()) == before


async def test_hash_file_must_be_signed(vdxp: Vdxp) -> None:
    package = edxml.serialize(document(VPCP, [NGHE_AN]))
    client = vdxp[VPCP]
    headers = client.build_headers({"from": VPCP, "to": '"000.00.00.H41"'}, OCTETS)
    headers["XroadVnpt-hash-file"] = protocol.hash_file(package)  # present but not signed
    body = package + b"\r\n"
    status, _, answer = await raw_request(
        vdxp.axis, http_head("sendEdoc", headers, length=len(body)), body
    )
    assert _fail(status, answer)["ErrorCode"] == ErrorCode.NOT_SIGNED


async def test_body_without_trailing_crlf_is_accepted_when_its_hash_matches(vdxp: Vdxp) -> None:
    package = edxml.serialize(document(VPCP, [NGHE_AN]))
    params = {"from": VPCP, "to": '"000.00.00.H41"', "servicetype": "eDoc", "messagetype": "edoc"}
    answer = await vdxp[VPCP].call(
        "sendEdoc",
        params,
        body=package,
        content_type=OCTETS,
        file_hash=protocol.hash_file(package).upper(),
    )
    assert isinstance(answer, dict) and answer["DocId"]
    # same package the SDK way: the same document (idempotent, trailing CRLF not stored)
    again = await vdxp[VPCP].send_edoc(package, sender=VPCP, to=NGHE_AN)
    assert again == answer["DocId"]


async def test_sender_must_be_the_authenticated_agency(vdxp: Vdxp) -> None:
    before = await vdxp.axis.snapshot()
    mine = edxml.serialize(document(NGHE_AN, [VPCP]))
    # header from = someone else
    assert await _code(vdxp[VPCP].send_edoc(mine, sender=NGHE_AN, to=VPCP)) in {ErrorCode.FORBIDDEN}
    # header from = caller, but the package's From is someone else
    assert await _code(vdxp[VPCP].send_edoc(mine, sender=VPCP, to=VPCP)) == ErrorCode.FORBIDDEN
    assert (await vdxp.axis.snapshot())["rows"] == before["rows"]


async def test_unknown_recipient(vdxp: Vdxp) -> None:
    body = edxml.serialize(document(VPCP, ["000.00.00.Z99"]))
    code = await _code(vdxp[VPCP].send_edoc(body, sender=VPCP, to="000.00.00.Z99"))
    assert code == ErrorCode.UNKNOWN_RECIPIENT
    # header names a known agency but the package names an unknown one: the package decides
    code = await _code(vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN))
    assert code == ErrorCode.UNKNOWN_RECIPIENT


async def test_not_edxml_is_refused_and_nothing_stays_in_the_spool(vdxp: Vdxp) -> None:
    before = await vdxp.axis.snapshot()
    for body in (b"<html>not edxml</html>", b"not xml at all", b"<?xml version='1.0'?><a"):
        code = await _code(vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN))
        assert code == ErrorCode.INVALID_PACKAGE
    assert (await vdxp.axis.snapshot()) == before


async def test_too_large_is_refused(vdxp: Vdxp) -> None:
    body = b"x" * (vdxp.axis.config.server.max_body_bytes + 10)
    assert await _code(vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)) == ErrorCode.TOO_LARGE


async def test_unknown_and_foreign_doc_ids_answer_the_same_and_leak_nothing(vdxp: Vdxp) -> None:
    body = edxml.serialize(document(VPCP, [NGHE_AN], subject="Mật: không cho người ngoài"))
    doc_id = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)
    unknown_id = "0" * 32
    outsider = vdxp[OUTSIDER]
    for doc in (doc_id, unknown_id):
        for call in (
            outsider.get_edoc(doc),
            outsider.download_edoc(doc),
            outsider.update_status(doc, "done"),
        ):
            with pytest.raises(VdxpFailure) as info:
                await call
            assert info.value.code == ErrorCode.NOT_FOUND
            desc = info.value.desc.replace(doc, "<id>")
            assert desc in {f"no document <id> for {OUTSIDER}", f"no item <id> for {OUTSIDER}"}
            assert "Mật" not in json.dumps(info.value.answer)
    assert await outsider.get_received_edoc_list() == []
    assert await outsider.get_sent_edoc_list() == []
    assert await outsider.count_receive_edoc() == 0
    # the sender may read its own document but has no delivery to acknowledge
    assert edxml.parse(await vdxp[VPCP].get_edoc(doc_id))
    assert await _code(vdxp[VPCP].update_status(doc_id, "done")) == ErrorCode.NOT_FOUND
    # the recipient still has it, untouched
    assert [i["docId"] for i in await vdxp[NGHE_AN].get_received_edoc_list()] == [doc_id]


async def test_bad_status_value(vdxp: Vdxp) -> None:
    body = edxml.serialize(document(VPCP, [NGHE_AN]))
    doc_id = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)
    code = await _code(vdxp[NGHE_AN].update_status(doc_id, "read"))
    assert code == ErrorCode.BAD_PARAMETER


async def test_old_timestamp_and_accumulated_headers_are_accepted(vdxp: Vdxp) -> None:
    """The SDK keeps its first timestamp for hours (within [vdxp] timestamp_window, a day by
    default: tests/integration/test_tls_vdxp_replay.py) and carries old parameters along."""
    old = VdxpClient(
        vdxp.endpoint,
        vdxp.system_id(NGHE_AN),
        vdxp.secrets[NGHE_AN],
        timestamp=datetime.now(protocol.VN_TZ) - timedelta(hours=5),
    )
    try:
        stale = {
            "from": VPCP,
            "to": '["000.00.00.G22","000.00.00.H41"]',
            "hash-file": "abc",
            "status": "done",
            "docid": "left-over",
        }
        answer = await old.call(
            "countReceiveEdoc", {}, body=b"{}", expect_continue=True, extra=stale
        )
        assert isinstance(answer, dict) and answer["count"] == 0
        listed = await old.call("getReceivedEdocList", {"messagetype": "edoc"}, extra=stale)
        assert isinstance(listed, dict) and listed["data"] == []
    finally:
        await old.close()


async def test_expect_100_continue_is_answered_before_the_body(vdxp: Vdxp) -> None:
    """The SDK sends its headers and waits (~3 s) for 100 Continue before the body."""
    package = edxml.serialize(document(VPCP, [NGHE_AN]))
    body = package + b"\r\n"
    headers = vdxp[VPCP].build_headers(
        {"from": VPCP, "to": '"000.00.00.H41"', "servicetype": "eDoc", "messagetype": "edoc"},
        OCTETS,
        file_hash=protocol.hash_file(package),
    )
    headers["Expect"] = "100-continue"
    server = vdxp.axis.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        started = time.perf_counter()
        writer.write(http_head("sendEdoc", headers, length=len(body)))
        await writer.drain()
        line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 1.0)
        waited = time.perf_counter() - started
        assert line.startswith(b"HTTP/1.1 100 Continue"), line
        assert waited < 1.0
        writer.write(body)
        await writer.drain()
        status, _, answer = await read_response(reader)
    finally:
        writer.close()
    assert status == 200
    decoded = json.loads(answer)
    assert decoded["status"] == "OK", decoded
    assert len(decoded["DocId"]) == 32


async def test_client_expect_continue_calls_are_fast(vdxp: Vdxp) -> None:
    started = time.perf_counter()
    for _ in range(5):
        await vdxp[NGHE_AN].count_receive_edoc()
    assert time.perf_counter() - started < 2.5  # five 3-second stalls would be 15 s


async def test_answers_escape_non_ascii(vdxp: Vdxp) -> None:
    headers = vdxp[VPCP].build_headers({}, "application/json")
    status, response_headers, body = await raw_request(
        vdxp.axis, http_head("getAgenciesList", headers)
    )
    assert status == 200
    assert response_headers["content-type"].startswith("application/json")
    assert body.isascii()
    assert b"\\u1ec7" in body  # the ệ of "Nghệ An"
    assert b"null" not in body
    data = json.loads(body)["data"]
    assert {"UBND tỉnh Nghệ An"} <= {a["name"] for a in data}


async def test_message_type_must_match_the_package(vdxp: Vdxp) -> None:
    package = document(VPCP, [NGHE_AN])
    with pytest.raises(VdxpFailure) as info:
        await vdxp[VPCP].send_edoc(
            edxml.serialize(package), sender=VPCP, to=NGHE_AN, message_type="status"
        )
    assert info.value.code == ErrorCode.INVALID_PACKAGE
    assert "messagetype edoc" in info.value.desc
    assert (
        await _code(vdxp[VPCP].send_edoc(b"x", sender=VPCP, to=NGHE_AN, message_type="letter"))
        == ErrorCode.BAD_PARAMETER
    )
