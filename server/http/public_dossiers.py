"""The public lookup of a dossier (issue 16): no token, for citizens holding a dossier's code.

* ``GET /api/v1/public/dossiers/{code}``: what server/dossiers/lookup.py shapes (procedure,
  status and label, received, due and returned dates, the steps, the applicant's name masked);
  ``400 invalid-dossier-code`` for a text that is not a code, ``404 not-found`` for an unknown
  one, ``429 too-many-lookups`` with ``Retry-After`` past ``[dossiers] lookup_per_minute`` lookups
  of one client address (each worker process of ``serve --workers N`` allows its share).
* ``GET /tra-cuu``: the Vietnamese page (``pages/tra-cuu.html``: HTML and a little JS, no CDN)
  that asks for a code, or reads it from ``?ma=`` (the slips' QR code), and shows the answer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from server.dossiers.lookup import LookupLimiter, look_up
from server.http.appkeys import CONFIG, DATABASE
from server.http.headers import html_page
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    STATUS,
    STRING,
    STRING_OR_NULL,
    TOO_MANY_REQUESTS,
    json_body,
    path_param,
    problem,
    ref,
)

PAGE_PATH = Path(__file__).resolve().parent / "pages" / "tra-cuu.html"
PAGE = "/tra-cuu"
API_PREFIX = "/api/v1/public/dossiers/"

LIMITER: web.AppKey[LookupLimiter] = web.AppKey("lookup_limiter", LookupLimiter)

routes = web.RouteTableDef()


@routes.get(API_PREFIX + "{code}")
async def public_dossier(request: web.Request) -> web.Response:
    """The public view of one dossier (no token; rate-limited per client address)."""
    request.app[LIMITER].check(request.remote or "unknown")
    zone = ZoneInfo(request.app[CONFIG].dossiers.timezone)
    async with request.app[DATABASE].reader() as tx:
        body = await look_up(tx, request.match_info["code"], zone)
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.get(PAGE)
async def lookup_page(request: web.Request) -> web.Response:
    """The Vietnamese lookup page (plain HTML and a little JS, no CDN)."""
    html = await asyncio.to_thread(PAGE_PATH.read_text, encoding="utf-8")
    return html_page(request, html)  # its script and style get the request's nonce


def setup(app: web.Application, workers: int = 1) -> None:
    """Register the routes on ``app`` and this process's share of the lookup budget per client
    address (``workers``: the server processes of ``serve --workers N``)."""
    app.router.add_routes(routes)
    app[LIMITER] = LookupLimiter(app[CONFIG].dossiers.lookup_per_minute, workers=workers)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the API route above (merged by server/http/openapi.py)."""
    return {
        API_PREFIX + "{code}": {
            "get": {
                "summary": "Look a dossier up by its code, without a token (the /tra-cuu page)",
                "description": "Procedure, status, dates, steps and the applicant's name masked "
                "(`Nguyễn V. A.`); never the ID number, phone, e-mail, address or files. "
                "Rate-limited per client address (`[dossiers] lookup_per_minute`).",
                "security": [],
                "parameters": [
                    path_param(
                        "code", description="The dossier code, e.g. 000.00.01.H40-260105-0007"
                    )
                ],
                "responses": {
                    "200": json_body("The public view of the dossier", ref("PublicDossier")),
                    "400": problem("Not a dossier code (`invalid-dossier-code`)."),
                    "404": problem("No dossier has this code (`not-found`)."),
                    "429": TOO_MANY_REQUESTS,
                },
            }
        }
    }


def public_dossier_schemas() -> dict[str, Any]:
    """The ``PublicDossier`` schema (``components/schemas``)."""
    step = {"status": STATUS, "status_label": STRING, "at": STRING}
    properties = {
        "code": STRING,
        "procedure": {"type": "object", "properties": {"code": STRING, "name": STRING}},
        "status": STATUS,
        "status_label": STRING,
        "applicant_name": {"type": "string", "description": "masked: Nguyễn V. A."},
        "received_at": STRING,
        "due_at": STRING,
        "returned_at": STRING_OR_NULL,
        "steps": {"type": "array", "items": {"type": "object", "properties": step}},
    }
    required = ["code", "procedure", "status", "status_label", "applicant_name", "steps"]
    return {
        "PublicDossier": {
            "type": "object",
            "required": required,
            "additionalProperties": False,
            "properties": properties,
        }
    }
