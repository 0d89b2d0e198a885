"""Once-only jobs under leases (issue 20) with real ``lienthong serve`` processes on one SQLite
data directory, as two nodes of one axis: each job runs in exactly one of them (the lease table
and the nodes' logs agree); SIGKILL the holder and the other takes its jobs over once the
leases expire; the killed node's lease is not honoured afterwards (its token is fenced off), and
the killed node, started again, waits instead of running the jobs a second time. ``serve
--workers 2``: each job in one of the workers.

Nothing here asserts how fast: each wait polls with a generous bound.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fault_server import ServerProcess, db_rows, seed

from storage.db import Database
from storage.ids import from_db_time, utcnow
from storage.repos.leases import Lease, LeaseLost, LeaseRepo

AGENCY = "000.00.00.G22"
LEASE_SECONDS = 3
# The jobs every node starts with the defaults (no TSA, no parent axis, no DVCQG, no renewal).
JOBS = {"stats-fold", "feedback-outbox", "dossier-reports"}
BOUND = 90.0  # seconds any wait may take on a loaded machine


def node(data: Path, log: Path, *, workers: int = 1) -> ServerProcess:
    server = ServerProcess(
        data,
        {
            "LIENTHONG_JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
            "LIENTHONG_SERVER_WORKERS": str(workers),
        },
    )
    server.log = log
    return server


def leases(data: Path) -> dict[str, tuple[int, int, str]]:
    """job -> (the holder's pid, token, holder) from the lease table."""
    rows = db_rows(data / "lienthong.sqlite3", "SELECT job, holder, token FROM job_leases")
    return {str(j): (int(str(h).split(":")[1]), int(str(t)), str(h)) for j, h, t in rows}


def started(log: Path) -> list[tuple[str, int]]:
    """(job, token) of every "job started" line of a node's log."""
    found = []
    for line in log.read_text("utf-8").splitlines():
        if line.startswith("{") and '"job lease taken; job started"' in line:
            entry = json.loads(line)
            found.append((entry["job"], int(entry["token"])))
    return found


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"not within {BOUND} s: {what}"
        await asyncio.sleep(0.1)


def pid(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


@pytest.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[Path, ServerProcess, ServerProcess]]:
    """A seeded data directory and two nodes on it, not started; both killed at the end."""
    data = tmp_path / "data"
    await seed(data, [AGENCY])
    a = node(data, tmp_path / "node-a.log")
    b = node(data, tmp_path / "node-b.log")
    try:
        yield data, a, b
    finally:
        for server in (a, b):
            if server.proc is not None and server.proc.poll() is None:
                server.signal(signal.SIGCONT)  # a frozen node must die too
            server.kill()


async def test_each_job_runs_on_one_node_and_a_killed_nodes_jobs_are_taken_over(
    two_nodes: tuple[Path, ServerProcess, ServerProcess],
) -> None:
    data, a, b = two_nodes
    await a.restart()
    await b.restart()
    pids = {pid(a): a, pid(b): b}
    await eventually(lambda: set(leases(data)) == JOBS, "every job's lease taken")
    # Several lease periods later: each job still held by one node, its first term, and
    # started in that node's log only.
    await asyncio.sleep(3 * LEASE_SECONDS)
    before = leases(data)
    for job, (holder_pid, token, _) in before.items():
        assert holder_pid in pids and token == 1, before
        other = next(s for p, s in pids.items() if p != holder_pid)
        assert (job, 1) in started(pids[holder_pid].log)
        assert job not in {j for j, _ in started(other.log)}

    # SIGKILL the holder of the dashboard's fold (no release: its leases must expire).
    victim = pids[before["stats-fold"][0]]
    survivor = b if victim is a else a
    victims_jobs = {j for j, (p, _, _) in before.items() if p == pid(victim)}
    victim.kill()
    await eventually(
        lambda: all(leases(data)[j][0] == pid(survivor) for j in victims_jobs),
        "the survivor takes the killed node's jobs over",
    )
    after = leases(data)
    for job in victims_jobs:
        assert after[job][1] == before[job][1] + 1
        assert (job, after[job][1]) in started(survivor.log)

    # The killed node's lease is not honoured: its renewal and its writes are refused.
    _, token, holder = before["stats-fold"]
    stale = Lease("stats-fold", holder, token)
    database = await Database.open(data / "lienthong.sqlite3")
    try:
        async with database.transaction() as tx:
            assert not await LeaseRepo(tx).renew(stale, timedelta(seconds=60), utcnow())
        refused = False
        try:
            async with database.transaction() as tx:
                await LeaseRepo(tx).fence(stale, utcnow())
        except LeaseLost:
            refused = True
        assert refused
    finally:
        await database.close()

    # The killed node starts again (a new holder): it waits, the survivor keeps the jobs.
    runs = len(started(victim.log))
    await victim.restart()
    await asyncio.sleep(3 * LEASE_SECONDS)
    assert leases(data) == after
    assert len(started(victim.log)) == runs


async def test_serve_with_two_workers_runs_each_job_in_one_worker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await seed(data, [AGENCY])
    server = node(data, tmp_path / "serve.log", workers=2)
    try:
        await server.restart()
        await eventually(lambda: set(leases(data)) == JOBS, "every job's lease taken")
        [line] = [x for x in server.log.read_text("utf-8").splitlines() if "workers started" in x]
        workers = set(json.loads(line)["pids"])
        assert len(workers) == 2
        held = leases(data)
        assert {p for p, _, _ in held.values()} <= workers, held
        assert all(token == 1 for _, token, _ in held.values()), held
        # a clean stop releases every lease: nothing is left held
        server.signal(signal.SIGTERM)
        assert server.proc is not None
        server.proc.wait(60)
        stopped = [
            json.loads(line)
            for line in server.log.read_text("utf-8").splitlines()
            if '"job stopped"' in line
        ]
        assert sorted((e["job"], e["reason"]) for e in stopped) == [
            (job, "stopped") for job in sorted(JOBS)
        ]
        rows = db_rows(data / "lienthong.sqlite3", "SELECT expires_at FROM job_leases")
        assert len(rows) == len(JOBS)
        assert all(from_db_time(str(expires)) <= utcnow() for (expires,) in rows), rows
    finally:
        server.kill()


def holds_write_lock(process_id: int) -> bool:
    """Whether the process holds a POSIX write lock (SQLite's, on the database or its WAL
    index) right now: /proc/locks."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields and len(fields) > 4 and fields[3] == "WRITE":
            if fields[4] == str(process_id):
                return True
    return False


def freeze(server: ServerProcess) -> None:
    """SIGSTOP the node at a moment it holds no SQLite write lock (a node frozen inside a write
    transaction would block every other writer, on SQLite as a PostgreSQL row lock would)."""
    for _ in range(200):
        server.signal(signal.SIGSTOP)
        time.sleep(0.05)  # the stop is delivered
        if not holds_write_lock(pid(server)):
            return
        server.signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the node never stopped outside a write transaction")


async def test_a_frozen_holder_that_wakes_up_after_a_take_over_is_not_honoured(
    two_nodes: tuple[Path, ServerProcess, ServerProcess],
) -> None:
    data, a, b = two_nodes
    await a.restart()
    await eventually(
        lambda: {j: p for j, (p, _, _) in leases(data).items()} == dict.fromkeys(JOBS, pid(a)),
        "node-a holds every job",
    )
    # node-a stalls (a paused VM, a long GC): it still believes it holds the leases.
    freeze(a)
    await b.restart()
    await eventually(
        lambda: all(p == pid(b) for p, _, _ in leases(data).values()),
        "node-b takes every job over from the frozen node",
    )
    taken = leases(data)
    assert all(token == 2 for _, token, _ in taken.values()), taken
    # node-a wakes up: its renewals are refused (or it sees it went unrenewed too long),
    # it stops every job, and node-b keeps them with the same terms.
    a.signal(signal.SIGCONT)

    def stopped_in_a() -> dict[str, str]:
        return {
            entry["job"]: entry["reason"]
            for entry in map(json.loads, a.log.read_text("utf-8").splitlines()[1:])
            if entry.get("message") == "job stopped"
        }

    await eventually(lambda: set(stopped_in_a()) == JOBS, "node-a stops its jobs")
    assert set(stopped_in_a().values()) <= {"lost", "expired"}, stopped_in_a()
    await asyncio.sleep(3 * LEASE_SECONDS)
    assert leases(data) == taken
    assert [j for j, _ in started(a.log)].count("stats-fold") == 1
