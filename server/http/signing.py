"""Signing over HTTP: officers' signing sessions and the VGCA plugin's download/upload.

- ``POST /api/v1/signing-sessions``: a PDF (multipart part ``pdf``, or base64 ``pdf`` in JSON)
  or a document attachment (``document_id`` + ``attachment``), the officer's certificate, the
  NĐ 30 profile and the PAdES level -> the session, its digest, and the plugin's URLs.
- ``PUT /api/v1/signing-sessions/{id}/signature``: the token's raw signature of the digest.
- ``GET /api/v1/signing-sessions/{id}`` and ``.../signed``: the state and the signed PDF.
- ``GET|POST /api/v1/signing-files/{id}``: the VGCA plugin's download (``FileName``) and upload
  (``FileUploadHandler``), authenticated by the session's short-lived JWT instead of a bearer
  token (server/http/auth.py lets this prefix through).

The agency seals and the attachment versions they make are in :mod:`server.http.seals`, on the
same signing desk.

Handlers parse and render; the rules are in :mod:`server.signatures.sessions`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from server.http.appkeys import CONFIG, EXCHANGE, OBJECTS
from server.http.auth import principal_of
from server.http.errors import HttpProblem, readable_form
from server.http.jsonbody import JsonBodyError, read_json
from server.http.jsonbody import loads as json_loads
from server.http.metrics import metrics_of
from server.http.openapi_parts import json_body, path_param, problem, query_param
from server.runtime.spool import temp_path
from server.signatures.errors import BadSigningRequest
from server.signatures.requests import (
    AppearanceRequest,
    PdfSource,
    SessionRequest,
    load_certificates,
)
from server.signatures.sessions import DOWNLOAD, UPLOAD, SigningDesk
from signing import Level, SigningError
from storage.repos.signing_sessions import SIGNED, SessionRow

routes = web.RouteTableDef()

DESK: web.AppKey[SigningDesk] = web.AppKey("signing_desk", SigningDesk)
FILES_PREFIX = "/api/v1/signing-files/"
# DigestInfo prefix of SHA-256 (RFC 8017, 9.2 note 1): what CKM_RSA_PKCS signs.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_TEXT_LIMIT = 256 * 1024  # certificates, images and small fields of a multipart form
_CHUNK = 256 * 1024


async def signing_context(app: web.Application) -> AsyncIterator[None]:
    """The signing desk for the app's lifetime (after the database and object store open)."""
    from server.http.appkeys import DATABASE

    desk = SigningDesk(
        app[CONFIG], app[DATABASE], app[OBJECTS], app[EXCHANGE], metrics=metrics_of(app)
    )
    app[DESK] = desk
    try:
        yield
    finally:
        await desk.aclose()


def setup(app: web.Application) -> None:
    """Add the routes and the desk's lifetime to ``app`` (call after the resources context)."""
    app.cleanup_ctx.append(signing_context)
    app.router.add_routes(routes)


# --- request parsing ---------------------------------------------------------------------------


_SPOOL_BATCH = 1024 * 1024


