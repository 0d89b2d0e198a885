"""GET /api/v1/me: who the caller's token speaks for (its agency and roles)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.appkeys import DATABASE
from server.http.auth import principal_of
from server.http.jsonresponse import json_response
from server.http.openapi_parts import UNAUTHORIZED, json_body, ref
from storage.repos.agencies import AgencyRepo

routes = web.RouteTableDef()


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    """The authenticated agency: ``{organ_id, name, roles}`` (roles sorted). ``name`` is None
    only if the agency row is gone while its token is still valid."""
    principal = principal_of(request)
    async with request.app[DATABASE].reader() as tx:
        agency = await AgencyRepo(tx).get(principal.organ_id)
    return json_response(
        {
            "organ_id": principal.organ_id,
            "name": None if agency is None else agency.name,
            "roles": sorted(principal.roles),
        }
    )


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/api/v1/me`` (merged by server/http/openapi.py)."""
    return {
        "/api/v1/me": {
            "get": {
                "summary": "The caller's agency (organ id, name) and its token's roles",
                "responses": {
                    "200": json_body("The authenticated agency", ref("Me")),
                    "401": UNAUTHORIZED,
                },
            }
        },
    }
