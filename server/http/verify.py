"""Signature verification over HTTP and on the web page ``/xac-minh`` (issue 7).

* ``POST /api/v1/verify``: a PDF as the body (``application/pdf``) or as the ``file`` part of a
  ``multipart/form-data`` form -> the report of ``docs/verification.md`` (JSON), or the printable
  PDF report with ``Accept: application/pdf``. For agency systems (bearer token).
* ``POST /api/v1/public/verify``: the same without a token, for the public page: bounded
  (``[verification] public_max_bytes``, 50 MB by default; nothing stored; at most
  ``public_slots`` verified at once once their body has arrived, else 503 + Retry-After).

Uploads of both routes are received into the spool directory (never whole in memory; read once
a verifier worker is free) and hold one of ``upload_slots`` from their first byte to their
answer (503 + Retry-After beyond); a client that stops sending is cut off by
``server.body_idle_timeout`` (server/app/connections.py).
* ``GET /api/v1/documents/{id}/attachments/{n}/verification``: the report of a received PDF
  attachment: the latest stored, the one made at arrival until a ``?refresh=1`` verifies again
  and stores a new one beside it.
* ``GET /api/v1/documents/{id}/verification``: the reports of all PDF attachments of a document.
* ``GET /xac-minh``: a Vietnamese page to drop a PDF and read each signature's verdict (public).

The service itself (worker pool, arrival hook, stored reports, summaries for ``meta`` and the
inbox) is :class:`server.signatures.verification.Verifier`; these handlers only read requests and
write
answers. :func:`verifier_context` registers the verifier's arrival hook on the app's Exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from server.http.appkeys import CONFIG, DATABASE, EXCHANGE, OBJECTS, VERIFIER
from server.http.auth import principal_of
from server.http.errors import HttpProblem, readable_form
from server.http.headers import html_page
from server.http.metrics import metrics_of
from server.http.openapi_parts import path_param
from server.runtime.audit import record_verification_request
from server.runtime.config import VerificationSettings
from server.runtime.spool import BodyTooLarge, SpooledFile, receive_file, spool_file
from server.signatures.verdicts import PDF_TYPES, looks_pdf, verdict_of
from server.signatures.verification import Verifier
from storage.errors import StorageFull

# The defaults of the [verification] settings (server/runtime/config.py), which the app uses.
MAX_VERIFY_BYTES = VerificationSettings.public_max_bytes
PUBLIC_SLOTS = VerificationSettings.public_slots  # 2 workers + 2 waiting
PAGE_PATH = Path(__file__).resolve().parent / "pages" / "xac-minh.html"
ONLINE_ENV = "LIENTHONG_VERIFY_ONLINE"  # "0" turns online OCSP/CRL fetching off
PUBLIC_VERIFY_PATH = "/api/v1/public/verify"
LEGACY_DIR = "verification"  # <data_dir>/verification/: report files of earlier versions

routes = web.RouteTableDef()

__all__ = ["MAX_VERIFY_BYTES", "VERIFIER", "Verifier", "openapi_paths", "routes", "setup"]


async def verifier_context(app: web.Application) -> AsyncIterator[None]:
    """The verifier for the app's lifetime (workers start on first use), hooked on arrival."""
    from server.runtime.library_warnings import PROCESS_SETUP
    from signing.isolation import VerifierPool
    from signing.verify import VerificationPolicy

    config = app[CONFIG]
    settings = config.verification
    online = settings.online and os.environ.get(ONLINE_ENV, "1") != "0"
    # Anyone may upload a PDF here, and its certificates name what to fetch: never follow a
    # CA-issuers URL (named before the chain is known to reach a trusted root), and fetch
    # OCSP/CRL from public addresses only, or the configured networks (issue 18, finding 2).
    allow = settings.fetch_allow
    if config.devpki.dir is not None:
        allow = (*allow, "127.0.0.1", "::1")  # the demo PKI's OCSP/CRL, served on loopback
    policy = VerificationPolicy.from_trust_store(
        online=online, fetch_issuers=False, fetch_allow=allow
    )
    pool = VerifierPool(size=settings.workers, preload=PROCESS_SETUP)
    exchange = app.get(EXCHANGE)
    verifier = Verifier(
        pool=pool,
        policy=policy,
        database=app[DATABASE],
        objects=app[OBJECTS],
        exchange=exchange,
        public_slots=settings.public_slots,
        upload_slots=settings.upload_slots,
        retry_after=settings.retry_after,
        public_max_bytes=settings.public_max_bytes,
        upload_max_bytes=settings.upload_max_bytes,
        refresh_min_interval=settings.refresh_min_interval,
        metrics=metrics_of(app),
    )
    try:
        # Reports of earlier versions were files; they join the store (and its lock) first.
        await verifier.import_legacy(config.storage.data_dir / LEGACY_DIR)
    except BaseException:
        await asyncio.to_thread(pool.close)
        raise
    app[VERIFIER] = verifier
    if exchange is not None:
        exchange.on_accepted.append(verifier.on_accepted)
    try:
        yield
    finally:
        if exchange is not None and verifier.on_accepted in exchange.on_accepted:
            exchange.on_accepted.remove(verifier.on_accepted)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(verifier.drain(), timeout=30)
        await asyncio.to_thread(pool.close)


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    # StreamReader.read(n) for a body, BodyPartReader.read_chunk(n) for a form part
    reader = getattr(stream, "read_chunk", None) or stream.read
    while chunk := await reader(1024 * 1024):
        yield chunk