async def _spool(request: web.Request, chunks: AsyncIterator[bytes]) -> Path:
    """Write a streamed body into a spool file, refusing more than server.max_body_bytes."""
    config = request.app[CONFIG]
    limit = config.server.max_body_bytes
    path = temp_path(config.spool_dir, ".pdf")
    size = 0
    pending = bytearray()
    try:
        # File writes go to a thread in ~1 MiB batches: the event loop never waits on the disk.
        out = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise HttpProblem(
                        "payload-too-large",
                        f"The file is larger than the {limit} bytes this axis accepts.",
                        max_bytes=limit,
                    )
                pending += chunk
                if len(pending) >= _SPOOL_BATCH:
                    batch, pending = bytes(pending), bytearray()
                    await asyncio.to_thread(out.write, batch)
            if pending:
                await asyncio.to_thread(out.write, bytes(pending))
        finally:
            await asyncio.to_thread(out.close)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise HttpProblem("empty-body", "The file is empty.")
    return path


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK):
        yield chunk


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadSigningRequest(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSigningRequest(f"{what} is not valid base64") from exc


async def _form(request: web.Request) -> tuple[dict[str, Any], Path | None]:
    """The fields of a JSON or multipart request, and the spooled ``pdf`` file if any.

    Binary fields (``certificate``, ``chain``, ``image``) come as bytes from a multipart part
    or as text (PEM, or base64 in JSON).
    """
    if request.content_type == "multipart/form-data":
        fields: dict[str, Any] = {}
        pdf: Path | None = None
        try:
            with readable_form():
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, BodyPartReader) or not part.name:
                        continue
                    if part.name == "pdf":
                        if pdf is not None:
                            raise BadSigningRequest("send one 'pdf' part")
                        pdf = await _spool(request, _part_chunks(part))
                        fields["pdf_name"] = part.filename
                        continue
                    data = await part.read(decode=True)
                    if len(data) > _TEXT_LIMIT:
                        raise BadSigningRequest(f"part {part.name!r} is too large")
                    fields.setdefault(part.name, []).append(bytes(data))
        except BaseException:
            if pdf is not None:
                pdf.unlink(missing_ok=True)
            raise
        flat: dict[str, Any] = {}
        for name, values in fields.items():
            if name in ("chain",):
                flat[name] = values
            elif name in ("certificate", "image", "pdf_name"):
                flat[name] = values[-1] if isinstance(values, list) else values
            else:
                flat[name] = values[-1].decode("utf-8", "replace")
        return flat, pdf
    if request.content_type != "application/json":
        raise HttpProblem(
            "unsupported-media-type",
            f"The body is {request.content_type}; send application/json or multipart/form-data.",
        )
    try:
        body = await read_json(request)
    except JsonBodyError as exc:
        raise BadSigningRequest(str(exc)) from exc
    if not isinstance(body, dict):
        raise BadSigningRequest("the body must be a JSON object")
    if "pdf" in body:
        data = _b64(body.pop("pdf"), "pdf")
        path = temp_path(request.app[CONFIG].spool_dir, ".pdf")
        path.write_bytes(data)
        return body, path
    return body, None


def _cert_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode() if "-----BEGIN" in value else _b64(value, what)
    raise BadSigningRequest(f"{what} must be PEM text or base64 DER")


def appearance_of(fields: dict[str, Any]) -> AppearanceRequest:
    """The visible signature asked for by a request's fields (NĐ 30 profile, texts, image)."""
    image = fields.get("image")
    if isinstance(image, str):
        image = _b64(image, "image")
    profile = fields.get("profile") or "none"

    def text(name: str) -> str | None:
        value = fields.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadSigningRequest(f"{name} must be a string")
        return value

    return AppearanceRequest(
        profile=str(profile), title=text("title"), full_name=text("full_name"), image=image,
        over_field=text("over_field"), number=text("number"), agency=text("agency"),
        copy_type=text("copy_type"),
    )  # fmt: skip


def level_of(value: Any, default: str = "B-B") -> Level:
    """The PAdES level a request asks for (``default`` when none)."""
    try:
        return Level.parse(str(value or default))
    except SigningError as exc:
        raise BadSigningRequest(str(exc)) from exc


def _base_url(request: web.Request) -> str:
    public = request.app[CONFIG].server.public_url
    return public.rstrip("/") if public else str(request.url.origin())


