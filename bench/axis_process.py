"""Start a real ``lienthong serve`` (demo agencies, tokens) as a subprocess for the benchmarks.

Shared by ``api_send_bench.py`` and ``large_attachment_bench.py``: a temporary data directory,
``lienthong demo`` for agencies and tokens, a free loopback port, wait for ``/healthz``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LIENTHONG = Path(sys.executable).parent / "lienthong"


@dataclass
class RunningServer:
    """A server subprocess: its URL, pid and (for the axis) data directory and demo tokens."""

    url: str
    process: subprocess.Popen[bytes]
    data: Path
    tokens: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 10 s)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Block until ``url/healthz`` answers 200; raise with the log if the process died."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:  # refused, or a busy machine's slow first answer (timeout)
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("server did not start:\n" + log.read_text("utf-8", "replace"))
        time.sleep(0.1)


def start_axis(data: Path, env: dict[str, str] | None = None, *, workers: int = 1) -> RunningServer:
    """Seed the demo agencies in ``data`` and serve it with ``workers`` processes; return the
    running axis and tokens."""
    demo = subprocess.run(
        [str(LIENTHONG), "demo", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=True,
    )
    tokens = dict(
        line.removeprefix("export ").split("=", 1)
        for line in demo.stdout.splitlines()
        if line.startswith("export ")
    )
    port = free_port()
    log = data / "serve.log"
    process = subprocess.Popen(
        [
            *(str(LIENTHONG), "serve", "--data-dir", str(data), "--port", str(port)),
            *("--workers", str(workers)),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        # Every load client connects from 127.0.0.1: no cap of connections per address.
        env={**os.environ, "LIENTHONG_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "0", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    return RunningServer(url, process, data, tokens)


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found")