async def _spooled(request: web.Request, stream: Any, limit: int) -> SpooledFile:
    """The uploaded file, received into the spool directory (never whole in memory)."""
    try:
        return await receive_file(
            _chunks(stream), request.app[CONFIG].spool_dir, limit=limit, suffix=".pdf"
        )
    except BodyTooLarge:
        raise _too_large(limit) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull("the spool directory is full") from exc
        raise


def _too_large(limit: int) -> HttpProblem:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return HttpProblem("payload-too-large", f"The PDF is larger than {size}.")


async def _uploaded_pdf(request: web.Request, limit: int) -> tuple[SpooledFile, str | None]:
    """The uploaded PDF spooled to a file the caller must remove (``spool_file``), and the
    file name the form gave."""
    declared = request.content_length
    if declared is not None and declared > limit + 64 * 1024:  # room for a form
        raise _too_large(limit)
    ctype = request.content_type
    if ctype == "multipart/form-data":
        with readable_form():
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    raise HttpProblem("empty-body", "The form carries no file (field 'file').")
                if isinstance(part, BodyPartReader) and (part.name == "file" or part.filename):
                    return await _spooled(request, part, limit), part.filename
    if ctype not in PDF_TYPES | {"application/octet-stream"}:
        raise HttpProblem(
            "unsupported-media-type",
            "Send a PDF as application/pdf, or as the 'file' field of multipart/form-data.",
        )
    return await _spooled(request, request.content, limit), None


def _readable_name(name: str | None) -> str | None:
    """The file name as text that can be written out: aiohttp keeps the bytes of invalid
    UTF-8 as lone surrogates, which no JSON or PDF answer can encode (issue 18, finding 9);
    they become U+FFFD."""
    if name is None or name.isascii():
        return name
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no received byte
        raw = name.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def _wants_pdf(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/pdf" in accept and "application/json" not in accept


async def _render(request: web.Request, report: dict[str, Any]) -> web.StreamResponse:
    if not _wants_pdf(request):
        return web.json_response(report, dumps=lambda o: json.dumps(o, ensure_ascii=False))
    from signing.report import ValidationReport
    from signing.report_pdf import render_pdf_report

    pdf = await asyncio.to_thread(render_pdf_report, ValidationReport.from_json(report))
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="bao-cao-xac-minh.pdf"'},
    )


@routes.post("/api/v1/verify")
async def verify_upload(request: web.Request) -> web.StreamResponse:
    """Verify an uploaded PDF: JSON report, or the PDF report with ``Accept: application/pdf``.

    For an authenticated caller (not the anonymous endpoint, which would let anyone flood the
    chain) a ``verification.request`` is recorded."""
    caller = principal_of(request).organ_id  # the middleware has checked the token
    verifier = request.app[VERIFIER]
    async with verifier.upload_slot():
        upload, name = await _uploaded_pdf(request, verifier.upload_max_bytes)
        with spool_file(upload):
            report = await _verify(request, upload, name)
            await record_verification_request(
                verifier.database, caller, upload.sha256, upload.size, verdict_of(report)
            )
        return await _render(request, report)


@routes.post(PUBLIC_VERIFY_PATH)
async def verify_public(request: web.Request) -> web.StreamResponse:
    """``/api/v1/verify`` for anyone (the public page): nothing stored, bounded; 503 when busy."""
    verifier = request.app[VERIFIER]
    async with verifier.upload_slot():
        upload, name = await _uploaded_pdf(request, verifier.public_max_bytes)
        with spool_file(upload):
            # Only once the body is here: a client that stalls its upload holds no public slot.
            async with verifier.public_slot():
                report = await _verify(request, upload, name)
        return await _render(request, report)


