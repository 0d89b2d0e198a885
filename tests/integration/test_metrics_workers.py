"""``lienthong serve --workers 2``: whichever worker answers a scrape, /metrics counts the
requests of both (prometheus-client multiprocess mode, PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

LIENTHONG = Path(sys.executable).with_name("lienthong")
REQUESTS = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str, str]:
    # A new connection each time, so the kernel spreads the requests over the workers.
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers["X-Lienthong-Worker"], resp.read().decode()


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "lienthong_http_requests_total"
                and sample.labels.get("route") == "/healthz"
            ):
                return sample.value
    return 0.0


def test_a_scrape_sums_every_worker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "LIENTHONG_METRICS_PUBLIC": "1", "LIENTHONG_VERIFY_ONLINE": "0"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(str(LIENTHONG), "serve", "--data-dir", str(data)),
                *("--port", str(port), "--workers", "2"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,  # no conf/lienthong.toml: defaults + env
        )
    try:
        # Until both workers serve: a connection the kernel hands to a worker still starting
        # waits in its backlog (TimeoutError on a loaded machine), it is not refused.
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url + "/healthz")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        first = _healthz_count(_get(url + "/metrics")[2])
        workers = set()
        for _ in range(REQUESTS):
            status, worker, _ = _get(url + "/healthz")
            assert status == 200
            workers.add(worker)
        assert workers == {"0", "1"}, "the kernel sent every connection to one worker"
        assert sorted(p.name for p in (data / "metrics").glob("*.db"))  # the workers' files
        answered = set()
        for _ in range(20):
            _, worker, text = _get(url + "/metrics")
            answered.add(worker)
            assert _healthz_count(text) == first + REQUESTS
        assert answered == {"0", "1"}
    finally:
        proc.terminate()
        proc.wait(timeout=90)
