"""Documents: send a package, fetch it (ETag, Range), its summary, attachments and statuses."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from edxml import StatusCode
from server.exchange import Receipt, edxml_document_id
from server.http.appkeys import CONFIG, EXCHANGE, OBJECTS, VERIFIER
from server.http.audit import audit_fetch, receipt_fields
from server.http.auth import principal_of
from server.http.errors import HttpProblem
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    BINARY,
    ID,
    NOT_FOUND,
    STORE_UNAVAILABLE,
    UNAUTHORIZED,
    binary_body,
    json_body,
    list_of,
    path_param,
    problem,
    ref,
)
from server.runtime.spool import BodyTooLarge, SpooledPackage
from storage.repos.statuses import Status

routes = web.RouteTableDef()

# application/xml is the type of edXML; text/xml and octet-stream are what tools send by default.
ACCEPTED_TYPES = frozenset({"application/xml", "text/xml", "application/octet-stream"})
_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def receive_package(request: web.Request) -> SpooledPackage:
    """Check the body's type and announced size, then spool it (with the axis TraceHeader)."""
    config = request.app[CONFIG]
    if request.content_type not in ACCEPTED_TYPES:
        raise HttpProblem(
            "unsupported-media-type",
            f"The body is {request.content_type}; send the edXML package as application/xml.",
        )
    limit = config.server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise HttpProblem(
            "payload-too-large",
            f"The package is {request.content_length} bytes; this axis accepts at most {limit}.",
            max_bytes=limit,
        )
    if request.content_length == 0:
        raise HttpProblem("empty-body", "The request body is empty: send the edXML package.")
    try:
        return await request.app[EXCHANGE].receive(request.content.iter_chunked(_CHUNK))
    except BodyTooLarge:
        raise HttpProblem(
            "payload-too-large",
            f"The package is larger than the {limit} bytes this axis accepts.",
            max_bytes=limit,
        ) from None


def receipt_response(receipt: Receipt, extra: dict[str, Any] | None = None) -> web.Response:
    """201 (new) or 200 (the same package again) with the receipt and the stored digest."""
    doc = receipt.document
    body = {
        "id": doc.id,
        "kind": doc.kind,
        "document_id": edxml_document_id(doc),
        "sha256": doc.sha256,
        "size": doc.size,
        "received_at": doc.received_at.isoformat(),
        "recipients": receipt.recipients,
        "duplicate": not receipt.created,
        **(extra or {}),  # receipt_url when the axis seals receipts (server/http/audit.py)
    }
    return json_response(
        body,
        status=201 if receipt.created else 200,
        headers={"Location": f"/api/v1/documents/{doc.id}", "ETag": f'"{doc.sha256}"'},
    )


@routes.post("/api/v1/documents")
async def send_document(request: web.Request) -> web.Response:
    """Accept an edXML document package from the authenticated agency."""
    package = await receive_package(request)
    receipt = await request.app[EXCHANGE].accept_document(principal_of(request).organ_id, package)
    return receipt_response(receipt, await receipt_fields(request, receipt))


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a single ``bytes=`` range; None to send everything.

    Multiple ranges are answered with the whole package (RFC 9110 allows ignoring Range).
    Raises ``range-not-satisfiable`` for a range outside the package.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise HttpProblem("range-not-satisfiable", "The range asks for no bytes.", size=size)
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or end <= start:
        raise HttpProblem(
            "range-not-satisfiable",
            f"The range starts past the end of the package ({size} bytes).",
            size=size,
        )
    return start, end


@routes.get("/api/v1/documents/{id}")
async def fetch_document(request: web.Request) -> web.StreamResponse:
    """The package exactly as stored, streamed; ETag is its SHA-256; one byte range allowed."""
    doc = await request.app[EXCHANGE].document(
        principal_of(request).organ_id, request.match_info["id"]
    )
    etag = f'"{doc.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "Content-Disposition": f'attachment; filename="{doc.id}.edxml"',
    }
    inm = request.headers.get("If-None-Match")
    if inm is not None and _etag_matches(inm, etag):
        return web.Response(status=304, headers=headers)
    if_range = request.headers.get("If-Range")
    try:
        span = (
            _byte_range(request.headers.get("Range"), doc.size)
            if if_range is None or if_range.strip() == etag
            else None
        )
    except HttpProblem as problem:
        problem.headers["Content-Range"] = f"bytes */{doc.size}"
        raise
    start, end = span if span is not None else (0, doc.size)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{doc.size}"
    # Reach the store before promising 200: an unreachable S3, a missing object or one whose
    # stored versions all hold other bytes is a 503 problem, never a status line and a cut
    # stream. On S3 the bytes then streamed are of the version the axis wrote, verified once.
    await request.app[OBJECTS].require(doc.sha256)
    await audit_fetch(request, doc.id)
    response = web.StreamResponse(status=206 if span is not None else 200, headers=headers)
    response.content_type = "application/xml"
    response.content_length = end - start
    await response.prepare(request)
    if request.method != "HEAD":
        async for chunk in request.app[OBJECTS].open(doc.sha256, start, end):
            await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/api/v1/documents/{id}/meta")
async def document_meta(request: web.Request) -> web.Response:
    """The JSON summary: edXML fields, recipients, attachments (each with its signature
    verification summary, server/signatures/verification.py), business links, trace."""
    meta = await request.app[EXCHANGE].meta(
        principal_of(request).organ_id, request.match_info["id"]
    )
    verifier = request.app.get(VERIFIER)
    if verifier is not None:
        await verifier.annotate_meta(meta)
    return json_response(meta)