async def _verify(request: web.Request, upload: SpooledFile, name: str | None) -> dict[str, Any]:
    """The report on the spooled upload (read into memory once a verifier worker is free)."""
    if not upload.size:
        raise HttpProblem("empty-body", "The request carried no PDF.")
    name = _readable_name(name or request.query.get("name") or None)
    return (await request.app[VERIFIER].verify(upload.path, name)).to_json()


@routes.get(r"/api/v1/documents/{id}/attachments/{n:\d+}/verification")
async def attachment_verification(request: web.Request) -> web.StreamResponse:
    """The verification report of PDF attachment ``n`` of a document (sender and recipients)."""
    report = await request.app[VERIFIER].attachment(
        request.app[EXCHANGE],
        principal_of(request).organ_id,
        request.match_info["id"],
        int(request.match_info["n"]),
        refresh=request.query.get("refresh") in ("1", "true"),
    )
    return await _render(request, report)


@routes.get("/api/v1/documents/{id}/verification")
async def document_verification(request: web.Request) -> web.Response:
    """The reports of every PDF attachment of a document, with a one-line verdict each."""
    exchange = request.app[EXCHANGE]
    caller = principal_of(request).organ_id
    meta = await exchange.meta(caller, request.match_info["id"])
    items = []
    for entry in meta.get("attachments") or []:
        if not looks_pdf(entry.get("name"), entry.get("content_type")):
            continue
        report = await request.app[VERIFIER].attachment(
            exchange, caller, request.match_info["id"], int(entry["index"])
        )
        items.append(
            {
                "index": entry["index"],
                "name": entry.get("name"),
                "indication": report.get("indication"),
                "all_passed": report.get("all_passed"),
                "summary_vi": report.get("summary_vi"),
                "report": report,
            }
        )
    return web.json_response(
        {"id": request.match_info["id"], "attachments": items},
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


@routes.get("/xac-minh")
async def verify_page(request: web.Request) -> web.Response:
    """The Vietnamese verification page (plain HTML and a little JS, no CDN)."""
    html = await asyncio.to_thread(PAGE_PATH.read_text, encoding="utf-8")
    return html_page(request, html)  # its script and style get the request's nonce


def setup(app: web.Application) -> None:
    """Register the routes and the verifier (pool, arrival hook) on ``app``."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(verifier_context)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the routes above (merged by server/http/openapi.py)."""
    report = {"description": "The report (JSON, or PDF with Accept: application/pdf)"}
    empty = {"description": "Empty body"}
    no_token = {"description": "No or bad token"}
    not_pdf = {"description": "Not a PDF upload"}
    return {
        "/api/v1/verify": {
            "post": {
                "summary": "Verify the signatures of a PDF (body or multipart 'file')",
                "responses": {
                    "200": report,
                    "400": empty,
                    "401": no_token,
                    "413": {"description": "Larger than verification.upload_max_bytes (50 MB)"},
                    "415": not_pdf,
                    "503": {
                        "description": "verification.upload_slots uploads (of either verify "
                        "route) in progress; see Retry-After"
                    },
                },
            }
        },
        PUBLIC_VERIFY_PATH: {
            "post": {
                "summary": "Verify the signatures of a PDF without a token (the /xac-minh page)",
                "description": "Public and bounded: at most verification.public_max_bytes (50 MB), "
                "nothing is stored, a few uploads at once (verification.upload_slots, shared "
                "with /api/v1/verify) and fewer verified at once once arrived "
                "(verification.public_slots); beyond that 503 with Retry-After "
                "(docs/verification.md).",
                "security": [],
                "responses": {
                    "200": report,
                    "400": empty,
                    "413": {"description": "Larger than verification.public_max_bytes (50 MB)"},
                    "415": not_pdf,
                    "503": {"description": "Too many verifications in progress; see Retry-After"},
                },
            }
        },
        "/api/v1/documents/{id}/attachments/{n}/verification": {
            "get": {
                "summary": "Verification report of a received PDF attachment",
                "parameters": [path_param("id"), path_param("n", {"type": "integer"})],
                "responses": {
                    "200": {"description": "The report"},
                    "401": no_token,
                    "404": {"description": "No such document or attachment"},
                    "415": {"description": "The attachment is not a PDF"},
                },
            }
        },
        "/api/v1/documents/{id}/verification": {
            "get": {
                "summary": "Verification reports of all PDF attachments",
                "parameters": [path_param("id")],
                "responses": {
                    "200": {"description": "One entry per PDF attachment"},
                    "401": no_token,
                    "404": {"description": "No such document"},
                },
            }
        },
    }
