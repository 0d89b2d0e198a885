"""Issue 18, findings 5 and 10: what hostile requests leave in the logs and the metrics.

A malformed Authorization header (a control byte, a line over 8,190 bytes) is refused 400
without its value in the log or the answer; a ``%0a`` in a path does not forge a text log line;
a client gone mid-upload is logged and counted as 499; a broken chunked body answers 400.
These run the server as ``lienthong serve`` does (:class:`GuardedAppRunner`), over raw sockets.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from axis_client import AGENCIES, VPCP

from server.app.application import build_app
from server.app.connections import ConnectionLimits, GuardedAppRunner
from server.http.appkeys import CONFIG, DATABASE
from server.http.metrics import METRICS
from server.runtime.config import load_config
from server.runtime.logs import TextFormatter
from server.runtime.tokens import new_token
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

SECRET = "lt_SECRETxTOKENxVALUE"  # looks like a token; must never show up anywhere


class Served:
    def __init__(self, runner: GuardedAppRunner, port: int, token: str) -> None:
        self.runner, self.port, self.token = runner, port, token

    async def exchange(self, raw: bytes, then: bytes | None = None) -> bytes:
        """Send ``raw`` and read the answer until the server closes. With ``then``: once the
        handler is spooling the body (a file in the spool), send ``then`` too, or hang up when
        it is empty."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            if then is not None:
                spool = self.runner.app[CONFIG].spool_dir
                for _ in range(1000):
                    if any(spool.iterdir()):
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the upload never reached the spool")
                if not then:
                    writer.transport.abort()
                    return b""
                writer.write(then)
                await writer.drain()
            # A guard against a hang, not a measure: the server closes after its answer.
            return await asyncio.wait_for(reader.read(), 60)
        finally:
            writer.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    # Bodies up to 4 MiB: the spool writes its first MiB to disk while the rest arrives, which
    # tells the tests that the handler is reading the body.
    env = {"LIENTHONG_SERVER_MAX_BODY_BYTES": str(4 << 20), "LIENTHONG_SERVER_LOG_JSON": "0"}
    config = load_config(env=env, data_dir=tmp_path / "data")
    runner = GuardedAppRunner(
        build_app(config), limits=ConnectionLimits.of(config.server), metrics=None, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    token, digest = new_token()
    async with runner.app[DATABASE].transaction() as tx:
        organ_id, name, _ = AGENCIES[0]
        await AgencyRepo(tx).add(organ_id, name)
        await TokenRepo(tx).create(VPCP, digest, label="test")
    try:
        yield Served(runner, port, token)
    finally:
        await runner.cleanup()


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """Everything logged, formatted as `server.log_json = false` formats it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _request(headers: bytes, *, path: bytes = b"/api/v1/inbox") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer " + SECRET.encode() + b"\x01tail",  # a control byte
        b"Bearer " + SECRET.encode() + b"x" * 9000,  # over aiohttp's 8,190-byte line limit
    ],
    ids=["control-byte", "too-long"],
)
async def test_malformed_authorization_is_neither_logged_nor_echoed(
    served: Served,
    text_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    authorization: bytes,
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await served.exchange(_request(b"Authorization: " + authorization + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400"), answer[:200]
    assert SECRET.encode() not in answer
    assert b"Content-Type: application/problem+json" in answer
    logged = text_log.getvalue()
    assert SECRET not in logged
    assert "Traceback" not in logged
    parser_lines = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert [r.levelno for r in parser_lines] == [logging.WARNING], logged
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.WARNING)
    # The connection after it is served as usual.
    ok = await served.exchange(_request(b"Connection: close\r\n", path=b"/healthz"))
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]


async def test_a_newline_in_the_path_forges_no_text_log_line(
    served: Served, text_log: io.StringIO
) -> None:
    forged = b"/problems/x%0a2026-12-06%2000:00:00%20INFO%20request%20method=GET%20status=200"
    answer = await served.exchange(_request(b"Connection: close\r\n", path=forged))
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
    lines = text_log.getvalue().splitlines()
    [access] = [line for line in lines if "path=/problems/x" in line]
    assert "\\n2026-12-06" in access
    assert not [line for line in lines if line.startswith("2026-12-06 00:00:00")]


async def _access_line(caplog: pytest.LogCaptureFixture, path: str) -> logging.LogRecord:
    """The access line of ``path`` once the server has written it (a handler finishes on its
    own after the client is gone)."""
    for _ in range(1000):
        found = [r for r in caplog.records if getattr(r, "path", None) == path]
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no access line for {path}")


# 1.3 MB past the header (where the TraceHeader goes): more than the spool keeps in memory.
MIB_AND_MORE = b"<edXMLEnvelope><edXMLHeader></edXMLHeader>" + b"<p>filler</p>" * 100_000


def _upload(served: Served, *, chunked: bool, length: int = 3 << 20) -> bytes:
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % length
    return (
        b"POST /api/v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + served.token.encode() + b"\r\n"
        b"Content-Type: application/xml\r\nConnection: close\r\n" + framing + b"\r\n"
    )


async def test_a_client_gone_mid_upload_is_a_499(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await served.exchange(_upload(served, chunked=False) + MIB_AND_MORE, b"")
    line = await _access_line(caplog, "/api/v1/documents")
    assert vars(line)["status"] == 499
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    app = served.runner.app
    metrics = app[METRICS]
    exposition = metrics.exposition(await metrics.queue(app[DATABASE])).decode()
    assert 'route="/api/v1/documents",status="499"' in exposition
    assert 'status="500"' not in exposition
    assert not list(app[CONFIG].spool_dir.iterdir())  # nothing of the upload is left


async def test_a_broken_chunk_mid_body_is_a_400(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    start = b"%x\r\n%s\r\n" % (len(MIB_AND_MORE), MIB_AND_MORE)
    broken = b"ZZ-not-a-size\r\nmore\r\n0\r\n\r\n"
    answer = await served.exchange(_upload(served, chunked=True) + start, broken)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"X-Request-Id" in answer  # the handler's answer, not the parser's
    assert b"storage-unavailable" not in answer
    assert b"application/problem+json" in answer
    line = await _access_line(caplog, "/api/v1/documents")
    assert vars(line)["status"] == 400


def test_text_lines_escape_every_control_character() -> None:
    formatter = TextFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("lienthong", logging.INFO, "", 0, "a\rb\x1b[31mc\u2028d", None, None)
    record.path = "/x\ny\x00"
    line = formatter.format(record)
    assert line == "INFO a\\rb\\x1b[31mc\\u2028d path=/x\\ny\\x00"
