"""One-stop dossiers under load (issue 16, "Benchmarks"): intake, the overdue list, one dossier.

Run by hand, never by the test suite. The real ``lienthong serve`` runs on 127.0.0.1 on a
temporary data directory (the demo agencies and procedures, plus five more units: ten receiving
units with a token each); the HTTP load comes from ``wrk`` (Debian package ``wrk``) with the
Lua scripts beside this file, because on two cores a Python load generator takes the CPU the
server needs.

(1) *intake*: ``--clerks`` connections (default 50) POST new dossiers for ``--seconds``
    (``bench/dossier_intake.lua``: multipart, procedure 1.001193 with its two files, the token
    rotating over the ten units, a unique ``Idempotency-Key`` each), against ``serve`` with
    ``--workers 1`` and then ``2`` (``--workers``). Prints dossiers/s and latency percentiles,
    then reads every code back from the database and checks that each unit's numbers of each
    day are exactly 0001..N (no gap, no repeat) and that each code is ``unit-YYMMDD-NNNN``.
(2) *reads at volume*: ``--seed`` dossiers (default 1,000,000) inserted straight into the
    database, then ``GET /api/v1/dossiers?overdue=true&limit=50`` (an agency's overdue list,
    first page) and ``GET /api/v1/dossiers/{code}`` (one dossier, for the owning agency; the
    public lookup route is not on this branch) with ``--read-connections`` (default 1 and 10)
    for ``--read-seconds`` each. Goal: p99 under 20 ms. Prints the SQL plan of the list query.

    .venv/bin/python bench/dossier_bench.py [--only intake|reads] [--seconds 20] [--clerks 50]
        [--workers 1 2] [--seed 1000000] [--read-connections 1 10] [--keep DIR]
        [--reads overdue dossier public] [--read-workers 1 2] [--reuse DIR/reads]

(2) runs against ``serve --workers N`` for each N of ``--read-workers``. ``--reuse DIR/reads``
runs (2) on the database a ``--keep DIR`` run seeded (seeding takes minutes) with a new token
of the busiest unit. Where a list page's CPU goes: bench/dossier_list_profile.py.

Due-date computation is benched by bench/calendar_bench.py. Figures: docs/dossiers.md,
"Benchmarks". Measured on 2 shared, busy cores (±50 %): intake 262/s p99 487 ms (--workers 1),
260/s p99 1,045 ms (2), codes gapless; over 1M dossiers the overdue list p99 291 ms (missed:
the OR of the two parties reads all the agency's dossiers), one dossier p99 15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import LIENTHONG, RunningServer, free_port, wait_healthy

from server.calendar.clock import WorkingClock
from server.calendar.days import WorkingDays
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped
from storage.ids import to_db_time
from storage.repos.dossiers import DossierFilter, page_query, transferred_query

HERE = Path(__file__).resolve().parent
VN = ZoneInfo("Asia/Ho_Chi_Minh")
# The public lookup's per-address budget and the cap of connections per address are lifted:
# every wrk connection comes from 127.0.0.1.
ENV = {
    "LIENTHONG_SERVER_LOG_JSON": "1",
    "LIENTHONG_VERIFY_ONLINE": "0",
    "LIENTHONG_DOSSIERS_LOOKUP_PER_MINUTE": "100000000",
    "LIENTHONG_SERVER_MAX_CONNECTIONS_PER_ADDRESS": "0",
}
# Five units besides the demo's five (the demo's 000.00.31.H41 district is their parent).
EXTRA_UNITS = ["000.01.31.H41", "000.02.31.H41", "000.03.31.H41", "000.04.31.H41", "000.06.31.H41"]
FINAL = (3, 7, 8, 9, 10)
# The demo catalogue: code -> (days, calendar days?), and how often each is filed.
PROCEDURES = {"1.001193": (1, False), "2.000806": (15, False), "2.001263": (30, True)}
PROCEDURE_WEIGHTS = (0.6, 0.25, 0.15)
BUSIEST = "000.05.31.H41"  # the unit with the most dossiers in the seeded database


# --- the axis ----------------------------------------------------------------------------------


def run(*args: str) -> str:
    done = subprocess.run(
        [str(LIENTHONG), *args], capture_output=True, text=True, encoding="utf-8", check=True
    )
    return done.stdout


def prepare(data: Path) -> dict[str, str]:
    """The demo agencies and procedures plus five more units in ``data``; {organ id: token}."""
    out = run("demo", "--data-dir", str(data))
    demo = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    tokens = {
        "000.00.00.G22": demo["TOKEN_G22"],
        "000.00.00.H41": demo["TOKEN_H41"],
        "000.00.12.H41": demo["TOKEN_12_H41"],
        "000.00.31.H41": demo["TOKEN_31_H41"],
        "000.05.31.H41": demo["TOKEN_05_31_H41"],
    }
    for unit in EXTRA_UNITS:
        run(
            "agency",
            "add",
            unit,
            "--name",
            f"UBND xã {unit}",
            "--parent",
            "000.00.31.H41",
            "--data-dir",
            str(data),
        )
        tokens[unit] = new_token(data, unit)
    return tokens


def serve(data: Path, workers: int) -> RunningServer:
    port = free_port()
    log = data / "serve.log"
    process = subprocess.Popen(
        [
            *(str(LIENTHONG), "serve", "--data-dir", str(data)),
            *("--port", str(port), "--workers", str(workers)),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **ENV},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # a worker still starting may hold /healthz past urlopen's timeout: retry
        try:
            wait_healthy(url, process, log)
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
    time.sleep(1.0 if workers > 1 else 0.2)  # let every worker come up before the load
    return RunningServer(url, process, data, {})


def wrk(
    url: str, script: str, connections: int, seconds: int, env: dict[str, str]
) -> dict[str, Any]:
    """Run wrk with a Lua script of bench/; the WRK_JSON line its done() prints."""
    threads = min(2, connections)
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(line.removeprefix("WRK_JSON ")))


def ms(us: int) -> str:
    return f"{us / 1000:.1f} ms"


def describe(figures: dict[str, Any]) -> str:
    seconds = figures["duration_us"] / 1e6
    errors = {k: v for k, v in figures["errors"].items() if v}
    return (
        f"{figures['requests'] / seconds:,.0f}/s ({figures['requests']:,} in {seconds:.1f} s), "
        f"p50 {ms(figures['p50_us'])}, p90 {ms(figures['p90_us'])}, "
        f"p99 {ms(figures['p99_us'])}, max {ms(figures['max_us'])}; "
        f"answers {figures['statuses']}" + (f", socket errors {errors}" if errors else "")
    )


# --- (1) intake --------------------------------------------------------------------------------


def check_codes(database: Path) -> tuple[int, int, list[str]]:
    """(dossiers, unit-days, problems): each unit's numbers of a day must be 1..N exactly."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT code, receiving_unit, day, seq FROM dossiers").fetchall()
    finally:
        conn.close()
    by_day: dict[tuple[str, str], list[int]] = defaultdict(list)
    problems = []
    for code, unit, day, seq in rows:
        if code != f"{unit}-{day}-{seq:04d}":
            problems.append(f"code {code} is not {unit}-{day}-{seq:04d}")
        by_day[unit, day].append(seq)
    for (unit, day), numbers in sorted(by_day.items()):
        numbers.sort()
        if numbers != list(range(1, len(numbers) + 1)):
            missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
            repeated = len(numbers) - len(set(numbers))
            problems.append(
                f"{unit} {day}: {len(numbers)} numbers, missing {missing[:5]}, {repeated} repeated"
            )
    return len(rows), len(by_day), problems


