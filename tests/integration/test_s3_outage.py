"""S3 unreachable for a while: sends answer 503 + Retry-After, nothing acknowledged is lost.

This test runs its OWN gateway (stopping the session one would break other tests) and stops
only its radosgw process, keeping the monitor and OSD (and so the stored data) alive, then
starts radosgw again with the same ceph.conf, as tests/services/s3/start-rgw.sh does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document, sha256
from fixtures_s3 import S3Endpoint, start_gateway, stop_gateway
from s3_axis import s3_config

from server.http.verify import VERIFIER
from server.runtime.config import Config


def _gateway_pid(directory: Path) -> int:
    # start-rgw.sh records mon, osd, then radosgw; restarts append the new radosgw.
    return int((directory / "pids").read_text().split()[-1])


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def stop_radosgw(endpoint: S3Endpoint) -> None:
    """Stop the gateway process only; wait until the port no longer answers."""
    assert endpoint.directory is not None
    pid = _gateway_pid(endpoint.directory)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _answers(endpoint.endpoint):
        assert time.monotonic() < deadline, "radosgw did not stop"
        time.sleep(0.1)


def start_radosgw(endpoint: S3Endpoint) -> None:
    """Start radosgw again with the cluster's ceph.conf; wait until it answers HTTP."""
    directory = endpoint.directory
    assert directory is not None
    log = (directory / "log" / "client.rgw.a.restart.out").open("ab")
    proc = subprocess.Popen(
        ["radosgw", "-c", str(directory / "ceph.conf"), "-f", "-n", "client.rgw.a"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    with (directory / "pids").open("a") as fh:  # so stop-rgw.sh stops it too
        fh.write(f"{proc.pid}\n")
    deadline = time.monotonic() + 60
    while not _answers(endpoint.endpoint):
        assert proc.poll() is None, "radosgw exited on restart"
        assert time.monotonic() < deadline, "radosgw did not answer after restart"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def own_gateway() -> Iterator[S3Endpoint]:
    """A gateway of this module only (short directory: admin sockets need short paths)."""
    if os.environ.get("LIENTHONG_TEST_S3_ENDPOINT"):
        pytest.skip("the outage test stops its own Ceph gateway; an external endpoint is given")
    if shutil.which("radosgw") is None:
        pytest.skip("the outage test needs Ceph's radosgw (apt-get install radosgw ceph-mon ...)")
    directory = Path(tempfile.mkdtemp(prefix="rgw-outage-"))
    endpoint = start_gateway(directory)
    try:
        yield endpoint
    finally:
        stop_gateway(endpoint)


@pytest.fixture
def axis_config(own_gateway: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", own_gateway.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", own_gateway.secret_key)
    return s3_config(own_gateway, tmp_path / "data")


async def test_sends_answer_503_while_s3_is_down_and_nothing_is_lost(
    axis: Axis, own_gateway: S3Endpoint
) -> None:
    before = document(VPCP, [NGHE_AN], attachments=[("a.pdf", "application/pdf", b"%PDF-1 a")])
    first = await axis.send_ok(VPCP, before)
    # The arrival verification of a.pdf reads it from S3 in the background: let it finish, or
    # its temp copy in the spool (removed when the fetch fails) races the snapshot below.
    await axis.client.app[VERIFIER].drain()
    rows_before = (await axis.snapshot())["rows"]

    stop_radosgw(own_gateway)
    during = document(VPCP, [NGHE_AN], attachments=[("b.pdf", "application/pdf", b"%PDF-1 b")])
    try:
        started = time.monotonic()
        resp = await axis.send(VPCP, during)
        assert resp.status == 503, await resp.text()
        assert resp.headers["Retry-After"].isdigit()
        problem = await resp.json()
        assert problem["type"] == "/problems/storage-unavailable"
        assert time.monotonic() - started < 20  # a quick refusal, not a hung request
        # Refused means nothing promised and nothing half-stored: no rows, no spool left over.
        snap = await axis.snapshot()
        assert snap["rows"] == rows_before
        assert snap["spool"] == []
        # A fetch that cannot reach the store is a 503 too, not a 200 with a cut body.
        resp = await axis.get(f"/api/v1/documents/{first['id']}", NGHE_AN)
        assert resp.status == 503
        assert "Retry-After" in resp.headers
        health = await axis.client.get("/healthz")
        assert health.status == 503
    finally:
        start_radosgw(own_gateway)

    # Back: the earlier document is intact, and the refused send now goes through.
    resp = await axis.get(f"/api/v1/documents/{first['id']}", NGHE_AN)
    assert resp.status == 200
    assert sha256(await resp.read()) == first["sha256"]
    second = await axis.send_ok(VPCP, during)
    assert second["duplicate"] is False
    resp = await axis.get(f"/api/v1/documents/{second['id']}", NGHE_AN)
    assert sha256(await resp.read()) == second["sha256"]
    assert len((await axis.inbox(NGHE_AN))["items"]) == 2
    assert (await axis.client.get("/healthz")).status == 200
