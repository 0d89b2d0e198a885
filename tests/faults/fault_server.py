"""A real ``lienthong serve`` subprocess on 127.0.0.1, seeded with agencies and tokens, that
tests can SIGKILL, SIGTERM and restart on the same data directory and port."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import aiohttp

from server.runtime.tokens import new_token
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

LIENTHONG = Path(sys.executable).with_name("lienthong")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(data_dir: Path, agencies: Iterable[str]) -> dict[str, str]:
    """Create the database with these agencies, one token each; return the tokens."""
    database = await Database.open(data_dir / "lienthong.sqlite3")
    try:
        return await seed_database(database, agencies)
    finally:
        await database.close()


async def seed_database(database: Database, agencies: Iterable[str]) -> dict[str, str]:
    """Add these agencies to an open database (SQLite or PostgreSQL), one token each; return
    the tokens."""
    tokens = {}
    async with database.transaction() as tx:
        for organ_id in agencies:
            await AgencyRepo(tx).add(organ_id, organ_id)
            token, digest = new_token()
            await TokenRepo(tx).create(organ_id, digest, label="fault test")
            tokens[organ_id] = token
    return tokens


class ServerProcess:
    """``lienthong serve --data-dir DIR --port PORT`` with extra LIENTHONG_* settings."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LIENTHONG_SERVER_LOG_JSON": "1",
            # The tests' webhook receivers listen on loopback, which the axis refuses unless
            # allowed (issue 18, finding 2: docs/operations.md).
            "LIENTHONG_DELIVERY_WEBHOOK_ALLOW": "127.0.0.1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(LIENTHONG),
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                cwd=self.data_dir.parent,  # no conf/lienthong.toml here: defaults + env only
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def ready(self, within: float = 60.0) -> None:
        # A bound against a hang, not a measure: under a loaded CI a start took 13-18 s and once
        # more than 20 (test_fault_job_leases).
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited: {self.log.read_text()[-2000:]}")
                try:
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("server not ready in time")

    async def restart(self) -> None:
        self.start()
        await self.ready()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL and reap: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def stored_objects(data_dir: Path) -> dict[str, str]:
    """Every stored object: its name -> the SHA-256 of its content. The files under objects/
    (tmp excluded) and the small packages kept in the database (``inline_objects``)."""
    found = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (data_dir / "objects").glob("??/??/*")
    }
    for name, data in db_rows(
        data_dir / "lienthong.sqlite3", "SELECT sha256, data FROM inline_objects"
    ):
        assert isinstance(name, str) and isinstance(data, bytes)
        found[name] = hashlib.sha256(data).hexdigest()
    return found


def db_rows(db_path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()
