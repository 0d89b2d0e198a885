"""The archive: a document's record (JSON), its BagIt archival package (zip) and the renewed
files of its attachments (B-LTA renewals, server/signatures/renewal.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from server.archive.records import Archive, record_json
from server.http.appkeys import CONFIG, DATABASE, EXCHANGE, OBJECTS, VERIFIER
from server.http.auth import principal_of
from server.http.jsonresponse import json_response

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
    await objects.stat(renewal.sha256)  # reach the store before promising 200
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