def bench_intake(template: Path, tokens: dict[str, str], args: argparse.Namespace) -> None:
    for workers in args.workers:
        data = template.parent / f"intake-w{workers}"
        shutil.copytree(template, data)
        axis = serve(data, workers)
        try:
            figures = wrk(
                axis.url,
                "dossier_intake.lua",
                args.clerks,
                args.seconds,
                {
                    "DOSSIER_TOKENS": ",".join(tokens.values()),
                    "DOSSIER_RUN": f"w{workers}-{time.time_ns()}",
                    "DOSSIER_FILE_BYTES": str(args.file_bytes),
                },
            )
        finally:
            axis.stop()
        stored, days, problems = check_codes(data / "lienthong.sqlite3")
        print(
            f"(1) intake, {args.clerks} clerks of {len(tokens)} units, serve --workers "
            f"{workers}: {describe(figures)}"
        )
        print(
            f"    database: {stored:,} dossiers over {days} unit-days "
            f"({figures['statuses'].get('201', 0):,} answered 201 before wrk stopped); "
            f"codes 0001..N without gap or repeat: {'yes' if not problems else 'NO'}"
        )
        for problem in problems[:10]:
            print(f"      {problem}")
        if not args.keep:
            shutil.rmtree(data)


# --- (2) reads at volume -----------------------------------------------------------------------


