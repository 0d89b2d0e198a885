"""Issue 18, finding 9: hostile input is a 4xx problem+json, never a 500, on a served demo.

Each case is what the attack on a fresh ``lienthong demo`` + ``serve`` sent: deeply nested JSON
to every JSON-reading route, a Unicode digit or a 23-digit cursor in the paging parameters, an
invalid UTF-8 file name on the anonymous public verify, an attachment whose ContentType holds
CR/LF.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import requests
from demo_axis import RECIPIENT, SENDER, DemoAxis, problem, serve_log

from server.vdxp import protocol

# Far deeper than Python's recursion limit: json.loads raised RecursionError on it.
NESTED = b"[" * 50_000 + b"]" * 50_000
NESTED_OBJECT = b'{"url": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_000 + b"}"


def _json_routes(axis: DemoAxis) -> list[tuple[str, str]]:
    doc, session = axis.ids["document"], axis.ids["signing_session"]
    return [
        ("PUT", "/api/v1/webhook"),
        ("POST", "/api/v1/signing-sessions"),
        ("POST", f"/api/v1/documents/{doc}/attachments/0/seal"),
        ("PUT", f"/api/v1/signing-sessions/{session}/signature"),
    ]


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_on_every_json_route(demo_axis: DemoAxis, body: bytes) -> None:
    for method, path in _json_routes(demo_axis):
        resp = demo_axis.request(
            method, path, data=body,
            headers={**demo_axis.auth(), "Content-Type": "application/json"},
        )  # fmt: skip
        assert resp.status_code == 400, (path, resp.status_code, resp.text[:300])
        assert "nested" in problem(resp)["detail"], (path, resp.text[:300])
    assert "RecursionError" not in serve_log(demo_axis)


def _vdxp_headers(axis: DemoAxis, operation_params: dict[str, str]) -> dict[str, str]:
    system_id, secret = axis.vdxp[RECIPIENT]
    params = {
        "systemid": system_id,
        "timestamp": protocol.format_timestamp(protocol.datetime.now(protocol.VN_TZ)),
        "Content-Type": "application/json",
        **operation_params,
    }
    return protocol.signed_headers(params, secret)


def test_deeply_nested_json_to_vdxp_register_agency_is_a_request_fail(demo_axis: DemoAxis) -> None:
    nested = b"[" * 20_000 + b"]" * 20_000  # under registerAgency's 64 KiB
    resp = demo_axis.request(
        "POST", "/vdxp/registerAgency", data=nested, headers=_vdxp_headers(demo_axis, {})
    )
    answer = resp.json()
    assert resp.status_code == 200 and answer["status"] == "FAIL", answer
    # A refusal of the request, not the "internal error of the axis" a RecursionError gave.
    assert answer["ErrorCode"] != str(protocol.ErrorCode.INTERNAL), answer
    assert "nested" in answer["ErrorDesc"], answer
    assert "RecursionError" not in serve_log(demo_axis)


def test_vdxp_to_header_nested_deeply_is_a_request_fail(demo_axis: DemoAxis) -> None:
    nested_to = "[" * 3000 + "]" * 3000
    headers = _vdxp_headers(demo_axis, {"to": nested_to, "hash-file": "0"})
    resp = demo_axis.request("POST", "/vdxp/sendEdoc", data=b"<x/>\r\n", headers=headers)
    answer = resp.json()
    assert answer["status"] == "FAIL" and answer["ErrorCode"] != str(protocol.ErrorCode.INTERNAL), (
        answer
    )


def _paged(axis: DemoAxis) -> list[tuple[str, dict[str, str]]]:
    admin = {"Authorization": f"Bearer {axis.admin_token}"}
    return [
        ("/api/v1/inbox", axis.auth()),
        ("/api/v1/sent", axis.auth(SENDER)),
        ("/api/v1/audit", admin),
        ("/api/v1/procedures", axis.auth()),
        ("/api/v1/dossiers", axis.auth("000.00.00.H41")),
    ]


@pytest.mark.parametrize(
    "query",
    ["limit=¹", "limit=٣", "limit=", "limit=+5", "limit= 5", "limit=1e2", "after=" + "1" * 23,
     "after=" + "f" * 65, "after=-1", "after=%00"],
)  # fmt: skip
def test_bad_paging_parameters_are_400_invalid_query(demo_axis: DemoAxis, query: str) -> None:
    for path, headers in _paged(demo_axis):
        resp = demo_axis.request("GET", f"{path}?{query}", headers=headers)
        if query.startswith("after=") and path in {"/api/v1/inbox", "/api/v1/sent"}:
            # a delivery/document id cursor: one that names nothing is an empty page or 400
            assert resp.status_code in {200, 400}, (path, query, resp.text[:300])
        else:
            assert resp.status_code == 400, (path, query, resp.status_code, resp.text[:300])
        if resp.status_code == 400:
            assert problem(resp)["type"].endswith("/invalid-query"), (path, query)


def test_good_paging_parameters_still_work(demo_axis: DemoAxis) -> None:
    for path, headers in _paged(demo_axis):
        resp = demo_axis.request("GET", f"{path}?limit=1", headers=headers)
        assert resp.status_code == 200, (path, resp.text[:300])
        assert len(resp.json()["items"]) <= 1


def test_invalid_utf8_file_name_on_public_verify_is_not_a_500(demo_axis: DemoAxis) -> None:
    pdf = (demo_axis.data / "demo" / "cong-van-mau.pdf").read_bytes()
    boundary = "xYzBoUnDaRy"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="c\xff\xfeng v\xc3n.pdf"\r\n'
        + b"Content-Type: application/pdf\r\n\r\n"
        + pdf
        + f"\r\n--{boundary}--\r\n".encode()
    )
    resp = demo_axis.request(
        "POST", "/api/v1/public/verify", data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text[:500]
    # the bytes that are not UTF-8 read as U+FFFD, the rest as sent
    assert resp.json()["file"]["name"] == "c\ufffd\ufffdng v\ufffdn.pdf"


def _hostile_package(axis: DemoAxis, content_type: str, document_id: str) -> bytes:
    package = (axis.data / "demo" / "demo.edxml").read_text(encoding="utf-8")
    package = package.replace("000.00.00.G22,2025/01/15,15/VPCP-HC", document_id)
    package = package.replace(
        "<edXML:ContentType>text/plain</edXML:ContentType>",
        f"<edXML:ContentType>{content_type}</edXML:ContentType>",
    )
    return package.encode("utf-8")


def _send(axis: DemoAxis, body: bytes) -> dict[str, Any]:
    resp = axis.request(
        "POST", "/api/v1/documents", data=body,
        headers={**axis.auth(SENDER), "Content-Type": "application/xml"},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text[:500]
    return dict(resp.json())


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("text/plain&#13;&#10;X-Injected: 1", "application/octet-stream"),
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
        ("Application/PDF; name=x.pdf", "application/pdf"),
        ("text/plain", "text/plain"),
    ],
    ids=["crlf", "html", "svg", "nonsense", "pdf-params", "plain"],
)
def test_attachment_content_type_is_from_the_allowed_list(
    demo_axis: DemoAxis, declared: str, served: str
) -> None:
    digest = hashlib.sha256(declared.encode()).hexdigest()[:12]
    sent = _send(demo_axis, _hostile_package(demo_axis, declared, f"{SENDER},2025/01/15,{digest}"))
    doc = sent["id"]
    meta = demo_axis.request("GET", f"/api/v1/documents/{doc}/meta", headers=demo_axis.auth())
    assert meta.status_code == 200, meta.text[:300]
    assert meta.json()["attachments"][0]["content_type"] == served
    for _ in range(2):  # not a permanent failure: the same answer every time
        resp = demo_axis.request(
            "GET", f"/api/v1/documents/{doc}/attachments/0", headers=demo_axis.auth()
        )
        assert resp.status_code == 200, resp.text[:300]
        assert resp.headers["Content-Type"].split(";")[0] == served
        assert "X-Injected" not in resp.headers
        assert resp.content.startswith("VĂN PHÒNG CHÍNH PHỦ".encode())


def test_server_stays_up(demo_axis: DemoAxis) -> None:
    assert requests.get(demo_axis.url + "/healthz", timeout=10).status_code == 200
