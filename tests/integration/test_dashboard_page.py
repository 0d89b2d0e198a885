"""The dashboard page /bang-dieu-khien (issue 19) in real headless Chromium (Debian chromium
driven by Playwright, as test_lookup_browser.py does), on the real axis.

STAND-IN: the stats API (``GET /api/v1/stats/...``, /tmp/h/api19.md's shape) is being built on
another branch (``stats-core``). Until it lands here, the browser's requests to it are answered by
``StandInStats`` below, *in this test only* (Playwright's request routing); the page itself,
``/api/v1/me`` (the login), the static files and the CSP are the real axis's. The charts' data
points are read back from the page (``echarts.getInstanceByDom(el).getOption()``) and compared
with what the stand-in answered.

Screenshots of each chart go to ``LIENTHONG_SCREENSHOTS`` (``docs/screenshots`` to refresh the
committed ones) or else to pytest's tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from axis_client import NGHE_AN, SO_TTTT, XA, Axis

from server.http.dashboard_page import ECHARTS_SHA256, ECHARTS_VERSION

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

MONTHS = ["2026-09", "2026-10", "2026-11"]
AGENCIES = [
    (NGHE_AN, "UBND tỉnh Nghệ An", "province"),
    (SO_TTTT, "Sở Thông tin và Truyền thông Nghệ An", "province"),
    (XA, "UBND xã Nghi Phong", "commune"),
]
COLUMNS = {
    "exchange": [
        ("sent", "Văn bản gửi đi", "count"),
        ("received", "Văn bản nhận", "count"),
        ("without_paper", "Gửi không kèm bản giấy", "count"),
        ("share_without_paper", "Tỷ lệ không kèm bản giấy", "share"),
        ("signed_valid", "Có chữ ký số hợp lệ", "count"),
        ("share_signed_valid", "Tỷ lệ ký số hợp lệ", "share"),
    ],
    "dossiers": [
        ("received", "Hồ sơ tiếp nhận", "count"),
        ("finished", "Hồ sơ đã giải quyết", "count"),
        ("on_time", "Giải quyết đúng hạn", "count"),
        ("on_time_rate", "Tỷ lệ đúng hạn", "share"),
        ("late", "Giải quyết trễ hạn", "count"),
    ],
    "feedback": [
        ("received", "Phản ánh tiếp nhận", "count"),
        ("answered", "Đã trả lời", "count"),
        ("answered_on_time", "Trả lời đúng hạn", "count"),
        ("on_time_rate", "Tỷ lệ trả lời đúng hạn", "share"),
        ("satisfied", "Hài lòng", "count"),
        ("satisfaction_rate", "Tỷ lệ hài lòng", "share"),
    ],
}
# counts per (agency, month) of the small known data set: the stand-in sums them per group
COUNTS: dict[str, dict[tuple[str, str], dict[str, int]]] = {
    "exchange": {
        (NGHE_AN, "2026-09"): {"sent": 12, "received": 30, "without_paper": 11, "signed_valid": 10},
        (NGHE_AN, "2026-10"): {"sent": 15, "received": 28, "without_paper": 15, "signed_valid": 14},
        (NGHE_AN, "2026-11"): {"sent": 9, "received": 25, "without_paper": 9, "signed_valid": 9},
        (SO_TTTT, "2026-10"): {"sent": 20, "received": 8, "without_paper": 16, "signed_valid": 18},
        (SO_TTTT, "2026-11"): {"sent": 22, "received": 6, "without_paper": 20, "signed_valid": 22},
        (XA, "2026-11"): {"sent": 4, "received": 2, "without_paper": 1, "signed_valid": 2},
    },
    "dossiers": {
        (NGHE_AN, "2026-10"): {"received": 40, "finished": 35, "on_time": 33, "late": 2},
        (SO_TTTT, "2026-09"): {"received": 18, "finished": 10, "on_time": 10, "late": 0},
        (SO_TTTT, "2026-11"): {"received": 25, "finished": 20, "on_time": 17, "late": 3},
        (XA, "2026-11"): {"received": 7, "finished": 4, "on_time": 2, "late": 2},
    },
    "feedback": {
        (NGHE_AN, "2026-09"): {"received": 5, "answered": 4, "answered_on_time": 4, "satisfied": 3},
        (SO_TTTT, "2026-11"): {"received": 9, "answered": 8, "answered_on_time": 6, "satisfied": 5},
        (XA, "2026-10"): {"received": 3, "answered": 1, "answered_on_time": 0, "satisfied": 0},
    },
}
# the share columns: (share, numerator, denominator)
SHARES = {
    "exchange": [
        ("share_without_paper", "without_paper", "sent"),
        ("share_signed_valid", "signed_valid", "sent"),
    ],
    "dossiers": [("on_time_rate", "on_time", "finished")],
    "feedback": [
        ("on_time_rate", "answered_on_time", "answered"),
        ("satisfaction_rate", "satisfied", "answered"),
    ],
}


class StandInStats:
    """STAND-IN for ``GET /api/v1/stats/{figure}`` and ``.../items`` (api19 shape) until the
    ``stats-core`` branch's route lands; records what the page asked and with which header."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.asked: list[tuple[str, dict[str, list[str]]]] = []

    def values(self, figure: str, counts: list[dict[str, int]]) -> dict[str, Any]:
        keys = [c[0] for c in COLUMNS[figure] if c[2] == "count"]
        total = {k: sum(c.get(k, 0) for c in counts) for k in keys}
        for share, num, den in SHARES[figure]:
            total[share] = round(total[num] / total[den], 4) if total[den] else None
        return total

    def table(self, figure: str, group_by: str, level: str | None) -> dict[str, Any]:
        levels = {a: lv for a, _, lv in AGENCIES}
        cells = {k: v for k, v in COUNTS[figure].items() if level in (None, levels[k[0]])}
        if group_by == "month":
            groups = [
                (m, f"{m[5:]}/{m[:4]}", [v for (_, mm), v in cells.items() if mm == m])
                for m in MONTHS
            ]
        elif group_by == "agency":
            groups = [
                (a, name, [v for (aa, _), v in cells.items() if aa == a])
                for a, name, lv in AGENCIES
                if level in (None, lv)
            ]
        else:
            groups = [
                (lv, lv, [v for (aa, _), v in cells.items() if levels[aa] == lv])
                for lv in ("province", "commune")
                if level in (None, lv)
            ]
        rows = [
            {"key": k, "label": lab, "values": self.values(figure, vs)} for k, lab, vs in groups
        ]
        return {
            "figure": figure,
            "from": "2026-09-01",
            "to": "2026-11-30",
            "group_by": group_by,
            "level": level,
            "agency": NGHE_AN,
            "columns": [{"key": k, "label": lab, "unit": u} for k, lab, u in COLUMNS[figure]],
            "rows": rows,
            "totals": self.values(figure, list(cells.values())),
        }

    async def handle(self, route: Any) -> None:
        request = route.request
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        self.asked.append((url.path, query))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            await route.fulfill(status=401, content_type="application/problem+json", body="{}")
            return
        parts = url.path.split("/")  # ['', 'api', 'v1', 'stats', figure, ('items')]
        if len(parts) == 6:
            agency, column = query["agency"][0], query["column"][0]
            body: dict[str, Any] = {
                "items": [
                    {
                        "code": f"{agency}-{column}-{i}",
                        "agency": agency,
                        "date": "2026-11-0" + str(i),
                    }
                    for i in (1, 2)
                ],
                "next": None,
            }
        else:
            level = query.get("level", [None])[0]
            body = self.table(parts[4], query.get("group_by", ["month"])[0], level)
        await route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


