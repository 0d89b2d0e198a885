"""The dashboard page /bang-dieu-khien (issue 19) in real headless Chromium (Debian chromium
driven by Playwright, as test_lookup_browser.py does), on the real axis and its real stats API.

The data is test_api_stats.py's mixed workload (documents signed, tampered and unsigned, acks
and a status 03; dossiers with a supplement and a late end; feedback answered and rated) sent
through the real routes and folded into the rollups. The charts' data points are read back from
the page (``echarts.getInstanceByDom(el).getOption()``) and compared with what the stats API
answers the same query, and with the figures known of that workload.

Screenshots of each chart go to ``LIENTHONG_SCREENSHOTS`` (``docs/screenshots`` to refresh the
committed ones) or else to pytest's tmp_path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, VPCP, XA, Axis
from test_api_stats import (
    axis_config,  # noqa: F401 (the province's office receives feedback)
    dossier_workload,
    exchange_workload,
    feedback_workload,
)

from server.http.appkeys import DATABASE
from server.http.dashboard_page import ECHARTS_SHA256, ECHARTS_VERSION
from server.runtime.tokens import new_token
from server.stats.rollups import fold
from storage.repos.tokens import TokenRepo

pytestmark = pytest.mark.usefixtures("offline_verification")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NAMES = {
    NGHE_AN: "UBND tỉnh Nghệ An",
    SO_TTTT: "Sở Thông tin và Truyền thông Nghệ An",
    XA: "UBND xã Nghi Phong",
}


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


class StatsRequests:
    """The stats API requests the page makes (URL and Authorization header), in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, list[str]], str | None]] = []

    def record(self, request: Any) -> None:
        url = urlsplit(request.url)
        if url.path.startswith("/api/v1/stats/"):
            self.seen.append((url.path, parse_qs(url.query), request.headers.get("authorization")))

    def url(self, figure: str, group_by: str) -> str:
        """The path and query of the page's last request of ``figure`` by ``group_by``."""
        for path, query, _ in reversed(self.seen):
            if path == f"/api/v1/stats/{figure}" and query["group_by"] == [group_by]:
                return path + "?" + "&".join(f"{k}={v[0]}" for k, v in query.items())
        raise AssertionError(f"the page did not ask {figure} by {group_by}")


async def answer(axis: Axis, url: str, token: str | None = None) -> dict[str, Any]:
    """The stats API's answer to ``url`` for ``token`` (default: NGHE_AN's)."""
    resp = await axis.client.get(
        url, headers={"Authorization": f"Bearer {token or axis.tokens[NGHE_AN]}"}
    )
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


def shown(value: float | None, unit: str) -> str:
    """A total as the page's tiles show it (dashboard.js ``shown``), for the small numbers here."""
    if value is None:
        return "—"
    if unit == "share":
        return f"{value * 100:.1f} %".replace(".", ",")
    if unit == "seconds":
        if value < 120:
            return f"{round(value)} giây"
        return f"{round(value / 60)} phút" if value < 7200 else f"{value / 3600:.1f} giờ"
    if unit == "days":
        return f"{value:.1f} ngày".replace(".", ",")
    assert value < 1000  # (no thousands separator to write)
    return str(value)


MONTH_SERIES = {
    "exchange": ["sent", "received", "without_paper", "signed_valid"],
    "dossiers": ["received", "finished", "on_time", "late"],
    "feedback": ["received", "answered", "answered_on_time", "satisfied"],
}

MONTH_POINT = """([id, index]) => {
    const el = document.getElementById(id);
    el.scrollIntoView({block: "center"});
    const chart = echarts.getInstanceByDom(el);
    const [x, y] = chart.convertToPixel({seriesIndex: 0}, [index, 0]);
    const box = el.getBoundingClientRect();
    return [box.left + x + 3, box.top + y - 25];  // in the month's column, above the axis
}"""


async def drill_rows(page: Any, chart: str, index: int, label: str) -> None:
    """Click bar ``index`` of ``chart``; wait for its list (titled with ``label``) to be drawn."""
    await page.evaluate("document.getElementById('drill-title').textContent = ''")
    x, y = await page.evaluate(BAR_POINT, [chart, index])
    await page.mouse.click(x, y)
    await page.locator("#drill-title", has_text=label).wait_for(timeout=10000)
    await page.locator("#drill-rows tr").first.wait_for(timeout=10000)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