def session_json(request: web.Request, row: SessionRow, digest: bytes | None) -> dict[str, Any]:
    """The JSON of a session: state, the digest while pending, links (signed PDF when done)."""
    desk = request.app[DESK]
    base = _base_url(request)
    body: dict[str, Any] = {
        "session_id": row.id,
        "state": "expired" if row.expired() else row.state,
        "level": row.level,
        "profile": row.profile,
        "signer": row.subject,
        "certificate_sha256": row.certificate_sha256,
        "source": {"sha256": row.source_sha256, "size": row.source_size, "name": row.name},
        "document_id": row.document_id,
        "attachment": row.attachment_index,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "url": f"/api/v1/signing-sessions/{row.id}",
    }
    if row.state != SIGNED and digest is not None:
        body["digest"] = {
            "algorithm": "sha256",
            "base64": base64.b64encode(digest).decode(),
            "hex": digest.hex(),
            # CKM_RSA_PKCS (what browser plug-ins expose) signs this DigestInfo.
            "digest_info_base64": base64.b64encode(SHA256_DIGEST_INFO + digest).decode(),
        }
        if not row.expired():
            download = desk.plugin_token(row, DOWNLOAD)
            upload = desk.plugin_token(row, UPLOAD)
            download_url = f"{base}{FILES_PREFIX}{row.id}?token={download}"
            upload_url = f"{base}{FILES_PREFIX}{row.id}"
            body.update(
                {
                    "download_url": download_url,
                    "upload_url": upload_url,
                    "upload_token": upload,
                    "signature_url": f"/api/v1/signing-sessions/{row.id}/signature",
                    # The argument of vgcaplugin.js's vgca_sign_* functions (VN-RULES.md).
                    "vgca": {
                        "FileUploadHandler": upload_url,
                        "SessionId": row.id,
                        "JWTToken": upload,
                        "FileName": download_url,
                        "MetaData": [{"Key": "session_id", "Value": row.id}],
                    },
                }
            )
    if row.state == SIGNED:
        body["signed"] = {
            "sha256": row.signed_sha256,
            "size": row.signed_size,
            "via": row.signed_via,
            "signed_at": None if row.signed_at is None else row.signed_at.isoformat(),
            "url": f"/api/v1/signing-sessions/{row.id}/signed",
        }
    return body


def _digest_of(row: SessionRow) -> bytes:
    import hashlib

    state = json.loads(row.session_json)
    return hashlib.sha256(base64.b64decode(state["signed_attrs"])).digest()


# --- two-step sessions ---------------------------------------------------------------------------


@routes.post("/api/v1/signing-sessions")
async def create_session(request: web.Request) -> web.Response:
    """Open a signing session for an officer's certificate on a PDF or an attachment."""
    caller = principal_of(request).organ_id
    desk = request.app[DESK]
    fields, pdf = await _form(request)
    try:
        if "certificate" not in fields:
            raise BadSigningRequest("send the officer's certificate ('certificate', PEM or DER)")
        certificate = load_certificates(
            _cert_bytes(fields["certificate"], "certificate"), "certificate"
        )[0]
        chain_values = fields.get("chain") or []
        if not isinstance(chain_values, list):
            chain_values = [chain_values]
        chain = tuple(
            c
            for value in chain_values
            for c in load_certificates(_cert_bytes(value, "chain"), "chain")
        )
        session_request = SessionRequest(
            certificate=certificate,
            chain=chain,
            level=level_of(fields.get("level")),
            appearance=appearance_of(fields),
            field_name=fields.get("field") or None,
            reason=fields.get("reason") or None,
            location=fields.get("location") or None,
        )
        if pdf is not None:
            if fields.get("document_id") is not None:
                raise BadSigningRequest("send either a 'pdf' or a 'document_id', not both")
            name = fields.get("pdf_name") or fields.get("name")
            source = PdfSource(pdf, name if isinstance(name, str) else None)
        else:
            document_id, index = fields.get("document_id"), fields.get("attachment")
            if not isinstance(document_id, str) or index is None:
                raise BadSigningRequest(
                    "send a 'pdf', or a 'document_id' with an 'attachment' index"
                )
            try:
                number = int(index)
            except (TypeError, ValueError) as exc:
                raise BadSigningRequest("'attachment' must be an integer index") from exc
            source = await desk.attachment_source(caller, document_id, number)
            pdf = source.path
    except BaseException:
        if pdf is not None:
            pdf.unlink(missing_ok=True)
        raise
    row, digest = await desk.create_session(caller, source, session_request)
    return web.json_response(
        session_json(request, row, digest),
        status=201,
        headers={"Location": f"/api/v1/signing-sessions/{row.id}"},
    )


