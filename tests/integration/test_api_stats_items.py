"""The drill-down (`GET /api/v1/stats/{figure}/items`, issue 19) lists exactly what the clicked
cell counts: for every count column of every figure, the records listed with the cell's own
filters are as many as the cell's value, whichever grouping drew it (per agency: the agency
alone, `scope=own`; per level: `level`; per procedure and per category: `procedure`,
`category`; per month: that month over the subtree). The workload is test_api_stats.py's mixed
one through the real routes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from axis_client import NGHE_AN, SO_TTTT, XA, Axis
from test_api_dossiers import VN
from test_api_stats import axis_config as axis_config  # the province receives the feedback
from test_api_stats import dossier_workload, exchange_workload, feedback_workload
from test_dossier_transfers import call

from server.http.appkeys import DATABASE
from server.stats.rollups import fold

pytestmark = pytest.mark.usefixtures("offline_verification")

NO_RECORDS = {"agencies_connected", "agencies_active"}
# The grouping each figure has alone, and the items filter that picks one of its rows.
OWN_GROUP = {"exchange": None, "dossiers": "procedure", "feedback": "category"}


def period() -> tuple[str, str]:
    today = datetime.now(VN).date()
    return (today - timedelta(days=40)).isoformat(), today.isoformat()


def month_bounds(key: str, start: str, end: str) -> tuple[str, str]:
    """The days of month ``key`` (YYYY-MM) within ``start..end``."""
    year, month = map(int, key.split("-"))
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return max(first.isoformat(), start), min((following - timedelta(days=1)).isoformat(), end)


def cell_filters(group_by: str, key: str, start: str, end: str) -> dict[str, str]:
    """The items filters that list what the row ``key`` of a ``group_by`` answer counts."""
    if group_by == "agency":
        return {"from": start, "to": end, "agency": key, "scope": "own"}
    if group_by == "month":
        first, last = month_bounds(key, start, end)
        return {"from": first, "to": last}
    return {"from": start, "to": end, group_by: key}


async def listed(axis: Axis, figure: str, column: str, filters: dict[str, str]) -> int:
    query = urlencode({**filters, "column": column, "limit": "500"})
    answer = await call(axis, "GET", f"/api/v1/stats/{figure}/items?{query}", NGHE_AN, 200)
    assert answer["next"] is None
    return len(answer["items"])


@pytest.fixture
async def workload(axis: Axis) -> Axis:
    await exchange_workload(axis)
    await dossier_workload(axis)
    await feedback_workload(axis)
    await fold(axis.client.app[DATABASE])
    return axis


async def compare_cells(
    axis: Axis, figure: str, group_by: str, level: str | None, compared: dict[str, int]
) -> None:
    """Every count cell of ``figure`` by ``group_by`` (at ``level``) against its items."""
    start, end = period()
    chosen = {} if level is None else {"level": level}
    query = urlencode({"from": start, "to": end, "group_by": group_by, **chosen})
    table: dict[str, Any] = await call(axis, "GET", f"/api/v1/stats/{figure}?{query}", NGHE_AN, 200)
    counted = [
        c["key"] for c in table["columns"] if c["unit"] == "count" and c["key"] not in NO_RECORDS
    ]
    name = f"{figure}:{group_by}:{level}"
    for row in table["rows"]:
        filters = {**cell_filters(group_by, row["key"], start, end), **chosen}
        for column in counted:
            found = await listed(axis, figure, column, filters)
            assert found == row["values"][column], (name, row["key"], column)
            compared[name] = compared.get(name, 0) + found


async def test_every_count_cell_lists_as_many_items_as_it_counts(workload: Axis) -> None:
    compared: dict[str, int] = {}
    for figure, own in OWN_GROUP.items():
        for group_by in ("agency", "level", "month", *([own] if own else [])):
            await compare_cells(workload, figure, group_by, None, compared)
    # not vacuous: every grouping of every figure had records to compare
    assert len(compared) == 11 and all(compared.values()), compared


async def test_with_the_level_filter_too(workload: Axis) -> None:
    """The page's level filter: the months and the agencies at one level (SO_TTTT, a district,
    sent and received documents and is the dossiers' unit of one procedure)."""
    compared: dict[str, int] = {}
    for figure in ("exchange", "dossiers"):
        for group_by in ("month", "agency"):
            await compare_cells(workload, figure, group_by, "district", compared)
    assert len(compared) == 4 and all(compared.values()), compared


async def test_an_agency_s_own_items_leave_out_those_under_it(workload: Axis) -> None:
    axis = workload
    start, end = period()
    # NGHE_AN received VPCP's document and XA's; under it SO_TTTT received VPCP's too, and XA
    # SO_TTTT's.
    own = await listed(
        axis, "exchange", "received", {"from": start, "to": end, "agency": NGHE_AN, "scope": "own"}
    )
    subtree = await listed(
        axis, "exchange", "received", {"from": start, "to": end, "agency": NGHE_AN}
    )
    assert (own, subtree) == (2, 4)
    # XA sent one document; listing its subtree or itself is the same (nobody is under it)
    for scope in ("own", "subtree"):
        filters = {"from": start, "to": end, "agency": XA, "scope": scope}
        assert await listed(axis, "exchange", "sent", filters) == 1
    # the level filter: SO_TTTT is the only district-level agency here
    district = {"from": start, "to": end, "level": "district"}
    sent = await call(
        axis, "GET", f"/api/v1/stats/exchange/items?{urlencode(district)}&column=sent", NGHE_AN, 200
    )
    assert {i["agency"] for i in sent["items"]} == {SO_TTTT}
