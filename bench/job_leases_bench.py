"""What the once-only jobs' leases cost and how soon a dead holder's jobs are taken over
(issue 20, docs/scaling.md "Once-only jobs").

1. *Fence*: the check every write transaction of a leased job starts with (``LeaseRepo.fence``,
   one UPDATE of the lease row), timed on its own inside ``--transactions`` write transactions
   of one row each on a temporary SQLite database, and the whole transactions with and without
   it (each ends with a COMMIT and its fsync, which dwarfs the check).
2. *Take-over*: two real ``lienthong serve`` nodes on one data directory with ``[jobs]
   lease_seconds`` = ``--lease-seconds``; once node A holds every job, SIGKILL it and time until
   node B holds them all. The bound is lease_seconds (since A's last renewal) plus one try
   interval (lease_seconds / 3); the figure depends on where in its renewal cycle A died.

    .venv/bin/python bench/job_leases_bench.py [--transactions 2000] [--lease-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from axis_process import LIENTHONG, free_port, wait_healthy

from server.runtime.leases import FencedDatabase
from storage.db import Database
from storage.ids import utcnow
from storage.repos.leases import LeaseRepo

JOBS = {"stats-fold", "feedback-outbox", "dossier-reports"}


async def fence_figures(path: Path, count: int) -> None:
    database = await Database.open(path)
    try:
        async with database.transaction() as tx:
            await tx.execute("CREATE TABLE scratch (n INTEGER NOT NULL)")
            lease = await LeaseRepo(tx).acquire("bench", "bench:1:0", timedelta(hours=1), utcnow())
        assert lease is not None
        checks: list[float] = []
        for n in range(count):  # the check alone
            async with database.transaction() as tx:
                started = time.perf_counter()
                await LeaseRepo(tx).fence(lease, utcnow())
                checks.append(time.perf_counter() - started)
                await tx.execute("INSERT INTO scratch (n) VALUES (?)", (n,))
        # alternated, so that a change of the machine's load weighs on both alike
        plain: list[float] = []
        fenced: list[float] = []
        for n in range(count):
            plain.append(await _transaction(database, n))
            fenced.append(await _transaction(FencedDatabase(database, lease), n))
    finally:
        await database.close()
    print(f"fence: {statistics.median(checks) * 1e6:.1f} µs median per check, "
          f"p99 {_p99(checks) * 1e6:.1f} µs ({count} checks)")  # fmt: skip
    print(f"one-row write transactions: {statistics.median(plain) * 1e3:.2f} ms median plain, "
          f"{statistics.median(fenced) * 1e3:.2f} ms fenced")  # fmt: skip


async def _transaction(database: Database, n: int) -> float:
    started = time.perf_counter()
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO scratch (n) VALUES (?)", (n,))
    return time.perf_counter() - started


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


def _holders(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT job, holder, expires_at FROM job_leases").fetchall()
    finally:
        conn.close()
    return {str(job): int(str(holder).split(":")[1]) for job, holder, _ in rows}


def _serve(data: Path, lease_seconds: int, log: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    process = subprocess.Popen(
        [str(LIENTHONG), "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "LIENTHONG_JOBS_LEASE_SECONDS": str(lease_seconds)},
    )
    wait_healthy(f"http://127.0.0.1:{port}", process, log)
    return process


def takeover_figure(root: Path, lease_seconds: int) -> None:
    data = root / "data"
    subprocess.run(
        [str(LIENTHONG), "init", "--data-dir", str(data)], check=True, capture_output=True
    )
    db = data / "lienthong.sqlite3"
    a = _serve(data, lease_seconds, root / "a.log")
    b: subprocess.Popen[bytes] | None = None
    try:
        while _holders(db) != dict.fromkeys(JOBS, a.pid):
            time.sleep(0.05)
        b = _serve(data, lease_seconds, root / "b.log")
        time.sleep(lease_seconds)  # B polls; A renews: a steady state
        a.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.wait()
        while _holders(db) != dict.fromkeys(JOBS, b.pid):
            time.sleep(0.05)
        took = time.monotonic() - killed
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
    bound = lease_seconds + lease_seconds / 3
    print(f"take-over after SIGKILL: {took:.1f} s for every job (lease {lease_seconds} s, "
          f"bound {bound:.1f} s + clock skew)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument("--lease-seconds", type=int, default=15)
    args = parser.parse_args()
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory(prefix="lt-leases-") as tmp:
        asyncio.run(fence_figures(Path(tmp) / "fence.db", args.transactions))
        takeover_figure(Path(tmp), args.lease_seconds)


if __name__ == "__main__":
    main()