@routes.get("/api/v1/signing-sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    """The caller's session: state, digest while pending, the signed PDF's link when done."""
    desk = request.app[DESK]
    row = await desk.session(principal_of(request).organ_id, request.match_info["id"])
    return web.json_response(session_json(request, row, _digest_of(row)))


@routes.put("/api/v1/signing-sessions/{id}/signature")
async def put_signature(request: web.Request) -> web.Response:
    """Finish the session with the raw signature (octet-stream, base64 text, or JSON
    ``{"signature": base64}``); the signed PDF is stored and linked."""
    desk = request.app[DESK]
    caller = principal_of(request).organ_id
    row = await desk.session(caller, request.match_info["id"])
    data = await request.read()
    if not data:
        raise HttpProblem("empty-body", "Send the raw signature of the digest.")
    if request.content_type == "application/json":
        try:
            body = json_loads(data)
        except JsonBodyError as exc:
            raise BadSigningRequest(str(exc)) from exc
        raw = _b64(body.get("signature") if isinstance(body, dict) else None, "signature")
    elif request.content_type == "text/plain":
        raw = _b64(data.decode("ascii", "replace").strip(), "signature")
    else:
        raw = data
    row = await desk.submit_signature(caller, row.id, raw)
    return web.json_response(session_json(request, row, None))


async def stream_pdf(
    request: web.Request, sha256: str, size: int, filename: str
) -> web.StreamResponse:
    """Stream a stored PDF (hash-checked) as an attachment named ``filename``."""
    objects = request.app[OBJECTS]
    await objects.require(sha256)  # reach the store before promising 200
    response = web.StreamResponse(
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-cache",
            "ETag": f'"{sha256}"',
        }
    )
    response.content_type = "application/pdf"
    response.content_length = size
    await response.prepare(request)
    if request.method != "HEAD":
        async for chunk in objects.open(sha256):
            await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/api/v1/signing-sessions/{id}/signed")
async def get_signed(request: web.Request) -> web.StreamResponse:
    """The signed PDF of a finished session (404 while it is not signed)."""
    desk = request.app[DESK]
    row = await desk.session(principal_of(request).organ_id, request.match_info["id"])
    if row.state != SIGNED or row.signed_sha256 is None or row.signed_size is None:
        raise HttpProblem("not-found", f"Signing session {row.id} is not signed yet.")
    return await stream_pdf(request, row.signed_sha256, row.signed_size, f"{row.id}.pdf")


# --- the VGCA browser plugin (JWT, no bearer token) ---------------------------------------------


def _jwt(request: web.Request) -> str | None:
    """The session JWT from ``?token=`` or ``Authorization: Bearer`` (longer than the agency
    tokens server.http.auth.bearer_token accepts)."""
    if request.query.get("token"):
        return request.query["token"]
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@routes.get(FILES_PREFIX + "{id}")
async def plugin_download(request: web.Request) -> web.StreamResponse:
    """``FileName`` of the plugin: the PDF to sign, for a download JWT of the session."""
    desk = request.app[DESK]
    row = await desk.plugin_session(request.match_info["id"], _jwt(request), DOWNLOAD)
    return await stream_pdf(request, row.source_sha256, row.source_size, f"{row.id}.pdf")


@routes.post(FILES_PREFIX + "{id}")
async def plugin_upload(request: web.Request) -> web.Response:
    """``FileUploadHandler`` of the plugin: the signed PDF (multipart file or raw body) is kept
    only if it is the served PDF plus exactly one valid signature by the enrolled
    certificate."""
    desk = request.app[DESK]
    row = await desk.plugin_session(request.match_info["id"], _jwt(request), UPLOAD)
    path: Path | None = None
    if request.content_type == "multipart/form-data":
        with readable_form():
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and (part.filename or part.name == "file"):
                    path = await _spool(request, _part_chunks(part))
                    break
        if path is None:
            raise HttpProblem("empty-body", "The form carries no file.")
    else:
        path = await _spool(request, request.content.iter_chunked(_CHUNK))
    row = await desk.accept_upload(row, path)
    return web.json_response(
        {"Status": 0, "Message": "", **session_json(request, row, None)}, status=200
    )


# --- the OpenAPI description of these routes (merged by server/http/openapi.py) ---------------


# The parts the descriptions of signing sessions and of seals (server/http/seals.py) share.
PDF_ANSWER = {"description": "The PDF", "content": {"application/pdf": {}}}
SIGNING_UNAUTHORIZED = problem("No valid bearer token, or no valid session JWT (`unauthorized`).")
SIGNING_NOT_FOUND = problem("Absent, or another agency's (`not-found`).")
SIGNING_UNAVAILABLE = problem("TSA, OCSP/CRL, seal token or trust roots unavailable.")
# A session's JWT secret is sealed at rest: reading a session needs the secrets key.
SECRETS_UNAVAILABLE = problem(
    "The secrets key that seals the session's JWT secret is missing or wrong "
    "(`secrets-unavailable`)."
)
SESSION_UNAVAILABLE = problem(
    "TSA, OCSP/CRL, seal token or trust roots unavailable, or the secrets key "
    "(`secrets-unavailable`)."
)


def openapi_paths() -> dict[str, Any]:
    """The ``paths`` entries of the routes above."""
    sid = path_param("id")
    token = query_param("token")
    return {
        "/api/v1/signing-sessions": {
            "post": {
                "summary": "Open a signing session for an officer's certificate (docs/signing.md)",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {}, "application/json": {}},
                },
                "responses": {
                    "201": json_body("The session: digest (base64, hex), expires_at, plugin URLs"),
                    "400": problem("Missing or unusable field (`bad-request`, `empty-body`)."),
                    "401": SIGNING_UNAUTHORIZED,
                    "404": SIGNING_NOT_FOUND,
                    "413": problem("The PDF is too large."),
                    "415": problem("Not JSON nor multipart."),
                    "422": problem("Not a PDF, encrypted, or certificate refused."),
                    "503": SESSION_UNAVAILABLE,
                },
            }
        },
        "/api/v1/signing-sessions/{id}": {
            "get": {
                "summary": "A signing session: state, digest, link to the signed PDF",
                "parameters": [sid],
                "responses": {
                    "200": json_body("The session"),
                    "401": SIGNING_UNAUTHORIZED,
                    "404": SIGNING_NOT_FOUND,
                    "503": SECRETS_UNAVAILABLE,
                },
            }
        },
        "/api/v1/signing-sessions/{id}/signature": {
            "put": {
                "summary": "Finish the session with the token's raw signature of the digest",
                "parameters": [sid],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {},
                        "text/plain": {},
                        "application/json": {},
                    },
                },
                "responses": {
                    "200": json_body("Signed: the session with `signed`"),
                    "400": problem("Empty or not base64."),
                    "401": SIGNING_UNAUTHORIZED,
                    "404": SIGNING_NOT_FOUND,
                    "409": problem("Signed already (`session-closed`)."),
                    "410": problem("Expired (`session-expired`)."),
                    "422": problem("The signature does not verify (`signature-invalid`)."),
                    "503": SESSION_UNAVAILABLE,
                },
            }
        },
        "/api/v1/signing-sessions/{id}/signed": {
            "get": {
                "summary": "The signed PDF of a finished session",
                "parameters": [sid],
                "responses": {
                    "200": PDF_ANSWER,
                    "401": SIGNING_UNAUTHORIZED,
                    "404": SIGNING_NOT_FOUND,
                    "503": SECRETS_UNAVAILABLE,
                },
            }
        },
        "/api/v1/signing-files/{id}": {
            "get": {
                "summary": "VGCA plugin `FileName`: the PDF to sign (session JWT, no bearer)",
                "security": [],
                "parameters": [sid, token],
                "responses": {
                    "200": PDF_ANSWER,
                    "401": SIGNING_UNAUTHORIZED,
                    "503": SECRETS_UNAVAILABLE,
                },
            },
            "post": {
                "summary": "VGCA plugin `FileUploadHandler`: the signed PDF (session JWT)",
                "security": [],
                "parameters": [sid, token],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {}, "application/pdf": {}},
                },
                "responses": {
                    "200": json_body("Accepted: `Status` 0 and the session"),
                    "400": problem("No file."),
                    "401": SIGNING_UNAUTHORIZED,
                    "409": problem("Signed already (`session-closed`)."),
                    "410": problem("Expired (`session-expired`)."),
                    "413": problem("Too large."),
                    "422": problem(
                        "Not the served PDF plus one valid signature by the "
                        "enrolled certificate (`signature-invalid`)."
                    ),
                    "503": SESSION_UNAVAILABLE,
                },
            },
        },
    }
