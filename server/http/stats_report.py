"""GET /api/v1/stats/report.xlsx?month=YYYY-MM[&agency=ORGANID]: the dashboard's monthly
workbook (server/stats/report.py) for the caller's agencies (issue 19, docs/dashboard.md).

Registered before server/http/stats.py, whose ``/api/v1/stats/{figure}`` would take the name.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.appkeys import DATABASE
from server.http.openapi_parts import NOT_FOUND, UNAUTHORIZED
from server.http.openapi_parts import query_param as qp
from server.http.stats import BAD_STATS_QUERY, viewer_of
from server.http.stats import _agency as agency_param
from server.stats.errors import InvalidStatsQuery
from server.stats.report import monthly_report, parse_month

routes = web.RouteTableDef()

MONTH = {"type": "string", "pattern": r"^\d{4}-\d{2}$"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@routes.get("/api/v1/stats/report.xlsx")
async def get_monthly_report(request: web.Request) -> web.Response:
    """The monthly workbook: one sheet per figure group, by agency and by month."""
    month = request.query.get("month")
    if month is None:
        raise InvalidStatsQuery("month", "is required: the month YYYY-MM")
    parse_month(month)
    data = await monthly_report(
        request.app[DATABASE], month, agency=agency_param(request), viewer=viewer_of(request)
    )
    return web.Response(
        body=data,
        content_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="bao-cao-thang-{month}.xlsx"'},
    )


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the monthly report (merged by server/http/openapi.py)."""
    return {
        "/api/v1/stats/report.xlsx": {
            "get": {
                "summary": "The dashboard's monthly workbook (.xlsx): exchange, dossiers, feedback",
                "parameters": [
                    {
                        **qp("month", {"type": "string", "pattern": r"^\d{4}-\d{2}$"}),
                        "required": True,
                    },
                    qp(
                        "agency", None, "An OrganId: it and those under it (default: the caller's)."
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "One sheet per figure group, by agency and by month",
                        "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "400": BAD_STATS_QUERY,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        }
    }
