"""GET /api/v1/stats/{figure} (JSON or CSV) and its drill-down ``/items``: the dashboard's
figures (issue 19, docs/dashboard.md), from the rollups of server/stats/."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from aiohttp import web

from server.http.appkeys import DATABASE
from server.http.auth import principal_of
from server.http.jsonresponse import json_response
from server.http.openapi_parts import NOT_FOUND, UNAUTHORIZED, json_body, path_param, problem
from server.http.openapi_parts import query_param as qp
from server.stats.errors import InvalidStatsQuery
from server.stats.figures import FIGURES, LEVELS
from server.stats.items import SCOPES, ItemFilter, items
from server.stats.query import GROUPS, Viewer, check_choice, default_period, parse_date, stats

routes = web.RouteTableDef()

FORMATS = ("json", "csv")
_AGENCY = re.compile(r"[0-9A-Za-z.]{1,35}")
_LIMIT = re.compile(r"[0-9]{1,3}")
_CURSOR = re.compile(r"[0-9a-f]{2,256}")
_CODE = re.compile(r"[0-9A-Za-z._:-]{1,100}")
MAX_ITEMS = 500


def viewer_of(request: web.Request) -> Viewer:
    """The caller as the stats see it: its agency, and whether its token is an admin's."""
    principal = principal_of(request)
    return Viewer(principal.organ_id, admin="admin" in principal.roles)


def _period(request: web.Request) -> tuple[date, date]:
    start, end = default_period()
    raw_from, raw_to = request.query.get("from"), request.query.get("to")
    return (
        start if raw_from is None else parse_date("from", raw_from),
        end if raw_to is None else parse_date("to", raw_to),
    )


def _agency(request: web.Request) -> str | None:
    agency = request.query.get("agency")
    if agency is not None and not _AGENCY.fullmatch(agency):
        raise InvalidStatsQuery("agency", "must be an OrganId (mã định danh)")
    return agency


def _code(request: web.Request, parameter: str) -> str | None:
    """A procedure's or a category's code from the query, if given."""
    code = request.query.get(parameter)
    if code is not None and not _CODE.fullmatch(code):
        raise InvalidStatsQuery(parameter, "must be a code as the rows of its grouping key it")
    return code


def _figure(request: web.Request) -> str:
    figure = request.match_info["figure"]
    check_choice("figure", figure, FIGURES)
    return figure


@routes.get("/api/v1/stats/{figure}")
async def get_stats(request: web.Request) -> web.StreamResponse:
    """One figure group over a period as JSON, or as CSV (UTF-8 with BOM) with ``format=csv``."""
    figure = _figure(request)
    start, end = _period(request)
    level = request.query.get("level")
    check_choice("level", level, LEVELS)
    group_by = request.query.get("group_by", "month")
    check_choice("group_by", group_by, GROUPS)
    output = request.query.get("format", "json")
    check_choice("format", output, FORMATS)
    table = await stats(
        request.app[DATABASE],
        figure,
        start=start,
        end=end,
        level=level,
        agency=_agency(request),
        group_by=group_by,
        viewer=viewer_of(request),
    )
    if output == "csv":
        name = f"thong-ke-{figure}-{start.isoformat()}-{end.isoformat()}.csv"
        return web.Response(
            body=table.to_csv().encode("utf-8-sig"),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_response(table.to_json())


@routes.get("/api/v1/stats/{figure}/items")
async def get_stats_items(request: web.Request) -> web.Response:
    """The records counted in one cell (``column`` over the period and agency), cursor paged."""
    figure = _figure(request)
    start, end = _period(request)
    column = request.query.get("column")
    if not column:
        raise InvalidStatsQuery("column", "is required: the key of a column of the figure")
    raw_limit = request.query.get("limit", "50")
    if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_ITEMS:
        raise InvalidStatsQuery("limit", f"must be a whole number from 1 to {MAX_ITEMS}")
    raw_after = request.query.get("after") or None
    after = None
    if raw_after is not None:
        try:
            if not _CURSOR.fullmatch(raw_after):
                raise ValueError(raw_after)
            after = bytes.fromhex(raw_after).decode("ascii")
        except ValueError:
            raise InvalidStatsQuery("after", "must be a cursor returned as `next`") from None
    found, following = await items(
        request.app[DATABASE],
        figure,
        start=start,
        end=end,
        where=ItemFilter(
            agency=_agency(request),
            scope=request.query.get("scope", "subtree"),
            level=request.query.get("level"),
            procedure=_code(request, "procedure"),
            category=_code(request, "category"),
        ),
        column=column,
        viewer=viewer_of(request),
        after=after,
        limit=int(raw_limit),
    )
    return json_response(
        {
            "figure": figure,
            "column": column,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "items": found,
            "next": None if following is None else following.encode("ascii").hex(),
        }
    )


BAD_STATS_QUERY = problem("A parameter is unusable (`invalid-stats-query`); `parameter` names it.")
_COMMON = [
    path_param("figure", {"type": "string", "enum": list(FIGURES)}),
    qp("from", {"type": "string", "format": "date"}, "First day (Asia/Ho_Chi_Minh), inclusive."),
    qp("to", {"type": "string", "format": "date"}, "Last day, inclusive."),
    qp("agency", None, "An OrganId: it and the agencies under it (default: the caller's)."),
]


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the stats routes (merged by server/http/openapi.py)."""
    return {
        "/api/v1/stats/{figure}": {
            "get": {
                "summary": "A figure group of the dashboard over a period (JSON or CSV)",
                "parameters": [
                    *_COMMON,
                    qp("level", {"type": "string", "enum": list(LEVELS)}),
                    qp("group_by", {"type": "string", "enum": list(GROUPS)}),
                    qp("format", {"type": "string", "enum": list(FORMATS)}),
                ],
                "responses": {
                    "200": {
                        "description": "The table: columns, rows, totals (docs/dashboard.md)",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": BAD_STATS_QUERY,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/stats/{figure}/items": {
            "get": {
                "summary": "The records one cell of a figure counts (drill-down), cursor paged",
                "parameters": [
                    *_COMMON,
                    qp(
                        "scope",
                        {"type": "string", "enum": list(SCOPES), "default": "subtree"},
                        "`own`: the `agency` alone, as a bar per agency counts it; `subtree`: "
                        "it and those under it, as a month or the totals count them.",
                    ),
                    qp(
                        "level",
                        {"type": "string", "enum": list(LEVELS)},
                        "Only the agencies at that level (a bar per level).",
                    ),
                    qp("procedure", None, "Dossiers only: one procedure's (a bar per procedure)."),
                    qp("category", None, "Feedback only: one category's (a bar per category)."),
                    qp("column", None, "The key of the column whose records to list."),
                    qp("limit", {"type": "integer", "minimum": 1, "maximum": MAX_ITEMS}),
                    qp("after", None, "The `next` cursor of the previous page."),
                ],
                "responses": {
                    "200": json_body("The records, and `next` (null on the last page)"),
                    "400": BAD_STATS_QUERY,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
    }
