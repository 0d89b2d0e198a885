"""Benchmark the dashboard's queries (server/stats/query.py) on the rollups of a year.

    .venv/bin/python bench/stats_query_bench.py                 # 1,000 agencies, 365 days
    .venv/bin/python bench/stats_query_bench.py --agencies 200 --rounds 5

Fills a fresh database (all migrations) with the daily exchange rollups of ``--agencies``
agencies of one province (``VVV.ZZ.00.H41``) for a year, nine counters a day each, and their
monthly and subtree sums as a rebuild computes them; then times ``stats(...)`` for the year: the
whole tree by month and by level (an admin) and by agency (the province), a district by month and
by agency, one commune by month. Prints the best and the
worst of ``--rounds`` calls of each (ms) against the goal of issue 19 (p99 under 100 ms). The
raw rows are not generated: the rollups are what a query reads (docs/dashboard.md, "Speed").
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from server.stats.figures import level_of, roots_of
from server.stats.query import Viewer, months, stats
from storage.db import Database
from storage.repos.stats import RESUM

GOAL_MS = 100
PROVINCE = "000.00.00.H41"
COUNTERS = ("sent", "received", "without_paper", "signed_valid", "signature_failed")
COUNTERS += ("ack_h1", "ack_h3", "first03_h4", "first03_h5")
START, END = date(2025, 12, 1), date(2026, 11, 30)


def fill(path: Path, agencies: list[str]) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT INTO agencies (organ_id, name, created_at)"
            " VALUES (?, ?, '2025-01-01T00:00:00.000000Z')",
            [(a, a) for a in agencies],
        )
        rng = random.Random(19)
        for offset in range((END - START).days + 1):
            day = (START + timedelta(days=offset)).isoformat()
            conn.executemany(
                "INSERT INTO stats_daily VALUES ('exchange', ?, ?, ?, ?)",
                [(day, a, c, rng.randint(1, 9)) for a in agencies for c in COUNTERS],
            )
        conn.executemany(
            "INSERT INTO stats_tree (agency, root, level) VALUES (?, ?, ?)",
            [(a, root, level_of(a)) for a in agencies for root in (a, *roots_of(a))],
        )
        conn.executemany("INSERT INTO stats_agencies VALUES (?)", [(a,) for a in agencies])
        for month in months(START, END):  # the monthly and subtree sums, as a rebuild does
            values = {"figure": "exchange", "month": month}
            values.update(first=f"{month}-01", last=f"{month}-31")
            for sql, keys in RESUM:
                conn.execute(sql, [values[k] for k in keys])
        conn.commit()
    finally:
        conn.close()


async def run(count: int, rounds: int) -> None:
    others = [f"{v:03d}.{z:02d}.00.H41" for v in range(40) for z in range(1, 26)]
    agencies = [PROVINCE, *others[: count - 1]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meta.db"
        database = await Database.open(path)
        await database.close()
        fill(path, agencies)
        database = await Database.open(path)
        try:
            cases = (
                ("whole tree by month (admin)", Viewer(PROVINCE, admin=True), None, "month"),
                ("whole tree by level (admin)", Viewer(PROVINCE, admin=True), None, "level"),
                ("whole tree by agency", Viewer(PROVINCE), None, "agency"),
                ("a district by month", Viewer(PROVINCE), "000.02.00.H41", "month"),
                ("a district by agency", Viewer(PROVINCE), "000.02.00.H41", "agency"),
                ("one commune by month", Viewer(PROVINCE), agencies[-1], "month"),
            )
            print(f"{len(agencies)} agencies, {len(COUNTERS)} counters, {START}..{END}")
            for label, viewer, agency, group_by in cases:
                times = []
                for _ in range(rounds):
                    started = time.perf_counter()
                    await stats(
                        database,
                        "exchange",
                        start=START,
                        end=END,
                        level=None,
                        agency=agency,
                        group_by=group_by,
                        viewer=viewer,
                    )
                    times.append((time.perf_counter() - started) * 1000)
                worst = max(times)
                verdict = "ok" if worst < GOAL_MS else f"over the {GOAL_MS} ms goal"
                print(f"{label}: best {min(times):.0f} ms, worst {worst:.0f} ms ({verdict})")
        finally:
            await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.agencies, args.rounds))


if __name__ == "__main__":
    main()
