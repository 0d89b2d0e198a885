"""Agency seals over HTTP, and the versions of an attachment they (and signing sessions) make.

- ``POST /api/v1/documents/{id}/attachments/{n}/seal``: the agency seal on the axis HSM, stored
  as a new version of the attachment.
- ``GET /api/v1/documents/{id}/attachments/{n}/versions[/{version}]``: the versions the caller
  made of an attachment (sealed here, or signed in a session of :mod:`server.http.signing`).

The signing desk (and its lifetime) is :mod:`server.http.signing`'s; the rules are in
:mod:`server.signatures.sessions`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.appkeys import CONFIG
from server.http.auth import principal_of
from server.http.jsonbody import JsonBodyError, read_json
from server.http.openapi_parts import json_body, path_param, problem
from server.http.signing import (
    DESK,
    PDF_ANSWER,
    SIGNING_NOT_FOUND,
    SIGNING_UNAUTHORIZED,
    SIGNING_UNAVAILABLE,
    appearance_of,
    level_of,
    stream_pdf,
)
from server.signatures.errors import BadSigningRequest
from storage.repos.signing_sessions import AttachmentVersion

routes = web.RouteTableDef()


def version_json(version: AttachmentVersion) -> dict[str, Any]:
    """One attachment version with its download link."""
    base = f"/api/v1/documents/{version.document_id}/attachments/{version.attachment_index}"
    return {
        "version": version.id,
        "document_id": version.document_id,
        "attachment": version.attachment_index,
        "kind": version.kind,
        "sha256": version.sha256,
        "size": version.size,
        "base_sha256": version.base_sha256,
        "name": version.name,
        "session_id": version.session_id,
        "created_at": version.created_at.isoformat(),
        "url": f"{base}/versions/{version.id}",
    }


@routes.post(r"/api/v1/documents/{id}/attachments/{n:\d+}/seal")
async def seal_attachment(request: web.Request) -> web.Response:
    """Seal the attachment with the caller's own key on the axis HSM (a new version)."""
    caller = principal_of(request).organ_id
    desk = request.app[DESK]
    fields: dict[str, Any] = {}
    if request.can_read_body and request.content_type == "application/json":
        try:
            body = await read_json(request)
        except JsonBodyError as exc:
            raise BadSigningRequest(str(exc)) from exc
        if not isinstance(body, dict):
            raise BadSigningRequest("the body must be a JSON object")
        fields = body
    version = await desk.seal_attachment(
        caller, request.match_info["id"], int(request.match_info["n"]),
        level=level_of(fields.get("level"), request.app[CONFIG].signing.seal_level),
        appearance=appearance_of(fields), reason=fields.get("reason"),
        location=fields.get("location"),
    )  # fmt: skip
    return web.json_response(
        version_json(version), status=201, headers={"Location": version_json(version)["url"]}
    )


@routes.get(r"/api/v1/documents/{id}/attachments/{n:\d+}/versions")
async def list_versions(request: web.Request) -> web.Response:
    """The versions the caller made of an attachment (signed or sealed), oldest first."""
    versions = await request.app[DESK].versions(
        principal_of(request).organ_id, request.match_info["id"], int(request.match_info["n"])
    )
    return web.json_response({"items": [version_json(v) for v in versions]})


@routes.get(r"/api/v1/documents/{id}/attachments/{n:\d+}/versions/{version}")
async def get_version(request: web.Request) -> web.StreamResponse:
    """The PDF of one version the caller made."""
    version = await request.app[DESK].version(
        principal_of(request).organ_id, request.match_info["id"], int(request.match_info["n"]),
        request.match_info["version"],
    )  # fmt: skip
    return await stream_pdf(request, version.sha256, version.size, f"{version.id}.pdf")


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the routes above (merged by server/http/openapi.py)."""
    doc = path_param("id")
    att = path_param("n", {"type": "integer"})
    ver = path_param("version")
    return {
        "/api/v1/documents/{id}/attachments/{n}/seal": {
            "post": {
                "summary": "Seal a PDF attachment with the caller's key on the axis HSM",
                "parameters": [doc, att],
                "requestBody": {"required": False, "content": {"application/json": {}}},
                "responses": {
                    "201": json_body("The new version: sha256, size, url"),
                    "400": problem("Unusable field."),
                    "401": SIGNING_UNAUTHORIZED,
                    "403": problem("An archivist token (`role-not-allowed`)."),
                    "404": SIGNING_NOT_FOUND,
                    "422": problem("Not a PDF, no seal key for the agency, or signing failed."),
                    "503": SIGNING_UNAVAILABLE,
                },
            }
        },
        "/api/v1/documents/{id}/attachments/{n}/versions": {
            "get": {
                "summary": "The versions the caller made of an attachment (signed, sealed)",
                "parameters": [doc, att],
                "responses": {
                    "200": json_body("`items`"),
                    "401": SIGNING_UNAUTHORIZED,
                    "404": SIGNING_NOT_FOUND,
                },
            }
        },
        "/api/v1/documents/{id}/attachments/{n}/versions/{version}": {
            "get": {
                "summary": "The PDF of one version",
                "parameters": [doc, att, ver],
                "responses": {
                    "200": PDF_ANSWER,
                    "401": SIGNING_UNAUTHORIZED,
                    "404": SIGNING_NOT_FOUND,
                },
            }
        },
    }
