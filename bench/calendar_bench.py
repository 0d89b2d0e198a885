"""Benchmark due-date computation (server/calendar/clock.py) on one core.

    .venv/bin/python bench/calendar_bench.py                # 200,000 receipts, 5 rounds
    .venv/bin/python bench/calendar_bench.py --count 1000000

Receipts are random instants over 2025–2027 (any minute, weekends and holidays included),
each with a random processing time of 1–30 working days; the tables are built before timing
(the first call of a year builds it, once per process). Prints due dates per second for:

- ``due_at``: N working days (the clock start, N × 8 working hours later);
- ``due_at_calendar_days``: N calendar days, moved past days off (Civil Code art. 148);
- ``working_time_between``: the working time of a supplement pause, and ``add_working_time``;

against the goal of issue 16 (100,000 due dates a second on one core). The best of the rounds
is kept, so a busy machine disturbs the figure less.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from server.calendar.clock import WorkingClock
from server.calendar.days import WorkingDays, holidays_version
from server.calendar.hours import WorkingHours
from server.calendar.shipped import shipped

GOAL = 100_000
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def best_rate(work: Callable[[], None], count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    clock = WorkingClock(
        WorkingDays(shipped().decisions), WorkingHours.from_text(("07:00-11:30", "13:30-17:00"))
    )
    start = datetime(2025, 1, 1, tzinfo=VN)
    span = 3 * 365 * 24 * 60
    receipts = [start + timedelta(minutes=rng.randrange(span)) for _ in range(args.count)]
    days = [rng.randint(1, 30) for _ in range(args.count)]
    pauses = [timedelta(minutes=rng.randrange(5 * 8 * 60)) for _ in range(args.count)]
    ends = [r + timedelta(hours=rng.randrange(1, 24 * 10)) for r in receipts]
    clock.due_at(start, 1)  # build the tables outside the timing
    clock.due_at(start + timedelta(days=3 * 365 + 60), 30)

    due_at, due_cal = clock.due_at, clock.due_at_calendar_days
    between, add = clock.working_time_between, clock.add_working_time
    pairs = list(zip(receipts, days, strict=True))

    def working() -> None:
        for received, n in pairs:
            due_at(received, n)

    def calendar() -> None:
        for received, n in pairs:
            due_cal(received, n)

    def pause() -> None:
        for a, b in zip(receipts, ends, strict=True):
            between(a, b)

    def move() -> None:
        for a, p in zip(receipts, pauses, strict=True):
            add(a, p)

    print(f"holidays {holidays_version()}, {args.count:,} receipts over 2025–2027, one core")
    print(f"{'operation':<24} {'per second':>12} {'goal':>10} {'ratio':>7}")
    for name, work in (
        ("due_at", working),
        ("due_at_calendar_days", calendar),
        ("working_time_between", pause),
        ("add_working_time", move),
    ):
        rate = best_rate(work, args.count, args.rounds)
        print(f"{name:<24} {rate:>12,.0f} {GOAL:>10,} {rate / GOAL:>6.2f}x")


if __name__ == "__main__":
    main()
