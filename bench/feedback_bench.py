"""Citizen feedback under load (issue 17): anonymous intake, and reads over many feedback.

Run by hand, never by the test suite. The real ``lienthong serve`` on 127.0.0.1 on a temporary
data directory with the demo data (the five demo categories); the load comes from ``wrk`` with
the Lua scripts beside this file (``dossier_bench.py``'s helpers: demo, serve, wrk, figures).
The per-address budgets are lifted: every wrk connection comes from 127.0.0.1.

(1) *intake*: ``--citizens`` connections POST new anonymous feedback as JSON for ``--seconds``
    (``bench/feedback_intake.lua``), ``serve --workers 1``; then every code is read back and
    each day's numbers must be exactly 0001..N (gapless, no repeat).
(2) *reads at volume*: ``--seed`` feedback (default 1,000,000) over the last two years inserted
    straight into the database (the rows intake writes), then with ``--read-connections``
    for ``--read-seconds`` each: the province office's overdue list (first page), one
    feedback, the public list of published feedback (first page), and ``GET /healthz`` in the
    same run for comparison.

    .venv/bin/python bench/feedback_bench.py [--only intake|reads] [--seconds 10]
        [--citizens 20] [--seed 1000000] [--read-connections 1 10] [--read-seconds 10]

Figures: docs/feedback.md, "Benchmarks" (2 busy shared cores, 200,000 feedback: intake 133/s;
overdue list p50 12 ms; public list p50 12 ms; one feedback p50 4 ms).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dossier_bench import VN, describe, prepare, serve, wrk

from server.calendar.clock import WorkingClock
from server.calendar.days import WorkingDays
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped
from storage.ids import to_db_time

OFFICE = "000.00.00.H41"  # the province's office receives every feedback
# demo category -> its agency (server/demo/feedback_categories.json) and how often it is used
CATEGORIES = {
    "duong-hu-hong": ("000.00.31.H41", 0.35),
    "chieu-sang": ("000.00.31.H41", 0.2),
    "ve-sinh-moi-truong": ("000.05.31.H41", 0.25),
    "thu-tuc-hanh-chinh": ("000.00.12.H41", 0.12),
    "thai-do-can-bo": ("000.00.12.H41", 0.08),
}
LIFTED = {
    "LIENTHONG_FEEDBACK_SUBMIT_PER_MINUTE": "100000000",
    "LIENTHONG_FEEDBACK_LOOKUP_PER_MINUTE": "100000000",
    "LIENTHONG_FEEDBACK_RECEIVING_UNIT": OFFICE,
}


def check_codes(database: Path) -> tuple[int, int, list[str]]:
    """(feedback, days, problems): each day's numbers must be 1..N exactly."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT code, day, seq FROM feedback").fetchall()
    finally:
        conn.close()
    by_day: dict[str, list[int]] = defaultdict(list)
    problems = []
    for code, day, seq in rows:
        if code != f"PA-{day}-{seq:04d}":
            problems.append(f"code {code} is not PA-{day}-{seq:04d}")
        by_day[day].append(seq)
    for day, numbers in sorted(by_day.items()):
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            problems.append(f"{day}: {len(numbers)} numbers, not 1..{len(numbers)}")
    return len(rows), len(by_day), problems


def bench_intake(template: Path, args: argparse.Namespace) -> None:
    data = template.parent / "intake"
    shutil.copytree(template, data)
    axis = serve(data, 1)
    try:
        figures = wrk(
            axis.url,
            "feedback_intake.lua",
            args.citizens,
            args.seconds,
            {"FEEDBACK_RUN": f"run-{time.time_ns()}"},
        )
    finally:
        axis.stop()
    stored, days, problems = check_codes(data / "lienthong.sqlite3")
    print(f"(1) intake, {args.citizens} anonymous citizens, JSON: {describe(figures)}")
    print(
        f"    database: {stored:,} feedback over {days} day(s); codes 0001..N without gap or "
        f"repeat: {'yes' if not problems else 'NO'}"
    )
    for problem in problems[:10]:
        print(f"      {problem}")


