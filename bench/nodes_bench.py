"""Accepted packages/s with 1, 2 and 3 nodes on PostgreSQL, next to 1 node on SQLite (issue 20).

    .venv/bin/python bench/nodes_bench.py                     # 10 s a run, 48 connections
    .venv/bin/python bench/nodes_bench.py --seconds 20 --connections 96
    . /tmp/rgw/env && .venv/bin/python bench/nodes_bench.py --s3   # objects in the test S3

One run of each: real ``lienthong serve`` processes (one process each, ``--workers 1``) on one
throwaway PostgreSQL server (tests/services/postgres/start-pg.sh, fsync on, with
pg_stat_statements loaded), or on SQLite for the baseline. wrk drives them: one wrk per node,
the connections split evenly, each request a small package (about 2 KB) G22 -> H41 under a new
DocumentId (bench/send_profile.lua). Printed per run:

- accepted packages/s (201 answers over wrk's duration) and the p99 latency (the worst of the
  nodes' wrk p99s);
- CPU-ms per accepted package of each node (user + system of the serve process, from
  /proc/<pid>/stat, over the run) and of PostgreSQL (every process of the server);
- PostgreSQL round trips per accepted package: the statements the server executed
  (pg_stat_statements `calls`, BEGIN/SAVEPOINT/COMMIT included: each is a round trip of
  asyncpg's) over the run, divided by the accepted packages; with the top statements.

And once: PostgreSQL's commit rate on this machine (one-row INSERT transactions from 16
connections for 3 s), the ceiling of the metadata side.

Objects: by default each node keeps them in its own filesystem store (what is measured is the
metadata path; a real deployment shares S3: docs/scaling.md); with ``--s3`` they go to the S3
endpoint of LIENTHONG_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY (tests/services/s3/start-rgw.sh).

This machine has 2 cores shared with others: the point is the shape of the curve and the cost
per package, not the absolute rate. The load average is printed; give it with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from axis_process import LIENTHONG, free_port, wait_healthy
from edxml_bench import load_average
from send_profile import cpu_seconds, send_template

from server.runtime.tokens import new_token
from storage.backends import open_database
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

HERE = Path(__file__).resolve().parent
PG_SCRIPTS = HERE.parent / "tests" / "services" / "postgres"
SENDER, RECIPIENT = "000.00.00.G22", "000.00.00.H41"


@dataclass
class Pg:
    directory: Path
    url: str  # the admin database of the bench role

    def database_url(self, name: str) -> str:
        return urlsplit(self.url)._replace(path="/" + name).geturl()

    def psql_superuser(self, sql: str) -> str:
        """Run `sql` as the server's superuser (the bench role is not one), over its socket."""
        port = str(urlsplit(self.url).port)
        command = ["psql", "-h", str(self.directory), "-p", port, "-d", "lienthong", "-Atc", sql]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        binary = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        env = {**os.environ, "PATH": f"{binary}:{os.environ['PATH']}"}
        return subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout

    def server_cpu(self) -> float:
        """CPU seconds of every process of the server (postmaster and backends)."""
        pid = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        total = cpu_seconds(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            try:
                total += cpu_seconds(int(child))
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total


def start_pg(directory: Path) -> Pg:
    env = {
        **os.environ,
        "PG_EXTRA_CONF": "shared_preload_libraries = 'pg_stat_statements'\n"
        "pg_stat_statements.track_utility = on\n",
    }
    out = subprocess.run(
        [str(PG_SCRIPTS / "start-pg.sh"), str(directory)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    pg = Pg(directory, out.splitlines()[-1])
    pg.psql_superuser(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; GRANT pg_read_all_stats TO lienthong;"
        " GRANT EXECUTE ON FUNCTION pg_stat_statements_reset TO lienthong"
    )
    return pg


async def admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def seed(target: Path | str) -> str:
    """Sender and recipient, a token for the sender; return it."""
    database = await open_database(target)
    try:
        token, digest = new_token()
        async with database.transaction() as tx:
            await AgencyRepo(tx).add(SENDER, "Văn phòng Chính phủ")
            await AgencyRepo(tx).add(RECIPIENT, "UBND tỉnh Nghệ An")
            await TokenRepo(tx).create(SENDER, digest, label="nodes bench")
        return token
    finally:
        await database.close()


def run_wrk(
    url: str, token: str, package: Path, seconds: int, connections: int
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SEND_RUN": f"n{uuid.uuid4().hex[:12]}",
        "SEND_TOKEN": token,
        "SEND_PACKAGE": str(package),
    }
    command = [
        *("wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s"),
        *("--timeout", "30s", "--latency", "-s", str(HERE / "send_profile.lua"), url),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def wrk_report(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    report: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    return report


@dataclass
class Result:
    label: str
    nodes: int
    accepted: int
    seconds: float
    p99_ms: float
    cpu_ms_per_node: list[float]
    pg_cpu_ms: float | None
    round_trips: float | None
    top: list[tuple[str, int]]
    other_answers: dict[str, int]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


def one_run(
    label: str,
    nodes: int,
    env: dict[str, str],
    work: Path,
    token: str,
    package: Path,
    args: argparse.Namespace,
    pg: Pg | None,
    pg_url: str | None,
) -> Result:
    servers = []
    for i in range(nodes):
        data = work / f"{label}-node{i}"
        data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = work / f"{label}-node{i}.log"
        process = subprocess.Popen(
            [str(LIENTHONG), "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "LIENTHONG_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "0", **env},
        )
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, log)
        servers.append((url, process))
    try:
        time.sleep(1)  # start-up jobs settle
        if pg is not None:
            pg.psql_superuser("SELECT pg_stat_statements_reset()")
            pg_before = pg.server_cpu()
        before = [cpu_seconds(p.pid) for _, p in servers]
        per = max(1, args.connections // nodes)
        wrks = [run_wrk(url, token, package, args.seconds, per) for url, _ in servers]
        reports = [wrk_report(w) for w in wrks]
        after = [cpu_seconds(p.pid) for _, p in servers]
        pg_cpu = None if pg is None else pg.server_cpu() - pg_before
        accepted = sum(int(r["statuses"].get("201", 0)) for r in reports)
        others: dict[str, int] = {}
        for r in reports:
            for status, n in r["statuses"].items():
                if status != "201":
                    others[status] = others.get(status, 0) + int(n)
            for kind, n in r["errors"].items():
                if n:
                    others[kind] = others.get(kind, 0) + int(n)
        seconds = max(r["duration_us"] for r in reports) / 1e6
        round_trips = None
        top: list[tuple[str, int]] = []
        if pg is not None and pg_url is not None:
            rows = asyncio.run(statements(pg.url, urlsplit(pg_url).path.lstrip("/")))
            total = sum(calls for _, calls in rows)
            round_trips = total / max(1, accepted)
            top = rows[: args.top]
        return Result(
            label,
            nodes,
            accepted,
            seconds,
            max(r["p99_us"] for r in reports) / 1000,
            [(a - b) * 1000 / max(1, accepted / nodes) for a, b in zip(after, before, strict=True)],
            None if pg_cpu is None else pg_cpu * 1000 / max(1, accepted),
            round_trips,
            top,
            others,
        )
    finally:
        for _, process in servers:
            process.terminate()
        for _, process in servers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def statements(admin_url: str, database: str) -> list[tuple[str, int]]:
    """The statements the server ran in `database` since the reset, most called first (the
    view lives where the extension was made: the admin database)."""
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT query, calls FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)"
            " ORDER BY calls DESC",
            database,
        )
        return [(" ".join(str(r[0]).split())[:90], int(r[1])) for r in rows]
    finally:
        await conn.close()


async def commit_rate(url: str, connections: int = 16, seconds: float = 3.0) -> float:
    """One-row INSERT transactions per second from `connections` connections."""
    await admin(url, "CREATE TABLE IF NOT EXISTS bench_commits (n BIGINT, at TEXT)")
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    done = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.monotonic() < stop:
                async with conn.transaction():
                    await conn.execute("INSERT INTO bench_commits VALUES ($1, 'x')", done)
                done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.monotonic() - started
    await pool.close()
    return done / elapsed


def s3_env() -> dict[str, str]:
    prefix = "LIENTHONG_TEST_S3_"
    if not os.environ.get(prefix + "ENDPOINT"):
        raise SystemExit("--s3: set LIENTHONG_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY")
    return {
        "LIENTHONG_STORAGE_BACKEND": "s3",
        "LIENTHONG_S3_ENDPOINT": os.environ[prefix + "ENDPOINT"],
        "LIENTHONG_S3_ACCESS_KEY": os.environ.get(prefix + "ACCESS_KEY", ""),
        "LIENTHONG_S3_SECRET_KEY": os.environ.get(prefix + "SECRET_KEY", ""),
        "LIENTHONG_S3_BUCKET": f"lt-bench-{uuid.uuid4().hex[:10]}",
        "LIENTHONG_S3_SECURE": "false",
        "LIENTHONG_S3_RETENTION_YEARS": "1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=48)
    parser.add_argument("--nodes", default="1,2,3", help="node counts on PostgreSQL")
    parser.add_argument("--s3", action="store_true", help="objects in the test S3 endpoint")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--top", type=int, default=12, help="statements shown of the last run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    counts = [int(n) for n in args.nodes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="nodes-bench-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="lt-bench-pg-"))
    print(f"load average before: {load_average()}  (2 shared cores: compare shapes, not rates)")
    package = work / "package.xml"
    package.write_bytes(send_template(2000))
    objects = s3_env() if args.s3 else {}
    results = []
    pg = start_pg(pg_dir)
    try:
        data = work / "sqlite-node0"
        token = asyncio.run(seed(data / "lienthong.sqlite3"))
        results.append(one_run("sqlite", 1, objects, work, token, package, args, None, None))
        for n in counts:
            name = f"bench_{n}"
            asyncio.run(admin(pg.url, f"CREATE DATABASE {name}"))
            url = pg.database_url(name)
            token = asyncio.run(seed(url))
            password = urlsplit(url).password or ""
            env = {
                **objects,
                "LIENTHONG_DATABASE_URL": url.replace(f":{password}@", "@"),
                "LIENTHONG_DATABASE_PASSWORD": password,
            }
            results.append(one_run(f"pg{n}", n, env, work, token, package, args, pg, url))
        asyncio.run(admin(pg.url, "CREATE DATABASE bench_commits"))
        commits = asyncio.run(commit_rate(pg.database_url("bench_commits")))
    finally:
        subprocess.run([str(PG_SCRIPTS / "stop-pg.sh"), "--rm", str(pg_dir)], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {load_average()}")
    print(
        f"\n{'run':8} {'nodes':>5} {'pkg/s':>7} {'p99 ms':>7} {'CPU-ms/pkg per node':>22}"
        f" {'PG CPU-ms/pkg':>13} {'PG trips/pkg':>12}  other answers"
    )
    for r in results:
        cpu = " ".join(f"{c:.1f}" for c in r.cpu_ms_per_node)
        pg_cpu = "-" if r.pg_cpu_ms is None else f"{r.pg_cpu_ms:.2f}"
        trips = "-" if r.round_trips is None else f"{r.round_trips:.1f}"
        print(
            f"{r.label:8} {r.nodes:5d} {r.rate:7.0f} {r.p99_ms:7.0f} {cpu:>22} {pg_cpu:>13}"
            f" {trips:>12}  {r.other_answers or ''}"
        )
    print(f"\nPostgreSQL commit rate (one-row INSERT, 16 connections, 3 s): {commits:.0f}/s")
    last = results[-1]
    if last.top:
        print(f"\nstatements of run {last.label} (calls over the run, {last.accepted} packages):")
        for query, calls in last.top:
            print(f"  {calls / max(1, last.accepted):6.2f}/pkg  {query}")


if __name__ == "__main__":
    main()