async def test_dashboard_in_chromium_on_the_stats_api(axis: Axis, tmp_path: Path) -> None:
    await exchange_workload(axis)
    await dossier_workload(axis)
    await feedback_workload(axis)
    await fold(axis.client.app[DATABASE])
    admin, admin_hash = new_token()
    async with axis.client.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(OUTSIDER, admin_hash, label="admin", roles=("admin",))
    playwright_api = pytest.importorskip("playwright.async_api")
    token = axis.tokens[NGHE_AN]
    requests = StatsRequests()
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
            page.on("request", requests.record)
            await page.goto(str(axis.client.make_url("/bang-dieu-khien")))
            assert "Bảng điều khiển" in await page.title()
            assert await page.locator("#board").is_hidden()

            # a wrong token: refused by /api/v1/me, said on the login box
            await page.fill("#token", "lt_not-a-token")
            await page.click("#login-btn")
            await page.locator("#login-msg", has_text="không hợp lệ").wait_for()
            assert await page.evaluate("sessionStorage.length") == 0
            assert await page.locator("#board").is_hidden()
            requests.seen.clear()  # (the figures are asked beside /api/v1/me, and were refused)

            await page.fill("#token", token)
            await page.click("#login-btn")
            await page.locator("body[data-loaded='1']").wait_for(timeout=15000)
            assert await page.inner_text("#who") == f"{NAMES[NGHE_AN]} ({NGHE_AN})"
            assert await page.evaluate("Object.values({...sessionStorage})") == [token]
            assert token not in page.url and await page.input_value("#token") == ""
            assert len(requests.seen) == 8  # 3 figures x (month, agency), procedure, category
            for _, query, authorization in requests.seen:  # in a header, never in the URL
                assert authorization == f"Bearer {token}" and token not in str(query)

            for figure, keys in MONTH_SERIES.items():
                month = await answer(axis, requests.url(figure, "month"))
                drawn = await page.evaluate(SERIES, f"chart-{figure}-month")
                assert [s["id"] for s in drawn] == keys
                for series, key in zip(drawn, keys, strict=True):
                    assert series["data"] == [r["values"][key] for r in month["rows"]]
                labels = {c["key"]: c["label"] for c in month["columns"]}
                assert [s["name"] for s in drawn] == [labels[k] for k in keys]
                assert await page.evaluate(
                    "(id) => echarts.getInstanceByDom(document.getElementById(id))"
                    ".getOption().xAxis[0].data",
                    f"chart-{figure}-month",
                ) == [r["label"] for r in month["rows"]]
                # the tiles: every column's total, formatted by its unit
                tiles = await page.locator(f"#kpis-{figure} div").all_inner_texts()
                assert [t.split("\n")[0] for t in tiles] == [c["label"] for c in month["columns"]]
                for tile, column in zip(tiles, month["columns"], strict=True):
                    assert tile.split("\n")[1] == shown(
                        month["totals"][column["key"]], column["unit"]
                    )
                by_agency = await answer(axis, requests.url(figure, "agency"))
                [bars] = await page.evaluate(SERIES, f"chart-{figure}-bar")
                assert bars["data"] == [r["values"][keys[0]] for r in by_agency["rows"]]
                for kind in ("month", "bar"):
                    await page.locator(f"#chart-{figure}-{kind}").screenshot(
                        path=str(shots / f"dashboard-{figure}-{kind}.png")
                    )
            # the groupings of one figure: dossiers' average time per procedure, feedback per
            # category
            for figure, group_by, column in (
                ("dossiers", "procedure", "avg_processing_days"),
                ("feedback", "category", "received"),
            ):
                grouped = await answer(axis, requests.url(figure, group_by))
                assert grouped["rows"], (figure, group_by)
                [bars] = await page.evaluate(SERIES, f"chart-{figure}-{group_by}")
                assert bars["data"] == [r["values"][column] for r in grouped["rows"]]
                await page.locator(f"#chart-{figure}-{group_by}").screenshot(
                    path=str(shots / f"dashboard-{figure}-{group_by}.png")
                )

            # what the workload is known to hold, as NGHE_AN sees it (test_api_stats.py)
            exchange = await answer(axis, requests.url("exchange", "agency"))
            agencies = [r["key"] for r in exchange["rows"]]
            assert sorted(agencies) == sorted(NAMES)
            [bars] = await page.evaluate(SERIES, "chart-exchange-bar")
            assert dict(zip(agencies, bars["data"], strict=True)) == {
                NGHE_AN: 0,
                SO_TTTT: 1,
                XA: 1,
            }
            dossiers = {
                s["id"]: s["data"] for s in await page.evaluate(SERIES, "chart-dossiers-month")
            }
            assert sum(dossiers["received"]) == 3 and sum(dossiers["finished"]) == 2
            assert sum(dossiers["on_time"]) == 1 and sum(dossiers["late"]) == 1

            # the ranking lists the three agencies, ranked by a rate the API gave
            ranking = await page.locator("#ranking-rows tr").all_inner_texts()
            assert sorted(r.split("\t")[1] for r in ranking) == sorted(NAMES.values())
            await page.select_option("#rank-by", "dossiers:on_time_rate")
            assert len(await page.locator("#ranking-rows tr").all_inner_texts()) == 3
            assert await page.locator("#ranking-more").is_hidden()  # (50 shown at a time)

            # drill-down: a click on the Sở's bar opens the document it sent
            x, y = await page.evaluate(BAR_POINT, ["chart-exchange-bar", agencies.index(SO_TTTT)])
            await page.mouse.click(x, y)
            await page.locator("#drill").wait_for(state="visible", timeout=10000)
            path, query, _ = requests.seen[-1]
            assert path == "/api/v1/stats/exchange/items"
            assert query["agency"] == [SO_TTTT] and query["column"] == ["sent"]
            # the bar counts the Sở alone (not the xã under it): so does its list
            assert query["scope"] == ["own"]
            items = await answer(
                axis, f"{path}?" + "&".join(f"{k}={v[0]}" for k, v in query.items())
            )
            [item] = items["items"]
            assert item["agency"] == SO_TTTT
            assert NAMES[SO_TTTT] in await page.inner_text("#drill-title")
            # the list is drawn when its items have come (the panel shows before)
            await page.locator("#drill-rows tr").first.wait_for(timeout=10000)
            [row] = await page.locator("#drill-rows tr").all_inner_texts()
            assert item["document_id"] in row and SO_TTTT in row

            # a click in a month of the dossiers' line chart lists that month's dossiers received
            month = await answer(axis, requests.url("dossiers", "month"))
            received = [r["values"]["received"] for r in month["rows"]]
            index = received.index(max(received))
            x, y = await page.evaluate(MONTH_POINT, ["chart-dossiers-month", index])
            await page.mouse.click(x, y)
            label = month["rows"][index]["label"]
            await page.locator("#drill-title", has_text=label).wait_for(timeout=10000)
            await page.locator("#drill-rows tr").nth(received[index] - 1).wait_for()
            path, query, _ = requests.seen[-1]
            assert path == "/api/v1/stats/dossiers/items" and query["column"] == ["received"]
            key = month["rows"][index]["key"]
            assert query["from"] == [f"{key}-01"] and query["to"][0].startswith(key)
            assert "agency" not in query
            assert await page.locator("#drill-rows tr").count() == received[index]
            await page.screenshot(path=str(shots / "dashboard-page.png"), full_page=True)

            # a bar per category lists the feedback it counts: as many rows as the bar
            by_category = await answer(axis, requests.url("feedback", "category"))
            first = by_category["rows"][0]
            await drill_rows(page, "chart-feedback-category", 0, first["label"])
            path, query, _ = requests.seen[-1]
            assert path == "/api/v1/stats/feedback/items"
            assert query["category"] == [first["key"]] and query["column"] == ["received"]
            assert await page.locator("#drill-rows tr").count() == first["values"]["received"]

            # the CSV of a figure, as the bars group it: the API's bytes, under the API's name
            async with page.expect_download() as download_info:
                await page.click("button.csv[data-figure='dossiers']")
            download = await download_info.value
            csv_url = requests.url("dossiers", "agency")  # the download's request, format=csv
            assert "format=csv" in csv_url
            resp = await axis.get(csv_url, NGHE_AN)
            assert Path(await download.path()).read_bytes() == await resp.read()
            assert download.suggested_filename.startswith("thong-ke-dossiers-")
            assert (await resp.read()).startswith(b"\xef\xbb\xbf")

            # the level filter and the bars per level reach the API
            await page.select_option("#level", "commune")
            await page.select_option("#bar-group", "level")
            await page.click("#apply")
            await page.locator("body[data-loaded='2']").wait_for()
            by_level = await answer(axis, requests.url("dossiers", "level"))
            assert parse_qs(urlsplit(requests.url("dossiers", "level")).query)["level"] == [
                "commune"
            ]
            [bars] = await page.evaluate(SERIES, "chart-dossiers-bar")
            assert bars["data"] == [r["values"]["received"] for r in by_level["rows"]]
            [bars] = await page.evaluate(SERIES, "chart-exchange-bar")
            assert bars["data"] == [1]  # the xã's one document, the only commune
            # a bar per level lists that level's records: the xã's document
            await drill_rows(page, "chart-exchange-bar", 0, "Xã")
            path, query, _ = requests.seen[-1]
            assert path == "/api/v1/stats/exchange/items" and query["level"] == ["commune"]
            [row] = await page.locator("#drill-rows tr").all_inner_texts()
            assert XA in row
            asked = len(requests.seen)

            # a period that ends before it starts is said, not asked
            await page.fill("#from", "2026-12")
            await page.fill("#to", "2026-01")
            await page.click("#apply")
            await page.locator("#message", has_text="không sau tháng kết thúc").wait_for()
            assert len(requests.seen) == asked

            await page.click("#logout")
            assert await page.evaluate("sessionStorage.length") == 0
            assert await page.locator("#login").is_visible()

            # an admin token (no /api/v1/me) sees every agency: VPCP's document too
            await page.fill("#token", admin)
            await page.click("#login-btn")
            await page.locator("body[data-loaded='3']").wait_for(timeout=15000)
            assert await page.inner_text("#who") == "Quản trị viên (mọi cơ quan)"
            everyone = await answer(axis, requests.url("exchange", "agency"), admin)
            assert VPCP in [r["key"] for r in everyone["rows"]]
            [bars] = await page.evaluate(SERIES, "chart-exchange-bar")
            assert bars["data"] == [r["values"]["sent"] for r in everyone["rows"]]
            assert violations == []
        finally:
            await browser.close()
