"""Open311 GeoReport v2 under load (issue 17, "Benchmarks"): ``GET /requests.json`` over a
million feedback (the default window: the last 90 days, the first 1,000) and ``POST
/requests.json``, next to ``GET /healthz`` measured in the same run on the same server.

Run by hand, never by the test suite. The real ``lienthong serve`` (``--workers 1``) runs on
127.0.0.1 on a temporary data directory (``lienthong demo``, one category, an Open311 key made
by ``lienthong open311 key create``); ``--seed`` feedback (default 1,000,000) are inserted
straight into the database over the last 180 days (2 % hidden), the columns of migration 0027
as the intake writes them. The load comes from ``wrk`` (bench/dossier_read.lua for GETs,
bench/open311_post.lua for the posts), ``--connections`` (default 10) for ``--seconds`` each.
The per-key post budget is lifted: this measures the server, not the limit.

    .venv/bin/python bench/open311_bench.py [--seed 1000000] [--seconds 15] [--connections 10]
        [--keep DIR]

Figures: docs/open311.md, "Benchmarks" (two runs). Measured on 2 shared, busy cores (±50 %),
10 connections, over 1M feedback: GET /healthz 3,221/s p99 58 ms; GET requests.json (1,000 a
page) 6-8/s, p99 1.7-3.3 s (CPU-bound in Python, ~30 ms of CPU an answer before aiohttp);
GET requests/{id}.json 2,047-3,065/s p99 29-32 ms; POST requests.json 204-388/s p99 0.7-1.8 s.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dossier_bench import ENV, describe, run, serve, wrk

from storage.ids import to_db_time

V2 = "/open311/v2/"
SETTLE = 5  # seconds between runs: the requests a run leaves queued are served before the next
AGENCY = "000.00.12.H41"  # a demo agency
SERVICE = "DUONG-HU-HONG"
STATUSES = ("received", "classified", "transferred", "processing", "answered", "published")
# the per-key post budget lifted (serve() of dossier_bench.py passes ENV to the server)
ENV["LIENTHONG_OPEN311_POSTS_PER_MINUTE"] = "100000000"


def rows(count: int, now: datetime, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """``count`` feedback received over the last 180 days, in time order, each day's numbers
    1..N (codes ``PA-YYMMDD-NNNN``); the older, the more likely answered or published."""
    start = now - timedelta(days=180)
    moments = sorted(start + timedelta(seconds=rng.randrange(180 * 86400)) for _ in range(count))
    seq: dict[str, int] = {}
    sender = json.dumps({"name": "Nguyễn Văn An", "phone": "0912345678", "email": ""})
    for received in moments:
        day = received.strftime("%y%m%d")
        seq[day] = seq.get(day, 0) + 1
        age = (now - received).days
        status = rng.choice(STATUSES[4:] if age > 30 and rng.random() < 0.9 else STATUSES)
        stamp = to_db_time(received)
        due = to_db_time(received + timedelta(days=21))
        answered = stamp if status in ("answered", "published") else None
        yield (
            f"PA-{day}-{seq[day]:04d}", day, seq[day], SERVICE, AGENCY, AGENCY, "web", status,
            f"Phản ánh {seq[day]}", "Ổ gà trên đường, xe máy dễ ngã.", "12 Lê Lợi, Vinh",
            18.6796, 105.6813, sender, f"{rng.getrandbits(128):032x}", stamp, due, due, due,
            answered, "Đã xử lý." if answered else "", answered if status == "published" else None,
            int(rng.random() < 0.02), stamp, stamp,
        )  # fmt: skip


def seed(database: Path, count: int) -> float:
    """The category and ``count`` feedback in one transaction; the seconds it took. Raw SQL on
    purpose: intake would take hours for a million."""
    started = time.perf_counter()
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        now = to_db_time(datetime.now(UTC))
        conn.execute(
            "INSERT INTO feedback_categories (code, name, agency, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (SERVICE, "Đường hư hỏng", AGENCY, now, now),
        )
        conn.executemany(
            "INSERT INTO feedback (code, day, seq, category, receiving_unit, agency, channel,"
            " status, title, content, address, lat, lon, sender, token_hash, received_at,"
            " classify_due, transfer_due, answer_due, answered_at, answer, published_at, hidden,"
            " created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(count, datetime.now(UTC), random.Random(17)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="data directory to keep (default: temporary)")
    args = parser.parse_args()
    data = args.keep or Path(tempfile.mkdtemp(prefix="open311-bench-"))
    try:
        run("demo", "--data-dir", str(data))
        key = run("open311", "key", "create", "--name", "bench", "--data-dir", str(data)).strip()
        took = seed(data / "lienthong.sqlite3", args.seed)
        print(f"seeded {args.seed:,} feedback in {took:.0f} s")
        server = serve(data, 1)
        try:
            paths = data / "paths.txt"
            env = {"DOSSIER_TOKEN": "-", "DOSSIER_PATHS": str(paths)}
            figures: dict[str, str] = {}
            for name, path in (
                ("GET /healthz", "/healthz"),
                ("GET /open311/v2/requests.json (last 90 days, first 1,000)", V2 + "requests.json"),
                ("GET /open311/v2/requests/{id}.json", V2 + f"requests/PA-{one_day()}-0001.json"),
            ):
                paths.write_text(path + "\n", encoding="utf-8")
                time.sleep(SETTLE)
                result = wrk(server.url, "dossier_read.lua", args.connections, args.seconds, env)
                figures[name] = describe(result)
                print(f"{name}: {figures[name]}", flush=True)
            post_env = {"OPEN311_KEY": key, "OPEN311_SERVICE": SERVICE}
            time.sleep(SETTLE)
            result = wrk(server.url, "open311_post.lua", args.connections, args.seconds, post_env)
            print(f"POST /open311/v2/requests.json: {describe(result)}", flush=True)
            paths.write_text("/healthz\n", encoding="utf-8")
            time.sleep(SETTLE)
            after = wrk(server.url, "dossier_read.lua", args.connections, args.seconds, env)
            print(f"GET /healthz (after the posts): {describe(after)}")
        finally:
            server.stop()
    finally:
        if args.keep is None:
            shutil.rmtree(data, ignore_errors=True)


def one_day() -> str:
    """A day 30 days ago (its feedback 0001 exists in the seeded data)."""
    return (datetime.now(UTC) - timedelta(days=30)).strftime("%y%m%d")


if __name__ == "__main__":
    main()