def seed_rows(count: int, now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """``count`` feedback over the last two years in code order; statuses follow the age: the
    last 20 working days are in progress (some overdue), older ones answered and mostly
    published (a few hidden, a few never answered: overdue)."""
    clock = WorkingClock(
        WorkingDays(shipped().decisions), WorkingHours.from_text(("07:00-11:30", "13:30-17:00"))
    )
    start = (now - timedelta(days=730)).astimezone(VN).replace(hour=0, minute=0, second=0)
    moments = sorted(
        start + timedelta(days=rng.randrange(730), minutes=rng.randrange(24 * 60))
        for _ in range(count)
    )
    names, weights = list(CATEGORIES), [w for _, w in CATEGORIES.values()]
    seq_of: dict[str, int] = defaultdict(int)
    token = hashlib.sha256(b"bench").hexdigest()
    for received in moments:
        day = received.strftime("%y%m%d")
        seq_of[day] += 1
        seq = seq_of[day]
        category = rng.choices(names, weights)[0]
        agency = CATEGORIES[category][0]
        classify_due = clock.due_at(received, 2)
        transfer_due = clock.due_at(received, 5)
        answer_due = clock.due_at(received, 15)
        answered_at = published_at = publish_due = None
        answer = ""
        if answer_due > now:
            status = rng.choices(
                ("received", "classified", "transferred", "processing"), (10, 10, 40, 40)
            )[0]
        elif rng.random() < 0.01:
            status = rng.choice(("transferred", "processing"))
        else:
            answered_at = received + (answer_due - received) * rng.uniform(0.3, 1.0)
            publish_due = clock.due_at(answered_at, 2)
            answer = f"Đã xử lý phản ánh số {seq}."
            if publish_due < now and rng.random() < 0.95:
                status, published_at = "published", answered_at + timedelta(days=1)
            else:
                status = "answered"
        stamp = to_db_time(received)
        yield (
            f"PA-{day}-{seq:04d}", day, seq, category, OFFICE, agency, "web", status,
            f"Phản ánh số {seq}", f"Nội dung phản ánh số {seq} về {category}.",
            f"{seq % 300} Lê Lợi, Nam Đàn", 18.6 + rng.random() / 10, 105.6 + rng.random() / 10,
            "{}", json.dumps({"name": f"Nguyễn Văn {seq}", "phone": "0912345678", "email": ""}),
            token, None, stamp, to_db_time(classify_due), to_db_time(transfer_due),
            to_db_time(answer_due), None if publish_due is None else to_db_time(publish_due),
            None, 0, answer, None if answered_at is None else to_db_time(answered_at),
            None if published_at is None else to_db_time(published_at),
            int(rng.random() < 0.002), "", None, None, stamp, stamp,
        )  # fmt: skip


def seed(database: Path, count: int, seed_value: int) -> float:
    """Insert ``count`` feedback in one transaction (raw SQL: the columns of migration 0027;
    intake would take hours for a million); the seconds it took."""
    started = time.perf_counter()
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO feedback VALUES (" + ", ".join("?" * 33) + ")",  # noqa: S608
            seed_rows(count, datetime.now(UTC), random.Random(seed_value)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def bench_reads(template: Path, tokens: dict[str, str], args: argparse.Namespace) -> None:
    data = template.parent / "reads"
    shutil.copytree(template, data)
    database = data / "lienthong.sqlite3"
    took = seed(database, args.seed, args.random_seed)
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        total, published = conn.execute(
            "SELECT count(*), sum(published_at IS NOT NULL AND hidden = 0) FROM feedback"
        ).fetchone()
        codes = [r[0] for r in conn.execute("SELECT code FROM feedback")]
    finally:
        conn.close()
    sample = random.Random(args.random_seed).sample(codes, min(2000, len(codes)))
    print(
        f"(2) {total:,} feedback seeded in {took:.0f} s "
        f"({database.stat().st_size / 1e6:,.0f} MB), {published:,} published"
    )
    paths = {
        "office's overdue list, first page": ["/api/v1/feedback?overdue=true&limit=50"],
        "GET one feedback": [f"/api/v1/feedback/{quote(c, safe='')}" for c in sample],
        "public list, first page": ["/api/v1/public/feedback?limit=50"],
        "GET /healthz": ["/healthz"],
    }
    axis = serve(data, 1)
    try:
        for name, lines in paths.items():
            listed = data / "paths.txt"
            listed.write_text("".join(f"{p}\n" for p in lines))
            for connections in args.read_connections:
                figures = wrk(
                    axis.url,
                    "dossier_read.lua",
                    connections,
                    args.read_seconds,
                    {"DOSSIER_PATHS": str(listed), "DOSSIER_TOKEN": tokens[OFFICE]},
                )
                print(f"    {name}, {connections} connection(s): {describe(figures)}")
    finally:
        axis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["intake", "reads"])
    parser.add_argument("--seconds", type=int, default=10, help="intake load")
    parser.add_argument("--citizens", type=int, default=20, help="concurrent intake connections")
    parser.add_argument("--seed", type=int, default=1_000_000, help="feedback seeded for (2)")
    parser.add_argument("--random-seed", type=int, default=17)
    parser.add_argument("--read-connections", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--read-seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2
    os.environ.update(LIFTED)  # read by `serve` (dossier_bench.serve passes os.environ on)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    root = Path(tempfile.mkdtemp(prefix="lienthong-feedback-bench-"))
    try:
        template = root / "template"
        tokens = prepare(template)
        if args.only in (None, "intake"):
            bench_intake(template, args)
        if args.only in (None, "reads"):
            bench_reads(template, tokens, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
