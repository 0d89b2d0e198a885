"""Signature verification over HTTP, on the web page ``/xac-minh`` and on arrival (issue 7).

* ``POST /api/v1/verify``: a PDF as the body (``application/pdf``) or as the ``file`` part of a
  ``multipart/form-data`` form -> the report of ``docs/verification.md`` (JSON), or the printable
  PDF report with ``Accept: application/pdf``.
* ``GET /api/v1/documents/{id}/attachments/{n}/verification``: the report of a received PDF
  attachment, as made when it arrived (``?refresh=1`` verifies again now).
* ``GET /api/v1/documents/{id}/verification``: the reports of all PDF attachments of a document.
* ``GET /xac-minh``: a Vietnamese page to drop a PDF and read each signature's verdict.

Every verification runs in :class:`signing.isolation.VerifierPool` worker processes (time and
memory budget per file) reached through a thread, so the event loop never waits on pyHanko.
Reports of received attachments are kept under ``<data_dir>/verification/`` by the SHA-256 of
the attachment bytes (the report *at arrival* is evidence; later checks are made on request).

On arrival: :func:`setup` wraps the app's ``Exchange.accept_document`` so that every accepted
document's PDF attachments are verified in the background after the sender has its receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from server.appkeys import CONFIG, EXCHANGE
from server.auth import principal_of
from server.http.errors import HttpProblem

log = logging.getLogger("lienthong.verify")

MAX_VERIFY_BYTES = 50 * 1024 * 1024
PAGE_PATH = Path(__file__).resolve().parent / "pages" / "xac-minh.html"
ONLINE_ENV = "LIENTHONG_VERIFY_ONLINE"  # "0" turns online OCSP/CRL fetching off
PDF_TYPES = {"application/pdf", "application/x-pdf"}

routes = web.RouteTableDef()


@dataclass
class Verifier:
    """The server's verification service: a worker pool, a policy and the arrival store."""

    pool: Any
    policy: Any
    store: Path
    limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def verify(self, data: bytes, name: str | None) -> Any:
        """The report on ``data`` (a verdict even for hostile input; never raises for it)."""
        async with self.limit:
            return await self.pool.averify(data, self.policy, file_name=name)

    def _path(self, sha256: str) -> Path:
        return self.store / f"{sha256}.json"

    def stored(self, sha256: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._path(sha256).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def keep(self, sha256: str, report: dict[str, Any]) -> None:
        path = self._path(sha256)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    async def attachment(
        self, exchange: Any, caller: str, doc_id: str, index: int, *, refresh: bool = False
    ) -> dict[str, Any]:
        """The report of attachment ``index`` of a document visible to ``caller``."""
        import hashlib

        decoded = await exchange.decode_attachment(caller, doc_id, index)
        try:
            data = await asyncio.to_thread(decoded.path.read_bytes)
        finally:
            decoded.path.unlink(missing_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        if not refresh:
            known = self.stored(digest)
            if known is not None:
                return known
        if not _is_pdf(decoded.name, decoded.content_type, data):
            raise HttpProblem(
                "unsupported-media-type", f"Attachment {index} is not a PDF: nothing to verify."
            )
        report: dict[str, Any] = (await self.verify(data, decoded.name)).to_json()
        if not refresh or self.stored(digest) is None:
            await asyncio.to_thread(self.keep, digest, report)
        return report

    async def on_arrival(self, exchange: Any, sender: str, doc_id: str) -> None:
        """Verify every PDF attachment of a newly accepted document (errors are logged)."""
        try:
            meta = await exchange.meta(sender, doc_id)
            for entry in meta.get("attachments") or []:
                if not _looks_pdf(entry.get("name"), entry.get("content_type")):
                    continue
                report = await self.attachment(exchange, sender, doc_id, int(entry["index"]))
                log.info(
                    "attachment verified",
                    extra={
                        "id": doc_id,
                        "index": entry["index"],
                        "indication": report.get("indication"),
                    },
                )
        except Exception:  # background work: never let it take the server down
            log.exception("verification on arrival failed", extra={"id": doc_id})

    def schedule(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for background verifications (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


VERIFIER: web.AppKey[Verifier] = web.AppKey("verifier", Verifier)


def _looks_pdf(name: str | None, content_type: str | None) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in PDF_TYPES or (name or "").lower().endswith(".pdf")


def _is_pdf(name: str | None, content_type: str | None, data: bytes) -> bool:
    return _looks_pdf(name, content_type) or data[:1024].lstrip().startswith(b"%PDF-")


def _wrap_accept(exchange: Any, verifier: Verifier) -> None:
    """Verify attachments after each accepted document (the receipt is not delayed)."""
    original: Callable[..., Awaitable[Any]] = exchange.accept_document

    async def accept_document(caller: str, package: Any) -> Any:
        receipt = await original(caller, package)
        if getattr(receipt, "created", False):
            doc = receipt.document
            verifier.schedule(verifier.on_arrival(exchange, doc.sender, doc.id))
        return receipt

    exchange.accept_document = accept_document


async def verifier_context(app: web.Application) -> AsyncIterator[None]:
    """The verifier pool for the app's lifetime (workers start on first use)."""
    from signing.isolation import VerifierPool
    from signing.verify import VerificationPolicy

    config = app[CONFIG]
    store = config.storage.data_dir / "verification"
    store.mkdir(parents=True, exist_ok=True)
    online = os.environ.get(ONLINE_ENV, "1") != "0"
    policy = VerificationPolicy.from_trust_store(online=online)
    pool = VerifierPool(size=2)
    verifier = Verifier(pool=pool, policy=policy, store=store)
    app[VERIFIER] = verifier
    if EXCHANGE in app:
        _wrap_accept(app[EXCHANGE], verifier)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(verifier.drain(), timeout=30)
        await asyncio.to_thread(pool.close)


async def _read_limited(stream: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        # StreamReader.read(n) for a body, BodyPartReader.read_chunk(n) for a form part
        reader = getattr(stream, "read_chunk", None) or stream.read
        chunk = await reader(1024 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise HttpProblem(
                "payload-too-large", f"The PDF is larger than {limit // (1024 * 1024)} MB."
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploaded_pdf(request: web.Request) -> tuple[bytes, str | None]:
    ctype = request.content_type
    if ctype == "multipart/form-data":
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise HttpProblem("empty-body", "The form carries no file (field 'file').")
            if isinstance(part, BodyPartReader) and (part.name == "file" or part.filename):
                data = await _read_limited(part, MAX_VERIFY_BYTES)
                return data, part.filename
    if ctype not in PDF_TYPES | {"application/octet-stream"}:
        raise HttpProblem(
            "unsupported-media-type",
            "Send a PDF as application/pdf, or as the 'file' field of multipart/form-data.",
        )
    return await _read_limited(request.content, MAX_VERIFY_BYTES), None


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
    """Verify an uploaded PDF: JSON report, or the PDF report with ``Accept: application/pdf``."""
    principal_of(request)  # authenticated callers only (the middleware has checked the token)
    data, name = await _uploaded_pdf(request)
    if not data:
        raise HttpProblem("empty-body", "The request carried no PDF.")
    name = name or request.query.get("name") or None
    report = await request.app[VERIFIER].verify(data, name)
    return await _render(request, report.to_json())


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
        if not _looks_pdf(entry.get("name"), entry.get("content_type")):
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
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def setup(app: web.Application) -> None:
    """Register the routes and the verifier (pool, arrival hook) on ``app``."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(verifier_context)


# For the OpenAPI document (server/http/openapi.py): the paths this module serves.
OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/verify": {
        "post": {
            "summary": "Verify the signatures of a PDF (body or multipart 'file')",
            "responses": {
                "200": {"description": "The report (JSON, or PDF with Accept: application/pdf)"},
                "400": {"description": "Empty body"},
                "401": {"description": "No or bad token"},
                "413": {"description": "Larger than 50 MB"},
                "415": {"description": "Not a PDF upload"},
            },
        }
    },
    "/api/v1/documents/{id}/attachments/{n}/verification": {
        "get": {
            "summary": "Verification report of a received PDF attachment",
            "responses": {
                "200": {"description": "The report"},
                "401": {"description": "No or bad token"},
                "404": {"description": "No such document or attachment"},
                "415": {"description": "The attachment is not a PDF"},
            },
        }
    },
    "/api/v1/documents/{id}/verification": {
        "get": {
            "summary": "Verification reports of all PDF attachments",
            "responses": {
                "200": {"description": "One entry per PDF attachment"},
                "401": {"description": "No or bad token"},
                "404": {"description": "No such document"},
            },
        }
    },
}
