"""GET /api/v1/sent: the caller's sent documents with each recipient's latest status."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edxml import StatusCode
from server.exchange import SentEntry, edxml_document_id
from server.http.appkeys import EXCHANGE
from server.http.auth import principal_of
from server.http.jsonresponse import json_response
from server.http.openapi_parts import BAD_QUERY, PAGING, UNAUTHORIZED, json_body, page_of
from server.http.paging import page_params

routes = web.RouteTableDef()


def _label(code: str) -> str | None:
    try:
        return StatusCode(code).label
    except ValueError:
        return None


def sent_item(entry: SentEntry) -> dict[str, Any]:
    """One sent document with, per recipient, delivery state and latest status (or null)."""
    doc = entry.document
    recipients = []
    for delivery in entry.deliveries:
        status = entry.latest.get(delivery.recipient)
        recipients.append(
            {
                "organ_id": delivery.recipient,
                "state": delivery.state,
                "acked_at": None if delivery.acked_at is None else delivery.acked_at.isoformat(),
                "status": None
                if status is None
                else {
                    "code": status.code,
                    "label": _label(status.code),
                    "description": status.description,
                    "received_at": status.received_at.isoformat(),
                },
            }
        )
    return {
        "id": doc.id,
        "edxml_document_id": edxml_document_id(doc),
        "subject": doc.subject,
        "code": doc.code,
        "priority": doc.priority,
        "business_type": doc.business_type,
        "related_id": doc.related_id,
        "received_at": doc.received_at.isoformat(),
        "sha256": doc.sha256,
        "recipients": recipients,
    }


@routes.get("/api/v1/sent")
async def sent(request: web.Request) -> web.Response:
    """The caller's documents, oldest first: ``{"items": [...], "next": cursor | null}``."""
    after, limit = page_params(request)
    entries = await request.app[EXCHANGE].sent(principal_of(request).organ_id, after, limit + 1)
    page = entries[:limit]
    next_cursor = page[-1].document.id if len(entries) > limit else None
    return json_response({"items": [sent_item(e) for e in page], "next": next_cursor})


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/api/v1/sent`` (merged by server/http/openapi.py)."""
    return {
        "/api/v1/sent": {
            "get": {
                "summary": "The caller's sent documents with each recipient's latest status",
                "parameters": PAGING,
                "responses": {
                    "200": json_body("A page", page_of("SentItem")),
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                },
            }
        },
    }
