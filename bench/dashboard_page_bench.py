"""The dashboard page's first render in headless Chromium (issue 19: under 1 s).

A real ``lienthong serve`` (bench/axis_process.py) serves the page, its scripts (ECharts from
the axis) and ``/api/v1/me``; Debian's chromium (Playwright) opens ``/bang-dieu-khien`` with a
demo token already in ``sessionStorage``, as after the login, and the figure is the time from
the navigation's start to the page's ``performance.mark("dashboard-drawn")``: every chart drawn
and the ranking filled. The first run has a cold cache (ECharts' 1.1 MB fetched); the others
reuse the browser's cache, as an officer opening the page again does.

The stats answers are those of ``--agencies`` agencies over ``--months`` months. Until the stats
API (branch ``stats-core``) is merged here, they are answered by a STAND-IN of its JSON shape
through Playwright's request routing (a Python round trip per answer, included in the figure);
the API's own latency is bench/dashboard_bench.py's.

    .venv/bin/python bench/dashboard_page_bench.py [--agencies 1000] [--months 12] [--runs 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from axis_process import start_axis
from playwright.async_api import Route, async_playwright

GOAL_MS = 1000.0
COLUMNS = {
    "exchange": [
        "sent",
        "received",
        "without_paper",
        "signed_valid",
        "share_without_paper",
        "share_signed_valid",
    ],
    "dossiers": ["received", "finished", "on_time", "late", "on_time_rate", "avg_processing_days"],
    "feedback": [
        "received",
        "answered",
        "answered_on_time",
        "satisfied",
        "on_time_rate",
        "satisfaction_rate",
    ],
}


def stand_in_answers(agencies: int, months: int) -> dict[tuple[str, str], bytes]:
    """STAND-IN answers (api19 shape) per (figure, group_by), made up but of the real size."""
    rng = random.Random(19)
    answers = {}
    for figure, keys in COLUMNS.items():
        columns = [
            {"key": k, "label": k, "unit": "share" if "share" in k or "rate" in k else "count"}
            for k in keys
        ]

        def values(keys: list[str] = keys) -> dict[str, Any]:
            return {
                k: rng.random() if "share" in k or "rate" in k else rng.randrange(500) for k in keys
            }

        month_rows = [
            {"key": f"2026-{m:02d}", "label": f"{m:02d}/2026", "values": values()}
            for m in range(1, months + 1)
        ]
        agency_rows = [
            {"key": f"{i:03d}.00.00.H41", "label": f"Cơ quan số {i}", "values": values()}
            for i in range(agencies)
        ]
        # the groupings one figure has alone: 60 procedures, 25 feedback categories
        own = {"dossiers": ("procedure", 60), "feedback": ("category", 25)}.get(figure)
        own_rows = (
            []
            if own is None
            else [
                {"key": f"{own[0]}-{i}", "label": f"{own[0]} {i}", "values": values()}
                for i in range(own[1])
            ]
        )
        groupings = [("month", month_rows), ("agency", agency_rows)]
        if own is not None:
            groupings.append((own[0], own_rows))
        for group_by, rows in groupings:
            answers[figure, group_by] = json.dumps(
                {
                    "figure": figure,
                    "from": "2026-01-01",
                    "to": "2026-12-31",
                    "group_by": group_by,
                    "level": None,
                    "agency": "000.00.00.H41",
                    "columns": columns,
                    "rows": rows,
                    "totals": values(),
                }
            ).encode()
    return answers


async def measure(
    url: str, token: str, answers: dict[tuple[str, str], bytes], runs: int
) -> list[float]:
    """Milliseconds from navigation start to the page's charts drawn, per run."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")

    async def stats(route: Route) -> None:
        parsed = urlsplit(route.request.url)
        figure = parsed.path.rsplit("/", 1)[1]
        group_by = parse_qs(parsed.query).get("group_by", ["month"])[0]
        await route.fulfill(
            status=200, content_type="application/json", body=answers[figure, group_by]
        )

    times = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            await context.add_init_script(
                f"sessionStorage.setItem('lienthong.dashboard.token', {json.dumps(token)})"
            )
            await context.route("**/api/v1/stats/**", stats)
            for _ in range(runs):
                page = await context.new_page()
                await page.goto(url + "/bang-dieu-khien")
                await page.locator("body[data-loaded='1']").wait_for(timeout=30000)
                times.append(
                    await page.evaluate(
                        "performance.getEntriesByName('dashboard-drawn')[0].startTime"
                    )
                )
                await page.close()
        finally:
            await browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    answers = stand_in_answers(args.agencies, args.months)
    with tempfile.TemporaryDirectory() as tmp:
        axis = start_axis(Path(tmp) / "data")
        try:
            token = next(iter(axis.tokens.values()))
            times = asyncio.run(measure(axis.url, token, answers, args.runs))
        finally:
            axis.stop()
    cold, warm = times[0], times[1:]
    print(
        f"dashboard first render, {args.agencies} agencies x {args.months} months "
        "(stats answered by the STAND-IN):"
    )
    print(f"  cold cache: {cold:.0f} ms")
    if warm:
        print(
            f"  warm cache: median {statistics.median(warm):.0f} ms, max {max(warm):.0f} ms "
            f"({len(warm)} runs)"
        )
    worst = max(times)
    print(
        f"  goal < {GOAL_MS:.0f} ms: {'met' if worst < GOAL_MS else 'NOT met'} "
        f"(worst {worst:.0f} ms, ratio {worst / GOAL_MS:.2f})"
    )


if __name__ == "__main__":
    main()
