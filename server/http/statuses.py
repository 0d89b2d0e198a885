"""POST /api/v1/statuses: a status message (thông điệp trạng thái) about a document."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.appkeys import EXCHANGE
from server.http.auth import principal_of
from server.http.documents import PACKAGE_BODY, SEND_ERRORS, receipt_response, receive_package
from server.http.openapi_parts import json_body, ref

routes = web.RouteTableDef()


@routes.post("/api/v1/statuses")
async def send_status(request: web.Request) -> web.Response:
    """Accept a status package and route it to the other party of the document (201)."""
    package = await receive_package(request)
    receipt = await request.app[EXCHANGE].accept_status(principal_of(request).organ_id, package)
    return receipt_response(receipt)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/api/v1/statuses`` (merged by server/http/openapi.py)."""
    return {
        "/api/v1/statuses": {
            "post": {
                "summary": "Send a status message (01-06, 15, 16: recipient; 13: sender)",
                "requestBody": PACKAGE_BODY,
                "responses": {
                    "201": json_body("Accepted and routed to the other party", ref("Receipt")),
                    **SEND_ERRORS,
                },
            }
        },
    }
