"""Every error answer of the API as RFC 9457 ``application/problem+json``, mapped in ONE place.

A problem ``type`` is ``/problems/<slug>`` (relative to the axis, served as a short HTML page);
the slugs are stable and listed in :data:`PROBLEM_TYPES` and in docs/api.md. ``detail`` says in
plain words what was wrong with *this* request. Unexpected exceptions become ``internal-error``
(500) with the request id, logged with their traceback; no traceback ever reaches the client.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

import edxml
import signing
from server import exchange
from server.archive import records as archive
from server.http.appkeys import REQUEST_ID
from server.runtime.secretbox import SecretsError
from server.signatures import sessions as signing_desk
from server.signatures import verification
from storage import errors as storage_errors

log = logging.getLogger("lienthong.http")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_PATH = "/problems/"


@dataclass(frozen=True)
class ProblemType:
    """One kind of error answer: its slug (the stable part of ``type``), status and title."""

    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        """The ``type`` member of the problem document."""
        return PROBLEM_PATH + self.slug


_TYPES = [
    ProblemType("bad-request", 400, "Bad request", "The request itself is unusable."),
    ProblemType(
        "invalid-query",
        400,
        "Invalid query parameter",
        "A query parameter (limit, after, kind, state) has a value that is not allowed.",
    ),
    ProblemType("empty-body", 400, "Empty body", "The request carried no package."),
    ProblemType(
        "malformed-xml",
        400,
        "Malformed XML",
        "The body is not well-formed XML (or not valid UTF-8).",
    ),
    ProblemType(
        "unsafe-xml",
        400,
        "Unsafe XML",
        "The body uses a DTD, entities or external references, which are refused.",
    ),
    ProblemType(
        "unauthorized",
        401,
        "Authentication required",
        "No valid bearer token: send `Authorization: Bearer <token>`.",
    ),
    ProblemType(
        "sender-mismatch",
        403,
        "Sender is not the caller",
        "The package's From/OrganId is not the agency the token belongs to.",
    ),
    ProblemType(
        "not-original-sender",
        403,
        "Not the original sender",
        "Only the sender of a document may revoke, update or replace it.",
    ),
    ProblemType(
        "status-not-allowed",
        403,
        "Status code not allowed for the caller",
        "Recipients may send 01-06, 15 and 16; only the sender may send 13.",
    ),
    ProblemType(
        "role-not-allowed",
        403,
        "Not allowed for this token's role",
        "An archivist token may only read documents and the archive of its agency.",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "No such resource, or it belongs to other agencies (the two are not told apart).",
    ),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The resource exists but not with this HTTP method.",
    ),
    ProblemType(
        "duplicate-document",
        409,
        "DocumentId already used",
        "The sender already sent another package with this DocumentId.",
    ),
    ProblemType(
        "routing-loop",
        409,
        "Routing loop",
        "The package already passed through this axis (its id is in an earlier TraceHeader).",
    ),
    ProblemType(
        "payload-too-large",
        413,
        "Package too large",
        "The body exceeds the configured maximum size (server.max_body_bytes).",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported content type",
        "Send the package as application/xml, text/xml or application/octet-stream.",
    ),
    ProblemType(
        "range-not-satisfiable",
        416,
        "Range not satisfiable",
        "The requested byte range lies outside the stored package.",
    ),
    ProblemType(
        "not-edxml",
        422,
        "Not an edXML package",
        "Well-formed XML, but not an edXML package or status message.",
    ),
    ProblemType(
        "wrong-kind",
        422,
        "Wrong kind of package",
        "A status message sent to /documents, or a document sent to /statuses.",
    ),
    ProblemType(
        "invalid-value",
        422,
        "Invalid value",
        "A value in the package cannot be read (a date that is no date...).",
    ),
    ProblemType(
        "limit-exceeded",
        422,
        "Package exceeds a parser limit",
        "Too deep, too many attachments, or an attachment that expands too much.",
    ),
    ProblemType(
        "invalid-package",
        422,
        "Invalid edXML package",
        "The package breaks edXML rules; `problems` lists each with its location.",
    ),
    ProblemType(
        "unknown-recipient",
        422,
        "Unknown recipient",
        "One or more To/OrganId are not agencies known to this axis; see `unknown`.",
    ),
    ProblemType(
        "not-routable",
        422,
        "Nothing to route",
        "A package forwarded by another axis names no recipient this axis routes.",
    ),
    ProblemType(
        "original-not-found",
        422,
        "Original document not found",
        "A revoke/update/replace names a document the caller never sent here.",
    ),
    ProblemType(
        "unknown-document",
        422,
        "Unknown document",
        "The status message's ResponseFor names no document the caller took part in.",
    ),
    ProblemType(
        "session-closed",
        409,
        "Signing session already signed",
        "The signing session was signed already; it cannot be signed twice.",
    ),
    ProblemType(
        "session-expired",
        410,
        "Signing session expired",
        "The signing session expired before it was signed; create a new one.",
    ),
    ProblemType(
        "invalid-pdf",
        422,
        "Not a PDF that can be signed",
        "The file is not a PDF, is corrupt, or is encrypted.",
    ),
    ProblemType(
        "certificate-rejected",
        422,
        "Signer's certificate refused",
        "The signer's certificate is expired, revoked, untrusted or unreadable: nothing signed.",
    ),
    ProblemType(
        "signature-invalid",
        422,
        "Signature refused",
        "The raw signature does not verify against the enrolled certificate, or the uploaded "
        "PDF is not the served PDF plus exactly one valid signature by that certificate.",
    ),
    ProblemType(
        "no-seal-key",
        422,
        "No seal key for the agency",
        "The axis holds no seal key for the calling agency (signing.seal_keys).",
    ),
    ProblemType(
        "signing-failed",
        422,
        "Signing failed",
        "The PDF could not be signed as asked; nothing was stored.",
    ),
    ProblemType(
        "signing-unavailable",
        503,
        "Signing unavailable",
        "A service signing needs (TSA, OCSP/CRL, the seal token, trust roots) is unavailable; "
        "nothing was stored. Retry later.",
    ),
    ProblemType(
        "internal-error",
        500,
        "Internal error",
        "An unexpected failure; quote `request_id` when reporting it.",
    ),
    ProblemType(
        "verification-busy",
        503,
        "Verification busy",
        "Too many signature verifications are in progress; retry after the Retry-After delay.",
    ),
    ProblemType(
        "storage-full",
        503,
        "Storage full",
        "The axis is out of disk space; nothing was stored. Retry later.",
    ),
    ProblemType(
        "storage-unavailable",
        503,
        "Storage unavailable",
        "The database or object store failed; nothing was stored. Retry later.",
    ),
    ProblemType(
        "secrets-unavailable",
        503,
        "Secrets key unavailable",
        "The key that protects stored secrets is missing or wrong; the operator must fix it.",
    ),
]
PROBLEM_TYPES: dict[str, ProblemType] = {t.slug: t for t in _TYPES}


class HttpProblem(Exception):
    """A request-level refusal raised by handlers: its slug, plain-words detail, extra members."""

    def __init__(
        self, slug: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        if slug not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem slug {slug}")
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


@contextlib.contextmanager
def readable_form() -> Iterator[None]:
    """Around the reading of a ``multipart/form-data`` body: aiohttp's errors for a broken one
    (``ValueError``: no boundary, no starting boundary, bad part encoding;
    ``HttpProcessingError``: a malformed part header) become a ``bad-request`` problem instead
    of an internal error."""
    try:
        yield
    except (ValueError, HttpProcessingError) as exc:
        reason = getattr(exc, "message", None) or str(exc)  # HttpProcessingError's own words
        raise HttpProblem("bad-request", f"The multipart form cannot be read: {reason}.") from None


# The one mapping from exception classes to problem slugs; the first matching class wins, so
# subclasses come before their bases.
_EXCEPTION_SLUGS: list[tuple[type[BaseException], str]] = [
    (exchange.EmptyPackage, "empty-body"),
    (exchange.SenderMismatch, "sender-mismatch"),
    (exchange.NotOriginalSender, "not-original-sender"),
    (exchange.StatusNotAllowed, "status-not-allowed"),
    (exchange.DocumentNotFound, "not-found"),
    (archive.NotInArchive, "not-found"),
    (verification.NotAPdf, "unsupported-media-type"),
    (verification.VerifierBusy, "verification-busy"),
    (exchange.DuplicateDocument, "duplicate-document"),
    (exchange.WrongKind, "wrong-kind"),
    (exchange.InvalidPackage, "invalid-package"),
    (exchange.UnknownRecipients, "unknown-recipient"),
    (exchange.OriginalNotFound, "original-not-found"),
    (exchange.UnknownDocument, "unknown-document"),
    (exchange.TraceNotPlaced, "invalid-package"),
    (exchange.RoutingLoop, "routing-loop"),
    (exchange.NotRoutable, "not-routable"),
    (exchange.ExchangeError, "bad-request"),
    (edxml.UnsafeXmlError, "unsafe-xml"),
    (edxml.NotWellFormedError, "malformed-xml"),
    (edxml.LimitExceededError, "limit-exceeded"),
    (edxml.NotEdxmlError, "not-edxml"),
    (edxml.InvalidValueError, "invalid-value"),
    (edxml.InvalidOrganIdError, "invalid-value"),
    (edxml.EdxmlError, "invalid-package"),
    (signing_desk.BadSigningRequest, "bad-request"),
    (signing_desk.SessionNotFound, "not-found"),
    (signing_desk.SessionExpired, "session-expired"),
    (signing_desk.SessionClosed, "session-closed"),
    (signing_desk.SignatureRejected, "signature-invalid"),
    (signing_desk.UploadUnauthorized, "unauthorized"),
    (signing_desk.NoSealKey, "no-seal-key"),
    (signing_desk.SigningUnavailable, "signing-unavailable"),
    (signing.InputPdfError, "invalid-pdf"),
    (signing.CertificateRejectedError, "certificate-rejected"),
    (signing.SessionError, "signature-invalid"),
    (signing.AppearanceError, "bad-request"),
    (signing.TimestampError, "signing-unavailable"),
    (signing.RevocationUnavailableError, "signing-unavailable"),
    (signing.TokenError, "signing-unavailable"),
    (signing.SigningError, "signing-failed"),
    (SecretsError, "secrets-unavailable"),
    (storage_errors.StorageFull, "storage-full"),
    (storage_errors.NotFound, "not-found"),
    (storage_errors.StorageError, "storage-unavailable"),
]

_HTTP_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    416: "range-not-satisfiable",
}


def problem_response(
    slug: str,
    detail: str,
    *,
    request: web.Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """The problem+json answer for ``slug``; ``extra`` members are added to the document."""
    ptype = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": ptype.uri,
        "title": ptype.title,
        "status": ptype.status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.path
        request_id = request.get(REQUEST_ID)
        if request_id:
            body["request_id"] = request_id
    body.update(extra)
    all_headers = dict(headers or {})
    if ptype.status == 401:
        all_headers.setdefault("WWW-Authenticate", 'Bearer realm="lienthong"')
    if slug in {
        "storage-full",
        "storage-unavailable",
        "signing-unavailable",
        "secrets-unavailable",
    }:
        all_headers.setdefault("Retry-After", "30")
    return web.Response(
        status=ptype.status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=all_headers,
    )


def _detail_for(exc: BaseException) -> str:
    if isinstance(exc, edxml.EdxmlError):
        return str(exc)
    detail = getattr(exc, "detail", None)
    return str(detail) if detail else str(exc) or type(exc).__name__


def slug_for(exc: BaseException) -> str | None:
    """The problem slug of an exception, or None when it is unexpected (a bug: 500)."""
    for cls, slug in _EXCEPTION_SLUGS:
        if isinstance(exc, cls):
            return slug
    return None


def response_for_exception(request: web.Request, exc: BaseException) -> web.Response:
    """Map any exception to its problem answer; log unexpected ones with their traceback."""
    if isinstance(exc, HttpProblem):
        return problem_response(
            exc.slug, exc.detail, request=request, headers=exc.headers, **exc.extra
        )
    slug = slug_for(exc)
    if slug is None:
        log.error("unexpected error", exc_info=exc)
        return problem_response(
            "internal-error",
            "The axis failed unexpectedly; nothing was promised. Quote the request id.",
            request=request,
        )
    if slug.startswith("storage-"):
        log.error("storage failure", exc_info=exc)
        detail = (
            "The axis is out of storage space; nothing was stored. Retry later."
            if slug == "storage-full"
            else "The axis's storage failed; nothing was stored. Retry later."
        )
        return problem_response(slug, detail, request=request)
    if isinstance(exc, verification.VerifierBusy):
        headers = {"Retry-After": str(exc.retry_after)}
        return problem_response(slug, _detail_for(exc), request=request, headers=headers)
    extra = dict(getattr(exc, "extra", {}) or {})
    if isinstance(exc, edxml.EdxmlError):
        if exc.path:
            extra["path"] = exc.path
        if exc.line is not None:
            extra["line"] = exc.line
    return problem_response(slug, _detail_for(exc), request=request, **extra)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error raised below into problem+json (aiohttp's own 404/405/413 included)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = _HTTP_STATUS_SLUGS.get(exc.status)
        if slug is None:
            slug = "bad-request" if exc.status < 500 else "internal-error"
        headers = {}
        if exc.status == 405 and "Allow" in exc.headers:
            headers["Allow"] = exc.headers["Allow"]
        return problem_response(
            slug, exc.reason or exc.text or "", request=request, headers=headers
        )
    except Exception as exc:
        return response_for_exception(request, exc)
