"""A real ``lienthong serve`` process for the hostile-network tests (tests/integration/test_net_*).

The connection limits (timeouts, the cap per client address, the open-file limit) live in the
serving path (server/app/connections.py), which the in-process ``axis`` fixture does not take:
these tests start the command itself, with the settings under test in the environment, seed one
agency with a token straight into its database first, and talk to it over plain sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fixtures_pki import free_port
from prometheus_client.parser import text_string_to_metric_families

from server.runtime.config import load_config
from server.runtime.tokens import new_token
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

LIENTHONG = Path(sys.executable).with_name("lienthong")
AGENCY = "000.00.00.G22"
HOST = "127.0.0.1"
# Another loopback address of this machine (all of 127/8 is the loopback interface): connections
# bound to it are "another client" for the per-address cap, still going to 127.0.0.1.
OTHER_CLIENT = "127.0.0.2"


async def _seed(data_dir: Path) -> str:
    config = load_config(env={}, data_dir=data_dir)
    config.storage.data_dir.mkdir(parents=True, exist_ok=True)
    database = await Database.open(config.db_path)
    try:
        async with database.transaction() as tx:
            await AgencyRepo(tx).add(AGENCY, "Văn phòng Chính phủ")
            token, token_hash = new_token()
            await TokenRepo(tx).create(AGENCY, token_hash, label="net tests")
    finally:
        await database.close()
    return token


@dataclass
class Served:
    """A running ``lienthong serve``: its URL, the parent's pid, an agency token, its log."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())

    def pids(self) -> list[int]:
        """The parent and its worker processes (the serving ones when --workers N)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = [int(p) for p in children.read_text().split()] if children.exists() else []
        return [self.process.pid, *found]

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics (0 when absent)."""
        status, body = self.get("/metrics")
        assert status == 200, body
        total = 0.0
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


def _lower_open_files(soft: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))


@contextlib.contextmanager
def serve(
    tmp: Path, settings: dict[str, str], *, workers: int = 1, soft_nofile: int | None = None
) -> Iterator[Served]:
    """``lienthong serve`` on a free port with ``settings`` (LIENTHONG_* variables); with
    ``soft_nofile`` it starts under that soft open-file limit (as under a default 1,024)."""
    data_dir = tmp / "data"
    token = asyncio.run(_seed(data_dir))
    port = free_port()
    env = {
        **os.environ,
        "LIENTHONG_VERIFY_ONLINE": "0",
        "LIENTHONG_METRICS_PUBLIC": "1",
        "LIENTHONG_SERVER_LOG_JSON": "1",
        **settings,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp / "serve.log"
    args = [str(LIENTHONG), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,  # no conf/lienthong.toml: defaults + env
            preexec_fn=(lambda: _lower_open_files(soft_nofile)) if soft_nofile else None,
        )
    served = Served(process, port, token, data_dir, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if served.get("/healthz", timeout=5)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        if workers > 1:  # every worker listening: the kernel may hand a test any of them
            while len(served.pids()) < workers + 1:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connect(port: int, source: str = HOST) -> socket.socket:
    """A TCP connection to the axis from ``source`` (a loopback address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect((HOST, port))
    return sock


def read_until_closed(sock: socket.socket, deadline: float) -> bytes | None:
    """Everything the server sends until it closes the connection; None if it is still open
    at ``deadline`` (time.monotonic)."""
    received = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
