"""GET /api/v1/agencies: the directory of agencies this axis knows (đơn vị liên thông)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.appkeys import DATABASE
from server.http.jsonresponse import json_response
from server.http.openapi_parts import UNAUTHORIZED, json_body, list_of
from storage.repos.agencies import Agency, AgencyRepo

routes = web.RouteTableDef()


def agency_json(agency: Agency) -> dict[str, object]:
    """The public view of an agency (the directory is readable by every authenticated agency)."""
    return {
        "organ_id": agency.organ_id,
        "name": agency.name,
        "parent_id": agency.parent_id,
        "email": agency.email,
    }


@routes.get("/api/v1/agencies")
async def list_agencies(request: web.Request) -> web.Response:
    """Every agency, ordered by organisation id: ``{"items": [...]}``."""
    async with request.app[DATABASE].reader() as tx:
        agencies = await AgencyRepo(tx).list()
    return json_response({"items": [agency_json(a) for a in agencies]})


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/api/v1/agencies`` (merged by server/http/openapi.py)."""
    return {
        "/api/v1/agencies": {
            "get": {
                "summary": "The directory of agencies (đơn vị liên thông)",
                "responses": {
                    "200": json_body("Agencies by organ id", list_of("Agency")),
                    "401": UNAUTHORIZED,
                },
            }
        },
    }
