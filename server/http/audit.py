"""The audit log for admins (``GET /api/v1/audit``), document receipts
(``GET /api/v1/documents/{id}/receipt``), and the app context that loads the seal and anchors the
audit chain every ``audit.anchor_minutes`` and at shutdown.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from server.exchange import Receipt
from server.exchange.receipts import ReceiptError, Receipts
from server.http.appkeys import DATABASE, EXCHANGE
from server.http.auth import principal_of
from server.http.errors import HttpProblem
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    ID,
    NOT_FOUND,
    UNAUTHORIZED,
    binary_body,
    json_body,
    problem,
    query_param,
)
from server.http.paging import page_params, seq_number
from server.runtime import audit
from storage.audit import AuditRepo

log = logging.getLogger("lienthong.audit")

routes = web.RouteTableDef()

RECEIPTS: web.AppKey[Receipts] = web.AppKey("receipts")
ADMIN_ROLE = "admin"
RECEIPT_CONTENT_TYPE = "application/pkcs7-mime"


def receipt_url(document_id: str) -> str:
    """Where the sender fetches the receipt of a document."""
    return f"/api/v1/documents/{document_id}/receipt"


async def receipt_fields(request: web.Request, receipt: Receipt) -> dict[str, Any]:
    """Members added to the answer of a send: ``receipt_url`` when this axis seals receipts.

    The receipt is sealed now, so that it is ready; if the TSA or token fails, the document is
    still accepted and ``GET receipt_url`` retries.
    """
    receipts = request.app.get(RECEIPTS)
    doc = receipt.document
    if receipts is None or not receipts.enabled or doc.kind != "document":
        return {}
    try:
        await receipts.for_document(doc)
    except ReceiptError as exc:
        log.warning("receipt not sealed yet", extra={"id": doc.id, "error": str(exc)})
    return {"receipt_url": receipt_url(doc.id)}


async def audit_fetch(
    request: web.Request, document_id: str, attachment: int | None = None
) -> None:
    """Record that the caller fetched a package or an attachment (GET only, not HEAD/304)."""
    if request.method == "GET":
        await audit.record_fetch(
            request.app[DATABASE],
            principal_of(request).organ_id,
            document_id,
            attachment=attachment,
        )


@routes.get("/api/v1/documents/{id}/receipt")
async def document_receipt(request: web.Request) -> web.Response:
    """The sealed receipt (CMS, DER) of a document, for its sender only."""
    caller = principal_of(request).organ_id
    doc = await request.app[EXCHANGE].document(caller, request.match_info["id"])
    receipts = request.app.get(RECEIPTS)
    if doc.kind != "document" or doc.sender != caller:
        raise HttpProblem("not-found", f"No receipt of {doc.id} for {caller}.")
    if receipts is None or not receipts.enabled:
        raise HttpProblem("not-found", "This axis has no seal configured: it issues no receipts.")
    try:
        der = await receipts.for_document(doc)
    except ReceiptError as exc:
        log.warning("receipt not sealed", extra={"id": doc.id, "error": str(exc)})
        raise HttpProblem(
            "storage-unavailable",
            "The receipt could not be sealed right now (time-stamping authority or seal "
            "unavailable); the document is accepted. Retry later.",
        ) from None
    return web.Response(
        body=der,
        content_type=RECEIPT_CONTENT_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{doc.id}.receipt.p7m"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


@routes.get("/api/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    """Audit entries after the ``after`` seq, oldest first, for tokens with the admin role.

    Any other caller gets ``not-found``: the API does not tell which resources exist to those
    who may not see them.
    """
    principal = principal_of(request)
    if ADMIN_ROLE not in principal.roles:
        raise HttpProblem("not-found", "No such resource for this token.")
    after_text, limit = page_params(request)
    after = seq_number(after_text, "after")
    async with request.app[DATABASE].reader() as tx:
        repo = AuditRepo(tx)
        entries = await repo.page(after, limit + 1)
        head = await repo.head()
        anchor = await repo.latest_anchor()
    page = entries[:limit]
    return json_response(
        {
            "items": [e.as_json() for e in page],
            "next": str(page[-1].seq) if len(entries) > limit else None,
            "head": None if head is None else {"seq": head[0], "hash": head[1]},
            "last_anchor": None
            if anchor is None
            else {
                "seq": anchor.seq,
                "hash": anchor.head_hash,
                "timestamp": anchor.gen_time.isoformat(),
                "tsa_url": anchor.tsa_url,
            },
        }
    )


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of receipts and the audit log (merged by server/http/openapi.py)."""
    return {
        "/api/v1/documents/{id}/receipt": {
            "get": {
                "summary": "Signed receipt of a sent document (CMS with an RFC 3161 "
                "timestamp, sealed by the axis; docs/audit.md)",
                "description": "For the sender only; offered as `receipt_url` in the answer "
                "to a send when the axis has a seal. Check it offline with "
                "`lienthong receipt verify`.",
                "parameters": [ID],
                "responses": {
                    "200": binary_body("The receipt (DER)", RECEIPT_CONTENT_TYPE),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "503": problem("The receipt cannot be sealed right now. Retry later."),
                },
            }
        },
        "/api/v1/audit": {
            "get": {
                "summary": "Audit log entries (hash chain), oldest first, for admin tokens",
                "description": "Other tokens get 404. `after` is a seq returned as `next`.",
                "parameters": [query_param("after"), query_param("limit", {"type": "integer"})],
                "responses": {
                    "200": json_body("A page of entries with the head and last anchor"),
                    "400": problem("`after` or `limit` is not usable."),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
    }