async def test_static_files_are_the_vendored_ones_cached_for_a_year(axis: Axis) -> None:
    resp = await axis.get(f"/static/vendor/echarts/echarts.min.js?v={ECHARTS_VERSION}", None)
    assert resp.status == 200
    assert hashlib.sha256(await resp.read()).hexdigest() == ECHARTS_SHA256
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.content_type == "text/javascript"
    page = await axis.get("/bang-dieu-khien", None)  # no token needed: the page holds no data
    html = await page.text()
    assert page.status == 200 and f"echarts.min.js?v={ECHARTS_VERSION}" in html
    [script_url] = [u for u in html.split('"') if u.startswith("/static/dashboard.js?v=")]
    script = await axis.get(script_url, None)
    assert script.status == 200 and "getInstanceByDom" not in await script.text()
    assert (await axis.get("/static/dashboard.html", None)).status == 404
    assert (await axis.get("/static/vendor/echarts/LICENSE", None)).status == 404


def _shots_dir(tmp_path: Path) -> Path:
    target = os.environ.get("LIENTHONG_SCREENSHOTS")
    path = Path(target) if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


SERIES = "(id) => echarts.getInstanceByDom(document.getElementById(id)).getOption().series"
BAR_POINT = """([id, index]) => {
    const el = document.getElementById(id);
    el.scrollIntoView({block: "center"});  // a mouse click lands only inside the viewport
    const chart = echarts.getInstanceByDom(el);
    const value = chart.getOption().series[0].data[index];
    const [x, y] = chart.convertToPixel({seriesIndex: 0}, [index, value / 2]);
    const box = el.getBoundingClientRect();
    return [box.left + x, box.top + y];
}"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
async def test_dashboard_in_chromium_with_stand_in_stats(axis: Axis, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    token = axis.tokens[NGHE_AN]
    stats = StandInStats(token)
    shots = _shots_dir(tmp_path)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            await page.route("**/api/v1/stats/**", stats.handle)
            await page.goto(str(axis.client.make_url("/bang-dieu-khien")))
            assert "Bảng điều khiển" in await page.title()
            assert await page.locator("#board").is_hidden()

            # a wrong token: refused by the real /api/v1/me, said on the login box
            await page.fill("#token", "lt_not-a-token")
            await page.click("#login-btn")
            await page.locator("#login-msg", has_text="không hợp lệ").wait_for()
            assert await page.evaluate("sessionStorage.length") == 0
            assert await page.locator("#board").is_hidden()
            stats.asked.clear()  # (the figures are asked beside /api/v1/me, and were refused)

            await page.fill("#token", token)
            await page.click("#login-btn")
            await page.locator("body[data-loaded='1']").wait_for(timeout=15000)
            assert await page.inner_text("#who") == f"UBND tỉnh Nghệ An ({NGHE_AN})"
            assert await page.evaluate("Object.values({...sessionStorage})") == [token]
            assert token not in page.url and await page.input_value("#token") == ""
            asked = [p for p, _ in stats.asked]
            assert all(token not in json.dumps(q) for _, q in stats.asked)  # header, not URL
            assert len(asked) == 6  # 3 figures x (month, agency)

            for figure, keys in (
                ("exchange", ["sent", "received", "without_paper", "signed_valid"]),
                ("dossiers", ["received", "finished", "on_time", "late"]),
                ("feedback", ["received", "answered", "answered_on_time", "satisfied"]),
            ):
                month = stats.table(figure, "month", None)
                drawn = await page.evaluate(SERIES, f"chart-{figure}-month")
                assert [s["id"] for s in drawn] == keys
                for series, key in zip(drawn, keys, strict=True):
                    assert series["data"] == [r["values"][key] for r in month["rows"]]
                labels = {c["key"]: c["label"] for c in month["columns"]}
                assert [s["name"] for s in drawn] == [labels[k] for k in keys]
                by_agency = stats.table(figure, "agency", None)
                [bars] = await page.evaluate(SERIES, f"chart-{figure}-bar")
                assert bars["data"] == [r["values"][keys[0]] for r in by_agency["rows"]]
                for kind in ("month", "bar"):
                    await page.locator(f"#chart-{figure}-{kind}").screenshot(
                        path=str(shots / f"dashboard-{figure}-{kind}.png")
                    )
            # exchange by agency: 36, 42, 4 documents sent
            assert (await page.evaluate(SERIES, "chart-exchange-bar"))[0]["data"] == [36, 42, 4]

            # the ranking, by the share sent without paper: Nghệ An 35/36, the Sở 36/42, the xã 1/4
            ranking = await page.locator("#ranking-rows tr").all_inner_texts()
            assert [r.split("\t")[:2] for r in ranking] == [
                ["1", "UBND tỉnh Nghệ An"],
                ["2", "Sở Thông tin và Truyền thông Nghệ An"],
                ["3", "UBND xã Nghi Phong"],
            ]
            assert "97,2 %" in ranking[0] and "85,7 %" in ranking[1] and "25,0 %" in ranking[2]
            await page.select_option("#rank-by", "dossiers:on_time_rate")
            first = await page.locator("#ranking-rows tr").first.inner_text()
            assert first.startswith("1\tUBND tỉnh Nghệ An")  # 33/35 before 27/30 and 2/4

            # drill-down: a click on the Sở's bar opens the documents it sent
            x, y = await page.evaluate(BAR_POINT, ["chart-exchange-bar", 1])
            await page.mouse.click(x, y)
            await page.locator("#drill").wait_for(state="visible", timeout=10000)
            path, query = stats.asked[-1]
            assert path == "/api/v1/stats/exchange/items"
            assert query["agency"] == [SO_TTTT] and query["column"] == ["sent"]
            assert query["from"][0].endswith("-01") and query["limit"] == ["50"]
            assert "Sở Thông tin" in await page.inner_text("#drill-title")
            assert await page.locator("#drill-rows tr").count() == 2
            drilled = await page.locator("#drill-rows tr").all_inner_texts()
            assert drilled[0].split("\t") == [f"{SO_TTTT}-sent-1", SO_TTTT, "01/11/2026"]
            await page.screenshot(path=str(shots / "dashboard-page.png"), full_page=True)

            # the period picker and the level filter reach the API
            await page.fill("#from", "2026-10")
            await page.fill("#to", "2026-11")
            await page.select_option("#level", "commune")
            await page.select_option("#bar-group", "level")
            await page.click("#apply")
            await page.locator("body[data-loaded='2']").wait_for()
            _, query = stats.asked[-1]
            assert query["from"] == ["2026-10-01"] and query["to"] == ["2026-11-30"]
            assert query["level"] == ["commune"]
            [bars] = await page.evaluate(SERIES, "chart-dossiers-bar")
            assert bars["data"] == [7]  # the xã's dossiers, the only commune

            await page.click("#logout")
            assert await page.evaluate("sessionStorage.length") == 0
            assert await page.locator("#login").is_visible()
            assert violations == []
        finally:
            await browser.close()
