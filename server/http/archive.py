"""The archive: a document's record (JSON) and its BagIt archival package (zip)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from server.appkeys import CONFIG, DATABASE, EXCHANGE, OBJECTS, VERIFIER
from server.archive import Archive, record_json
from server.auth import principal_of
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


async def _stream(response: web.StreamResponse, path: Path) -> None:
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, _CHUNK):
            await response.write(chunk)
    finally:
        await asyncio.to_thread(fh.close)
