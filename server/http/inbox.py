"""The inbox (hộp thư đến): the caller's deliveries, and acknowledging them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.exchange import document_meta, edxml_document_id
from server.http.appkeys import EXCHANGE, VERIFIER
from server.http.auth import principal_of
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    BAD_QUERY,
    NOT_FOUND,
    PAGING,
    UNAUTHORIZED,
    json_body,
    page_of,
    path_param,
    problem,
    query_param,
)
from server.http.paging import choice, page_params
from storage.repos.deliveries import Delivery
from storage.repos.documents import Document

routes = web.RouteTableDef()

KINDS = frozenset({"document", "status"})
STATES = frozenset({"new", "acked"})


def inbox_item(delivery: Delivery, doc: Document, signatures: str | None = None) -> dict[str, Any]:
    """One inbox entry: the delivery and what a clerk needs to triage the package.

    ``signatures`` is the document's one-word verification verdict
    (server/signatures/verification.py):
    valid, invalid, indeterminate, none or pending.
    """
    item: dict[str, Any] = {
        "delivery_id": delivery.id,
        "document_id": doc.id,
        "edxml_document_id": edxml_document_id(doc),
        "kind": delivery.kind,
        "sender": doc.sender,
        "subject": doc.subject,
        "code": doc.code,
        "priority": doc.priority,
        "business_type": doc.business_type,
        "related_id": doc.related_id,
        "received_at": doc.received_at.isoformat(),
        "state": delivery.state,
        "acked_at": None if delivery.acked_at is None else delivery.acked_at.isoformat(),
        "size": doc.size,
    }
    if signatures is not None:
        item["signatures"] = signatures
    if delivery.kind == "status":
        status = document_meta(doc).get("status") or {}
        item["status_code"] = status.get("code")
        item["status_label"] = status.get("label")
        item["status_description"] = status.get("description")
    return item


@routes.get("/api/v1/inbox")
async def inbox(request: web.Request) -> web.Response:
    """The caller's deliveries, oldest first: ``{"items": [...], "next": cursor | null}``."""
    after, limit = page_params(request)
    kind = choice(request, "kind", KINDS)
    state = choice(request, "state", STATES)
    rows = await request.app[EXCHANGE].inbox(
        principal_of(request).organ_id, after, limit + 1, kind, state
    )
    page = rows[:limit]
    next_cursor = page[-1][0].id if len(rows) > limit else None
    verifier = request.app.get(VERIFIER)
    verdicts = {} if verifier is None else await verifier.document_verdicts([d for _, d in page])
    items = [inbox_item(d, doc, verdicts.get(doc.id)) for d, doc in page]
    return json_response({"items": items, "next": next_cursor})


@routes.post("/api/v1/inbox/{delivery_id}/ack")
async def ack(request: web.Request) -> web.Response:
    """Acknowledge a delivery (idempotent: acking again changes nothing)."""
    delivery = await request.app[EXCHANGE].ack(
        principal_of(request).organ_id, request.match_info["delivery_id"]
    )
    return json_response(
        {
            "delivery_id": delivery.id,
            "document_id": delivery.document_id,
            "state": delivery.state,
            "acked_at": None if delivery.acked_at is None else delivery.acked_at.isoformat(),
        }
    )


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the inbox (merged by server/http/openapi.py)."""
    return {
        "/api/v1/inbox": {
            "get": {
                "summary": "The caller's deliveries, oldest first",
                "parameters": [
                    *PAGING,
                    query_param("kind", {"type": "string", "enum": ["document", "status"]}),
                    query_param("state", {"type": "string", "enum": ["new", "acked"]}),
                ],
                "responses": {
                    "200": json_body("A page", page_of("InboxItem")),
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                    "403": problem("An archivist token (`role-not-allowed`)."),
                },
            }
        },
        "/api/v1/inbox/{delivery_id}/ack": {
            "post": {
                "summary": "Acknowledge a delivery (idempotent)",
                "parameters": [path_param("delivery_id")],
                "responses": {
                    "200": json_body("The delivery, acknowledged"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
    }
