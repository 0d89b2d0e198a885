"""GET /api/v1/procedures: the procedure catalogue of one-stop dossiers (thủ tục hành chính).

Readable by every authenticated agency, like the directory of agencies: a receiving unit needs
the procedures of every competent agency. Pages follow the inbox (``?after=&limit=``); the
cursor is the last code of a page, hex-encoded as every cursor of the API is.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.dossiers.catalogue import from_row, get_procedure
from server.dossiers.procedures import CODE_PATTERN, Procedure, procedure_json
from server.http.appkeys import DATABASE
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    BAD_QUERY,
    NOT_FOUND,
    PAGING,
    UNAUTHORIZED,
    json_body,
    page_of,
    path_param,
    ref,
)
from server.http.paging import next_text_cursor, page_params, text_cursor
from storage.repos.procedures import ProcedureRepo

routes = web.RouteTableDef()


def procedure_item(procedure: Procedure) -> dict[str, Any]:
    """A procedure as the API shows it: its JSON form and the online level's Vietnamese name."""
    return {**procedure_json(procedure), "online_level_label": procedure.online_level.label}


@routes.get("/api/v1/procedures")
async def list_procedures(request: web.Request) -> web.Response:
    """The catalogue in code order: ``{"items": [...], "next": cursor | null}``."""
    after, limit = page_params(request)
    async with request.app[DATABASE].reader() as tx:
        rows = await ProcedureRepo(tx).page(text_cursor(after), limit + 1)
    page = rows[:limit]
    next_cursor = next_text_cursor(page[-1].code) if len(rows) > limit else None
    items = [procedure_item(from_row(r)) for r in page]
    return json_response({"items": items, "next": next_cursor})


@routes.get("/api/v1/procedures/{code}")
async def show_procedure(request: web.Request) -> web.Response:
    """One procedure by its national code; ``not-found`` when the catalogue has none."""
    async with request.app[DATABASE].reader() as tx:
        procedure = await get_procedure(tx, request.match_info["code"])
    return json_response(procedure_item(procedure))


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the catalogue (merged by server/http/openapi.py)."""
    return {
        "/api/v1/procedures": {
            "get": {
                "summary": "The procedure catalogue (thủ tục hành chính), by national code",
                "parameters": PAGING,
                "responses": {
                    "200": json_body("A page", page_of("Procedure")),
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                },
            }
        },
        "/api/v1/procedures/{code}": {
            "get": {
                "summary": "One procedure",
                "parameters": [path_param("code", description="The national code, e.g. 1.001193")],
                "responses": {
                    "200": json_body("The procedure", ref("Procedure")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
    }


def procedure_schema() -> dict[str, Any]:
    """The shared ``Procedure`` schema (``components/schemas``)."""
    s = {"type": "string"}
    days = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "required": ["code", "name", "agency", "days", "calendar_days", "online_level"],
        "properties": {
            "code": {"type": "string", "pattern": CODE_PATTERN.pattern},
            "name": s,
            "field": {"type": ["string", "null"], "description": "lĩnh vực"},
            "agency": {"type": "string", "description": "The competent agency's organ id"},
            "days": days,
            "calendar_days": {"type": "boolean", "description": "false: working days"},
            "online_level": {"type": "string", "enum": ["full", "partial", "none"]},
            "online_level_label": s,
            "components": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"code": s, "name": s, "required": {"type": "boolean"}},
                },
            },
            "fees": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"amount": {"type": "integer"}, "description": s},
                },
            },
            "steps": {
                "type": "array",
                "items": {"type": "object", "properties": {"agency": s, "days": days}},
            },
        },
    }
