"""The archive: a document's record (JSON), its BagIt archival package (zip) and the renewed
files of its attachments (B-LTA renewals, server/signatures/renewal.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from server.archive.records import Archive, record_json
from server.http.appkeys import CONFIG, DATABASE, EXCHANGE, OBJECTS, VERIFIER
from server.http.auth import principal_of
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    ID,
    NOT_FOUND,
    STORE_UNAVAILABLE,
    UNAUTHORIZED,
    binary_body,
    json_body,
    path_param,
    problem,
)

routes = web.RouteTableDef()
_CHUNK = 1024 * 1024


def archive_of(request: web.Request) -> Archive:
    """The archive of the request's app (a thin object over the app's resources)."""
    app = request.app
    return Archive(app[CONFIG], app[DATABASE], app[OBJECTS], app[EXCHANGE], app.get(VERIFIER))


@routes.get("/api/v1/archive/{id}")
async def archive_record(request: web.Request) -> web.Response:
    """Package and attachments as received, verification reports, statuses, audit trail."""
    record = await archive_of(request).record(principal_of(request), request.match_info["id"])
    return json_response(record_json(record), headers={"Cache-Control": "private, no-cache"})


@routes.get("/api/v1/archive/{id}/package")
async def archive_package(request: web.Request) -> web.StreamResponse:
    """The BagIt archival package of the document, as a zip (built, then streamed)."""
    doc_id = request.match_info["id"]
    zip_path = await archive_of(request).bag(principal_of(request), doc_id)
    try:
        size = (await asyncio.to_thread(zip_path.stat)).st_size
        response = web.StreamResponse(
            headers={
                "Content-Disposition": f'attachment; filename="lienthong-{doc_id}.zip"',
                "Cache-Control": "private, no-cache",
            }
        )
        response.content_type = "application/zip"
        response.content_length = size
        await response.prepare(request)
        if request.method != "HEAD":
            await _stream(response, zip_path)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(zip_path.unlink, True)


@routes.get("/api/v1/archive/{id}/renewals/{renewal}")
async def archive_renewal(request: web.Request) -> web.StreamResponse:
    """One renewal of an attachment (or of the caller's version of it): the PDF with the added
    document timestamp, for those who see the record (a version's, its agency only)."""
    renewal = await archive_of(request).renewal(
        principal_of(request), request.match_info["id"], request.match_info["renewal"]
    )
    objects = request.app[OBJECTS]
    await objects.require(renewal.sha256)  # reach the store before promising 200
    response = web.StreamResponse(
        headers={
            "Content-Disposition": f'attachment; filename="{renewal.id}.pdf"',
            "Cache-Control": "private, no-cache",
            "ETag": f'"{renewal.sha256}"',
        }
    )
    response.content_type = "application/pdf"
    response.content_length = renewal.size
    await response.prepare(request)
    if request.method != "HEAD":
        async for chunk in objects.open(renewal.sha256):  # hash-checked read
            await response.write(chunk)
    await response.write_eof()
    return response


async def _stream(response: web.StreamResponse, path: Path) -> None:
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, _CHUNK):
            await response.write(chunk)
    finally:
        await asyncio.to_thread(fh.close)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the archive (merged by server/http/openapi.py)."""
    return {
        "/api/v1/archive/{id}": {
            "get": {
                "summary": "Archive record: package and attachments as received (sha256), "
                "verification reports, status history, audit trail (docs/archive.md)",
                "description": "For the sender, the recipients and their archivists only.",
                "parameters": [ID],
                "responses": {
                    "200": json_body("The archive record"),
                    "401": UNAUTHORIZED,
                    "403": problem("An archivist token asked for more than a read."),
                    "404": NOT_FOUND,
                    "503": STORE_UNAVAILABLE,
                },
            }
        },
        "/api/v1/archive/{id}/package": {
            "get": {
                "summary": "BagIt archival package of the document (zip, manifest-sha256)",
                "parameters": [ID],
                "responses": {
                    "200": binary_body("The bag as a zip", "application/zip"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "503": STORE_UNAVAILABLE,
                },
            }
        },
        "/api/v1/archive/{id}/renewals/{renewal}": {
            "get": {
                "summary": "A renewed attachment: the PDF with an added document timestamp "
                "(B-LTA renewal; `renewals[].href` of the archive record)",
                "description": "Renewals of an attachment as sent: for the sender, the "
                "recipients and their archivists. Renewals of a version: for the agency "
                "that made the version.",
                "parameters": [ID, path_param("renewal")],
                "responses": {
                    "200": binary_body("The renewed PDF", "application/pdf"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "503": STORE_UNAVAILABLE,
                },
            }
        },
    }
