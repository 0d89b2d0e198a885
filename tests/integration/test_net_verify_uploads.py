"""Issue 18, findings 3 and 6: verify uploads that stall cannot lock anyone out or fill memory.

A real ``lienthong serve`` (one process, so its memory is one /proc entry). Stalled uploads are
plain sockets that send a request head and part of a body, then nothing. Checked: stalled public
uploads do not hold the public verification slots (they are taken once a body has arrived), so
a verification from the /xac-minh page still goes through; the agencies' ``POST /api/v1/verify``
is bounded (``[verification] upload_slots``, shared with the public route: 503 beyond, free again
once the stalled clients go); and unfinished uploads go to the spool directory, not to memory.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from net_server import Served, connect, serve

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
PDF = (CORPUS / "pdf-signed-original.pdf").read_bytes()
UPLOAD_SLOTS = 12
SETTINGS = {
    "LIENTHONG_VERIFICATION_UPLOAD_SLOTS": str(UPLOAD_SLOTS),
    # the stalled clients of these tests must outlive them (finding 1's timeout is tested apart)
    "LIENTHONG_SERVER_BODY_IDLE_TIMEOUT": "600",
}
WAIT = 60.0
MB = 1024 * 1024


@pytest.fixture(scope="module")
def axis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("verify-net"), SETTINGS) as served:
        yield served


def _verify(axis: Served, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/pdf"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(axis.url + path, data=PDF, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as resp:
            return int(resp.status), dict(resp.headers), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), bytes(exc.read())


def _stalled(
    axis: Served, path: str, declared: int, sent: bytes, token: str | None = None
) -> socket.socket:
    """An upload that declares ``declared`` bytes, sends ``sent``, then nothing more."""
    sock = connect(axis.port)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: axis\r\n{auth}Content-Type: application/pdf\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def _settle(axis: Served) -> None:
    """A few round trips, so the server has read what was sent before them."""
    for _ in range(3):
        assert axis.get("/healthz")[0] == 200


def test_stalled_public_uploads_do_not_lock_out_a_public_verification(axis: Served) -> None:
    stalled = [
        _stalled(axis, "/api/v1/public/verify", len(PDF), PDF[:1000]) for _ in range(6)
    ]  # more than the 4 public slots
    try:
        _settle(axis)
        status, _, body = _verify(axis, "/api/v1/public/verify")
        assert status == 200, body
        assert json.loads(body)["signatures"][0]["intact"] is True
    finally:
        for sock in stalled:
            sock.close()


def test_the_agencies_verify_is_bounded_and_freed_when_stalled_clients_go(axis: Served) -> None:
    stalled = [
        _stalled(axis, "/api/v1/verify", len(PDF), PDF[:1000], axis.token)
        for _ in range(UPLOAD_SLOTS)
    ]
    try:
        # Until every stalled upload holds its slot (each waits for its token check first): a
        # verification is then refused, and it never is while the route is unbounded.
        deadline = time.monotonic() + WAIT
        while (answer := _verify(axis, "/api/v1/verify", axis.token))[0] == 200:
            assert time.monotonic() < deadline, "the uploads in progress are not bounded"
            time.sleep(0.2)
        status, headers, body = answer
        assert status == 503, body
        assert json.loads(body)["type"] == "/problems/verification-busy"
        assert int(headers["Retry-After"]) >= 1
        status, _, body = _verify(axis, "/api/v1/public/verify")  # the bound is shared
        assert status == 503, body
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + WAIT
    while (answer := _verify(axis, "/api/v1/verify", axis.token))[0] == 503:
        assert time.monotonic() < deadline, "the slots of gone clients were never freed"
        time.sleep(0.2)
    assert answer[0] == 200, answer[2]


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _queues(port: int) -> dict[tuple[int, int], tuple[int, int]]:
    """(local port, remote port) -> (bytes not yet acknowledged, bytes not yet read) of every
    IPv4 TCP socket of the machine touching ``port``."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if port in (local, remote):
            tx, rx = (int(v, 16) for v in fields[4].split(":"))
            found[(local, remote)] = (tx, rx)
    return found


def _wait_until_read(axis: Served, socks: list[socket.socket]) -> None:
    """Until the server has read every byte the sockets sent (nothing queued either way)."""
    ports = [sock.getsockname()[1] for sock in socks]
    deadline = time.monotonic() + WAIT
    while True:
        queues = _queues(axis.port)
        pending = [
            port
            for port in ports
            if queues.get((port, axis.port), (1, 0))[0] or queues.get((axis.port, port), (0, 1))[1]
        ]
        if not pending:
            return
        assert time.monotonic() < deadline, f"the server stopped reading: {pending}"
        time.sleep(0.2)


def test_unfinished_agency_uploads_are_spooled_not_held_in_memory(axis: Served) -> None:
    assert _verify(axis, "/api/v1/verify", axis.token)[0] == 200  # everything loaded once
    before = _rss(axis.process.pid)
    count, sent = 10, 12 * MB
    chunk = (PDF * (sent // len(PDF) + 1))[:sent]
    stalled = [_stalled(axis, "/api/v1/verify", 45 * MB, chunk, axis.token) for _ in range(count)]
    try:
        _wait_until_read(axis, stalled)
        grown = _rss(axis.process.pid) - before
        # 120 MB were received; held in memory they would show whole. A generous margin.
        assert grown < 40 * MB, f"RSS grew by {grown / MB:.0f} MB"
        spooled = [p.stat().st_size for p in (axis.data_dir / "spool").iterdir()]
        assert len(spooled) == count and sum(spooled) >= count * (sent - MB)
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + WAIT
    while list((axis.data_dir / "spool").iterdir()):
        assert time.monotonic() < deadline, "spool files of gone uploads were left behind"
        time.sleep(0.2)
