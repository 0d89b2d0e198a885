"""GET /api/v1/agencies: the directory of agencies this axis knows (đơn vị liên thông)."""

from __future__ import annotations

from aiohttp import web

from server.http.appkeys import DATABASE
from server.http.jsonresponse import json_response
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
