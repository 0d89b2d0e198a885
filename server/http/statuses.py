"""POST /api/v1/statuses: a status message (thông điệp trạng thái) about a document."""

from __future__ import annotations

from aiohttp import web

from server.http.appkeys import EXCHANGE
from server.http.auth import principal_of
from server.http.documents import receipt_response, receive_package

routes = web.RouteTableDef()


@routes.post("/api/v1/statuses")
async def send_status(request: web.Request) -> web.Response:
    """Accept a status package and route it to the other party of the document (201)."""
    package = await receive_package(request)
    receipt = await request.app[EXCHANGE].accept_status(principal_of(request).organ_id, package)
    return receipt_response(receipt)