def seed_rows(
    count: int, units: list[str], now: datetime, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """``count`` dossiers over the last two years, unit by unit in code order.

    Units get uneven shares (a busy ward to a quiet commune); a dossier is received on a
    weekday (one in twenty on a weekend) in office hours, under one of the demo procedures,
    competent agency its own unit three times in four, else another unit; its due date is the
    real clock's. Statuses follow the age: a dossier not yet due is in progress (1, 2, 4, 5,
    6, 9) or refused/withdrawn; one past due is mostly finished (9, 10, 3, 7, 8), but 8 % of
    those due in the last 30 days, and 0.3 % of the older, are still open: the overdue ones.
    """
    clock = WorkingClock(
        WorkingDays(shipped().decisions), WorkingHours.from_text(("07:00-11:30", "13:30-17:00"))
    )
    weights = [1.0 / (i + 1) ** 0.7 for i in range(len(units))]
    shares = [round(count * w / sum(weights)) for w in weights]
    shares[0] += count - sum(shares)
    start = (now - timedelta(days=730)).astimezone(VN).replace(hour=0, minute=0, second=0)
    codes = list(PROCEDURES)
    for unit, share in zip(units, shares, strict=True):
        moments = []
        for _ in range(share):
            day = start + timedelta(days=rng.randrange(730))
            while day.weekday() >= 5 and rng.random() > 0.05:
                day = start + timedelta(days=rng.randrange(730))
            moments.append(day + timedelta(minutes=rng.randrange(7 * 60, 17 * 60)))
        moments.sort()
        seq_of: dict[str, int] = defaultdict(int)
        for received in moments:
            ymd = received.strftime("%y%m%d")
            seq_of[ymd] += 1
            seq = seq_of[ymd]
            procedure = rng.choices(codes, PROCEDURE_WEIGHTS)[0]
            days, calendar_days = PROCEDURES[procedure]
            due = (
                clock.due_at_calendar_days(received, days)
                if calendar_days
                else clock.due_at(received, days)
            )
            agency = unit if rng.random() < 0.75 else rng.choice(units)
            paused_at = None
            if due > now:
                status = rng.choices((1, 2, 4, 5, 6, 9, 3, 7), (5, 20, 45, 8, 5, 10, 4, 3))[0]
            elif rng.random() < (0.08 if now - due < timedelta(days=30) else 0.003):
                status = rng.choices((2, 4, 6, 5), (20, 65, 10, 5))[0]
            else:
                status = rng.choices((10, 9, 3, 7, 8), (85, 4, 5, 4, 2))[0]
            if status == 5:
                paused_at = received + (due - received) / 2
            applicant = json.dumps(
                {
                    "kind": "citizen",
                    "name": f"Nguyễn Thị Hồ Sơ {seq}",
                    "id_number": f"0{rng.randrange(10**11):011d}",
                    "phone": f"09{rng.randrange(10**8):08d}",
                    "address": f"Xóm {seq % 20}, {unit}",
                },
                ensure_ascii=False,
                sort_keys=True,
            )
            stamp = to_db_time(received)
            yield (
                f"{unit}-{ymd}-{seq:04d}",
                unit,
                ymd,
                seq,
                procedure,
                agency,
                rng.choice((1, 1, 2, 3)),
                status,
                applicant,
                stamp,
                to_db_time(due),
                None if paused_at is None else to_db_time(paused_at),
                None,
                stamp,
                stamp,
            )


def seed(database: Path, count: int, units: list[str], seed_value: int) -> float:
    """Insert ``count`` dossiers in one transaction; the seconds it took.

    Raw SQL on purpose: this bench is the one place seeding goes around the domain (intake
    would take hours for a million dossiers, and the rows are exactly those intake writes:
    the columns of migration 0014). No events nor files are seeded: a dossier's events and
    files are read by their indexed dossier code whatever their number.
    """
    started = time.perf_counter()
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        # OR IGNORE: the demo's own dossiers (its traffic of the last weeks) hold a few of the
        # (unit, day, number) places the seeding draws; those are left to them.
        conn.executemany(
            "INSERT OR IGNORE INTO dossiers (code, receiving_unit, day, seq, procedure, agency,"
            " channel,"
            " status, applicant, received_at, due_at, paused_at, idempotency_key, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            seed_rows(count, units, datetime.now(UTC), random.Random(seed_value)),
        )
        # The dashboard's triggers queued the seeded rows' cells for its rollups (docs/
        # dashboard.md): folding a million dossiers would keep the server busy for minutes
        # during the reads measured here, which need no rollup. The queue is emptied.
        conn.execute("DELETE FROM stats_dirty")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def explain(database: Path, agency: str) -> None:
    """The plans and the time of the overdue list's queries (DossierRepo.page's own SQL: the
    UNION of the agency's own two sides, migration 0018, then the dossiers transferred to it,
    migration 0019), straight on the database."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    where = DossierFilter(agency, overdue_at=datetime.now(UTC))
    queries = [page_query(where, None, 51), transferred_query(where, None, 51, "sqlite")]
    try:
        plans = [conn.execute("EXPLAIN QUERY PLAN " + q, p).fetchall() for q, p in queries]
        started = time.perf_counter()
        for _ in range(5):
            for sql, params in queries:
                conn.execute(sql, params).fetchall()
        each = (time.perf_counter() - started) / 5
    finally:
        conn.close()
    print("    plans of the overdue list queries (storage/repos/dossiers.py DossierRepo.page):")
    for plan in plans:
        for row in plan:
            print(f"      {row[-1]}")
    print(f"    the queries alone, in this process: {each * 1000:.1f} ms")


def new_token(data: Path, unit: str) -> str:
    created = run("token", "create", unit, "--data-dir", str(data))
    return next(ln for ln in created.splitlines() if ln.startswith("lt_"))


def bench_reads(template: Path, tokens: dict[str, str], args: argparse.Namespace) -> None:
    if args.reuse is not None:  # a directory an earlier run seeded and kept (DIR/reads)
        data, units = args.reuse, [BUSIEST]
        tokens = {BUSIEST: new_token(data, BUSIEST)}
        database, took = data / "lienthong.sqlite3", 0.0
    else:
        data = template.parent / "reads"
        shutil.copytree(template, data)
        database = data / "lienthong.sqlite3"
        # Communes first: the busiest units are the one-stop sections of communes and wards.
        units = [u for u in tokens if u.endswith(".31.H41") and u != "000.00.31.H41"]
        units += [u for u in tokens if u not in units]
        took = seed(database, args.seed, units, args.random_seed)
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        now = to_db_time(datetime.now(UTC))
        marks = ", ".join("?" * len(FINAL))
        open_where = f"paused_at IS NULL AND status NOT IN ({marks})"
        total, overdue = conn.execute(
            f"SELECT count(*), sum(due_at < ? AND {open_where}) FROM dossiers",  # noqa: S608
            (now, *FINAL),
        ).fetchone()
        agency = units[0]  # the busiest unit (a commune)
        mine, mine_overdue = conn.execute(
            f"SELECT count(*), sum(due_at < ? AND {open_where}) FROM dossiers"  # noqa: S608
            " WHERE receiving_unit = ? OR agency = ?",
            (now, *FINAL, agency, agency),
        ).fetchone()
        rng = random.Random(args.random_seed)
        codes = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM dossiers WHERE receiving_unit = ? OR agency = ?",
                (agency, agency),
            )
        ]
        sample = rng.sample(codes, min(2000, len(codes)))
    finally:
        conn.close()
    size = database.stat().st_size / 1e6
    seeded = f"seeded in {took:.0f} s" if args.reuse is None else f"reused from {data}"
    print(
        f"(2) {total:,} dossiers {seeded} ({size:,.0f} MB), {overdue:,} overdue; "
        f"agency {agency}: {mine:,} dossiers (received or to process), {mine_overdue:,} "
        f"overdue"
    )
    explain(database, agency)
    lists = data / "overdue-paths.txt"
    lists.write_text("/api/v1/dossiers?overdue=true&limit=50\n")
    lookups = data / "lookup-paths.txt"
    lookups.write_text("".join(f"/api/v1/dossiers/{quote(c, safe='')}\n" for c in sample))
    public = data / "public-paths.txt"
    public.write_text("".join(f"/api/v1/public/dossiers/{quote(c, safe='')}\n" for c in sample))
    reads = {
        "overdue": ("overdue list, first page", lists),
        "dossier": ("GET one dossier", lookups),
        "public": ("public lookup", public),
    }
    for workers in args.read_workers:
        axis = serve(data, workers)
        try:
            for read in args.reads:
                name, paths = reads[read]
                for connections in args.read_connections:
                    figures = wrk(
                        axis.url,
                        "dossier_read.lua",
                        connections,
                        args.read_seconds,
                        {"DOSSIER_PATHS": str(paths), "DOSSIER_TOKEN": tokens[agency]},
                    )
                    p99 = figures["p99_us"] / 1000
                    print(
                        f"    {name}, --workers {workers}, {connections} connection(s): "
                        f"{describe(figures)}; p99 goal 20 ms: {'met' if p99 < 20 else 'MISSED'}"
                    )
        finally:
            axis.stop()
    if not args.keep and args.reuse is None:
        shutil.rmtree(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["intake", "reads"])
    parser.add_argument("--seconds", type=int, default=20, help="intake load per run")
    parser.add_argument("--clerks", type=int, default=50, help="concurrent intake connections")
    parser.add_argument("--file-bytes", type=int, default=4096, help="size of each of 2 files")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=1_000_000, help="dossiers seeded for (2)")
    parser.add_argument("--random-seed", type=int, default=16)
    parser.add_argument("--read-connections", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--read-seconds", type=int, default=10)
    parser.add_argument(
        "--reads",
        nargs="+",
        choices=["overdue", "dossier", "public"],
        default=["overdue", "dossier", "public"],
        help="which reads of (2)",
    )
    parser.add_argument(
        "--read-workers", type=int, nargs="+", default=[1, 2], help="serve --workers for (2)"
    )
    parser.add_argument("--keep", type=Path, help="keep the data directories under DIR")
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR/reads",
        help="(2) on the database an earlier --keep run seeded, instead of seeding again",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    root = args.keep or Path(tempfile.mkdtemp(prefix="lienthong-dossier-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        template = root / "template"
        if args.reuse is not None:
            bench_reads(template, {}, args)
            return 0
        tokens = prepare(template)
        if args.only in (None, "intake"):
            bench_intake(template, tokens, args)
        if args.only in (None, "reads"):
            bench_reads(template, tokens, args)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
