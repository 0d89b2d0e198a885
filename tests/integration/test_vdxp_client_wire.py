"""What server/vdxp/client.py puts on the wire, captured by a raw socket server on 127.0.0.1.

The facts checked are those VDXP-PROTOCOL.md read off the Java SDK: parameters only in
headers, no query string, the sendEdoc body followed by CRLF, unpadded hash-file, ``to`` as
JSON text, the signature over the sent sign-header string, ``Expect: 100-continue`` where the
SDK sends it, its User-Agent and version header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from server.vdxp import protocol
from server.vdxp.client import VdxpClient, VdxpClientError

SECRET = "wire-secret"


@dataclass
class Captured:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    continue_sent: bool

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, name
        return values[0] if values else None


@dataclass
class CaptureServer:
    port: int
    requests: list[Captured] = field(default_factory=list)
    answer: bytes = (
        b'{"status":"OK","ErrorCode":"0","ErrorDesc":"","DocId":"d1","data":"","count":0}'
    )
    content_type: bytes = b"application/json"


@pytest.fixture
async def capture() -> AsyncIterator[CaptureServer]:
    state = CaptureServer(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = [
                    (k.strip(), v.strip())
                    for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                ]
                names = {k.lower(): v for k, v in headers}
                sent_continue = False
                if names.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    sent_continue = True
                length = int(names.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                state.requests.append(Captured(method, target, headers, body, sent_continue))
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: "
                    + state.content_type
                    + b"\r\n"
                    + f"Content-Length: {len(state.answer)}\r\n\r\n".encode()
                    + state.answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def _check_signature(req: Captured) -> dict[str, str]:
    sign_header = req.header("XroadVnpt-sign-header")
    assert sign_header is not None
    expected = hmac.new(SECRET.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
    assert req.header("XroadVnpt-hash-header") == expected
    signed = json.loads(sign_header)
    assert isinstance(signed, dict)
    for name, value in signed.items():
        assert req.header(name) == value, name
    keys = req.header("XroadVnpt-sign-header-key")
    assert keys is not None
    assert ["XroadVnpt-" + k for k in keys.split(";")] == list(signed)
    return signed


async def test_send_edoc_bytes(capture: CaptureServer) -> None:
    # a package whose SHA-256 has bytes below 0x10, so padding would show
    package = next(
        p
        for p in (f"<edXML>{i}</edXML>".encode() for i in range(100))
        if min(hashlib.sha256(p).digest()) < 0x10
    )
    async with VdxpClient(f"http://127.0.0.1:{capture.port}/vdxp", "sys1", SECRET) as client:
        doc_id = await client.send_edoc(
            package, sender="000.00.00.G22", to=["000.00.00.H41", "000.00.00.H51"]
        )
        await client.send_edoc(package, sender="000.00.00.G22", to="000.00.00.H41")
    assert doc_id == "d1"
    req, single = capture.requests
    assert req.method == "POST" and req.target == "/vdxp/sendEdoc"
    assert req.body == package + b"\r\n"
    assert req.header("Content-Type") == "application/octet-stream"
    assert req.header("Expect") is None
    assert req.header("User-Agent") == "JAVASDKAgent/1.0.0 XRoad/VPCP"
    assert req.header("XroadVnpt-version") == "3.0.201608"
    assert req.header("Authorization") is None
    signed = _check_signature(req)
    hash_file = signed["XroadVnpt-hash-file"]
    assert hash_file == "".join(f"{b:x}" for b in hashlib.sha256(package).digest())
    assert len(hash_file) < 64
    assert signed["XroadVnpt-to"] == '["000.00.00.H41","000.00.00.H51"]'
    assert signed["XroadVnpt-from"] == "000.00.00.G22"
    assert signed["XroadVnpt-messagetype"] == "edoc"
    assert signed["XroadVnpt-servicetype"] == "eDoc"
    assert signed["XroadVnpt-systemid"] == "sys1"
    assert signed["XroadVnpt-Content-Type"] == "application/octet-stream"
    assert protocol.parse_timestamp(signed["XroadVnpt-timestamp"]) is not None
    assert _check_signature(single)["XroadVnpt-to"] == '"000.00.00.H41"'
    # the timestamp is taken once per client object
    assert single.header("XroadVnpt-timestamp") == req.header("XroadVnpt-timestamp")


@pytest.mark.parametrize(
    ("operation", "call", "expect", "body", "method"),
    [
        ("getEdoc", lambda c: c.get_edoc("d1"), True, b"{}", "POST"),
        ("updateStatus", lambda c: c.update_status("d1", "done"), True, b"{}", "POST"),
        ("countReceiveEdoc", lambda c: c.count_receive_edoc(), True, b"{}", "POST"),
        ("countReceiveStatus", lambda c: c.count_receive_status(), True, b"{}", "POST"),
        ("deleteAgency", lambda c: c.delete_agency("x"), True, b"{}", "POST"),
        ("registerAgency", lambda c: c.register_agency('{"code":"x"}'), True,
         b'{"code":"x"}', "POST"),
        ("getReceivedEdocList", lambda c: c.get_received_edoc_list(), False, b"", "POST"),
        ("getSentEdocList", lambda c: c.get_sent_edoc_list(), False, b"", "POST"),
        ("getAgenciesList", lambda c: c.get_agencies_list(), False, b"", "POST"),
        ("getAgenciesListQD20", lambda c: c.get_agencies_list(qd20=True), False, b"", "POST"),
        ("getSynchronizeUnit", lambda c: c.get_synchronize_unit(), False, b"", "POST"),
    ],
)  # fmt: skip
async def test_other_operations_bytes(
    capture: CaptureServer, operation: str, call, expect: bool, body: bytes, method: str
) -> None:
    async with VdxpClient(f"http://127.0.0.1:{capture.port}/vdxp", "sys1", SECRET) as client:
        await call(client)
    [req] = capture.requests
    assert req.method == method
    assert req.target == f"/vdxp/{operation}"
    assert req.body == body
    assert (req.header("Expect") == "100-continue") is expect
    assert req.continue_sent is expect
    assert req.header("Content-Type") == "application/json"
    signed = _check_signature(req)
    assert signed["XroadVnpt-Content-Type"] == "application/json"
    if operation in ("getEdoc", "updateStatus"):
        assert signed["XroadVnpt-docId"] == "d1"


async def test_download_is_a_get_without_body(capture: CaptureServer) -> None:
    capture.answer = b"<edXML/>"
    capture.content_type = b"application/octet-stream"
    async with VdxpClient(f"http://127.0.0.1:{capture.port}/vdxp", "sys1", SECRET) as client:
        assert await client.download_edoc("d1") == b"<edXML/>"
        # a FAIL answer (JSON) is an error, not a file
        capture.answer = b'{"status":"FAIL","ErrorCode":"2007","ErrorDesc":"no"}'
        capture.content_type = b"application/json"
        with pytest.raises(VdxpClientError, match="2007"):
            await client.download_edoc("d2")
    req = capture.requests[0]
    assert req.method == "GET" and req.target == "/vdxp/downloadEdoc" and req.body == b""
    assert req.header("Content-Type") == "application/json"
    assert _check_signature(req)["XroadVnpt-docId"] == "d1"


async def test_non_ascii_parameter_is_refused_before_sending(capture: CaptureServer) -> None:
    async with VdxpClient(f"http://127.0.0.1:{capture.port}/vdxp", "sys1", SECRET) as client:
        with pytest.raises(VdxpClientError, match="non-ASCII"):
            await client.delete_agency("Sở Đồng Tháp")
    assert capture.requests == []