def content_disposition(name: str | None, fallback: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the UTF-8 ``filename*`` (RFC 5987/6266)."""
    name = (name or fallback).replace("\\", "/").rsplit("/", 1)[-1] or fallback
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"%;' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@routes.get(r"/api/v1/documents/{id}/attachments/{n:\d+}")
async def fetch_attachment(request: web.Request) -> web.StreamResponse:
    """Attachment ``n`` (0-based, as in ``meta``) decoded from base64 and unzipped if zipped."""
    index = int(request.match_info["n"])
    decoded = await request.app[EXCHANGE].decode_attachment(
        principal_of(request).organ_id, request.match_info["id"], index
    )
    try:
        await audit_fetch(request, request.match_info["id"], index)
        response = web.StreamResponse(
            headers={
                "Content-Disposition": content_disposition(decoded.name, f"attachment-{index}"),
                "Cache-Control": "private, no-cache",
            }
        )
        response.content_type = decoded.content_type
        response.content_length = decoded.size
        await response.prepare(request)
        if request.method != "HEAD":
            await _stream_file(response, decoded.path)
        await response.write_eof()
        return response
    finally:
        decoded.path.unlink(missing_ok=True)


async def _stream_file(response: web.StreamResponse, path: Path) -> None:
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, 1024 * 1024):
            await response.write(chunk)


def status_json(status: Status) -> dict[str, Any]:
    """One entry of a status history."""
    try:
        label: str | None = StatusCode(status.code).label
    except ValueError:
        label = None
    return {
        "id": status.id,
        "code": status.code,
        "label": label,
        "sender": status.sender,
        "recipient": status.recipient,
        "description": status.description,
        "staff": status.staff,
        "timestamp": None if status.timestamp is None else status.timestamp.isoformat(),
        "received_at": status.received_at.isoformat(),
        "package_id": status.package_id,
    }


@routes.get("/api/v1/documents/{id}/statuses")
async def document_statuses(request: web.Request) -> web.Response:
    """The status history of a document, oldest first (sender and recipients only)."""
    history = await request.app[EXCHANGE].status_history(
        principal_of(request).organ_id, request.match_info["id"]
    )
    return json_response({"items": [status_json(s) for s in history]})


# --- the OpenAPI description of these routes (merged by server/http/openapi.py) ---------------

# The body and the refusals of a send, a document's or a status's (server/http/statuses.py).
PACKAGE_BODY = {
    "required": True,
    "content": {
        t: {"schema": BINARY} for t in ("application/xml", "text/xml", "application/octet-stream")
    },
}
SEND_ERRORS = {
    "400": problem("Empty body, malformed XML, invalid UTF-8, or a DTD/entity (unsafe-xml)."),
    "401": UNAUTHORIZED,
    "403": problem("From is not the caller, or a business/status rule forbids it."),
    "409": problem("The DocumentId was already used for other bytes (`duplicate-document`)."),
    "413": problem("The body exceeds server.max_body_bytes (`payload-too-large`)."),
    "415": problem("Wrong Content-Type (`unsupported-media-type`)."),
    "422": problem("Not edXML, invalid, unknown recipients, unknown original/document."),
    "503": problem("Storage full or unavailable; nothing was stored. Retry later."),
}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the routes above (merged by server/http/openapi.py)."""
    xml = {"application/xml": {"schema": {"type": "string"}}}
    return {
        "/api/v1/documents": {
            "post": {
                "summary": "Send an edXML document package",
                "description": (
                    "The body is streamed to disk and hashed; the axis appends its "
                    "TraceHeader. A resend of the same bytes with the same DocumentId "
                    "answers 200 with the first receipt."
                ),
                "requestBody": PACKAGE_BODY,
                "responses": {
                    "201": json_body("Accepted and routed", ref("Receipt")),
                    "200": json_body("The same package again: the first receipt", ref("Receipt")),
                    **SEND_ERRORS,
                },
            }
        },
        "/api/v1/documents/{id}": {
            "get": {
                "summary": "The package as stored (ETag = SHA-256, single byte range)",
                "parameters": [
                    ID,
                    {"name": "Range", "in": "header", "schema": {"type": "string"}},
                    {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "The package", "content": xml},
                    "206": {"description": "The requested byte range", "content": xml},
                    "304": {"description": "Not modified (If-None-Match matched)"},
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "416": problem("Range outside the package (`range-not-satisfiable`)."),
                    "503": STORE_UNAVAILABLE,
                },
            }
        },
        "/api/v1/documents/{id}/meta": {
            "get": {
                "summary": "JSON summary: edXML fields, recipients, attachments, links, trace",
                "parameters": [ID],
                "responses": {
                    "200": json_body("Summary", ref("Meta")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/documents/{id}/attachments/{n}": {
            "get": {
                "summary": "One attachment, decoded (and unzipped when the SDK zipped it)",
                "parameters": [
                    ID,
                    path_param(
                        "n",
                        {"type": "integer", "minimum": 0},
                        "0-based index, as in meta.attachments[].index",
                    ),
                ],
                "responses": {
                    "200": binary_body("The file; Content-Disposition has filename*", "*/*"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "422": problem("The stored attachment cannot be decoded or unzipped."),
                    "503": STORE_UNAVAILABLE,
                },
            }
        },
        "/api/v1/documents/{id}/statuses": {
            "get": {
                "summary": "Status history of a document (its sender and recipients only)",
                "parameters": [ID],
                "responses": {
                    "200": json_body("Oldest first", list_of("Status")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
    }
