"""Issue 18, finding 1: idle and half-sent connections cannot make the axis unreachable.

A real ``lienthong serve --workers 2`` started under a low soft open-file limit, with short
timeouts and a small cap per client address; clients are plain sockets from several loopback
addresses (all of them connecting to 127.0.0.1). What is checked: the open-file limit is raised
in the parent and the workers; idle connections, connections whose request head never ends and
request bodies that stall are closed by the server (each counted in /metrics under its reason)
while /healthz keeps answering; connections over the cap are answered 503 and closed at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from net_server import Served, connect, read_until_closed, serve

CAP = 40  # per client address, shared by the 2 workers: 20 each
SETTINGS = {
    "LIENTHONG_SERVER_HEADER_TIMEOUT": "2",
    "LIENTHONG_SERVER_KEEPALIVE_TIMEOUT": "3",
    "LIENTHONG_SERVER_BODY_IDLE_TIMEOUT": "2",
    "LIENTHONG_SERVER_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
}
SOFT_NOFILE = 256  # the axis starts under a low soft limit, as under the usual 1,024
WAIT = 60.0  # how long a test waits for the server to close a connection (never reached)
CLOSED = "lienthong_connections_closed_total"


@pytest.fixture(scope="module")
def axis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(
        tmp_path_factory.mktemp("net"), SETTINGS, workers=2, soft_nofile=SOFT_NOFILE
    ) as served:
        yield served


def _open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc")


def test_the_soft_open_file_limit_is_raised_to_the_hard_one_in_every_process(
    axis: Served,
) -> None:
    pids = axis.pids()
    assert len(pids) >= 3  # the parent, two workers (and multiprocessing's tracker)
    for pid in pids:
        soft, hard = _open_files_limits(pid)
        assert soft == hard > SOFT_NOFILE, (pid, soft, hard)


def test_idle_and_half_sent_connections_are_closed_and_healthz_answers_meanwhile(
    axis: Served,
) -> None:
    idle_before = axis.metric(CLOSED, reason="idle-timeout")
    head_before = axis.metric(CLOSED, reason="header-timeout")
    # 200 connections from 10 addresses (20 each: within the cap), a quarter sending half a head
    idle, half = [], []
    for n in range(10):
        source = f"127.0.0.{n + 2}"
        for i in range(20):
            sock = connect(axis.port, source)
            if i % 4 == 0:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: axis\r\nX-Slow: ")
                half.append(sock)
            else:
                idle.append(sock)
    try:
        status, body = axis.get("/healthz")
        assert status == 200, body
        deadline = time.monotonic() + WAIT
        for sock in idle + half:
            assert read_until_closed(sock, deadline) == b"", "not closed, or answered"
    finally:
        for sock in idle + half:
            sock.close()
    assert axis.metric(CLOSED, reason="idle-timeout") - idle_before == len(idle)
    assert axis.metric(CLOSED, reason="header-timeout") - head_before == len(half)
    assert axis.get("/healthz")[0] == 200


def test_connections_over_the_cap_of_an_address_get_503_and_are_closed(axis: Served) -> None:
    refused_before = axis.metric(CLOSED, reason="per-address-limit")
    socks = [connect(axis.port, "127.0.0.200") for _ in range(CAP + 20)]
    try:
        # another client is served meanwhile
        assert axis.get("/healthz")[0] == 200
        deadline = time.monotonic() + WAIT
        answers = [read_until_closed(sock, deadline) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert None not in answers, "a connection was never closed"
    refused = [a for a in answers if a]
    assert len(answers) - len(refused) <= CAP  # the accepted ones, closed when idle
    assert len(refused) >= 20
    for answer in refused:
        assert answer is not None
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert b"application/problem+json" in head and b"Retry-After: " in head
        assert json.loads(body)["type"] == "/problems/too-many-connections"
    assert axis.metric(CLOSED, reason="per-address-limit") - refused_before == len(refused)


def test_a_stalled_request_body_is_answered_408_and_the_connection_closed(
    axis: Served,
) -> None:
    before = axis.metric(CLOSED, reason="body-idle-timeout")
    sock = connect(axis.port)
    try:
        sock.sendall(
            b"POST /api/v1/documents HTTP/1.1\r\nHost: axis\r\n"
            b"Authorization: Bearer " + axis.token.encode() + b"\r\n"
            b"Content-Type: application/xml\r\nContent-Length: 100000\r\n\r\n<?xml version="
        )
        answer = read_until_closed(sock, time.monotonic() + WAIT)
    finally:
        sock.close()
    assert answer is not None, "the stalled upload was never answered"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in head, head
    problem = json.loads(body)
    assert problem["type"] == "/problems/request-timeout" and problem["status"] == 408
    assert axis.metric(CLOSED, reason="body-idle-timeout") - before == 1
    assert list((axis.data_dir / "spool").iterdir()) == []  # nothing left of it
    assert '"status": 408' in axis.log.read_text()  # the access line of that request


def test_nothing_above_went_wrong_inside_the_axis(axis: Served) -> None:
    # (runs after the tests above, on the same server's log)
    log = axis.log.read_text()
    assert "Traceback" not in log and '"level": "error"' not in log


def test_the_settings_are_checked_and_each_worker_allows_its_share() -> None:
    from server.app.workers import worker_config
    from server.runtime.config import ConfigError, load_config

    config = load_config(env={"LIENTHONG_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "41"})
    assert worker_config(config, 2).server.max_connections_per_address == 21
    unlimited = load_config(env={"LIENTHONG_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "0"})
    assert worker_config(unlimited, 4).server.max_connections_per_address == 0
    for key in ("HEADER_TIMEOUT", "KEEPALIVE_TIMEOUT", "BODY_IDLE_TIMEOUT"):
        with pytest.raises(ConfigError, match=key.lower()):
            load_config(env={f"LIENTHONG_SERVER_{key}": "0"})
