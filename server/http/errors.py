"""Every error answer of the API as RFC 9457 ``application/problem+json``, mapped in ONE place.

A problem ``type`` is ``/problems/<slug>`` (relative to the axis, served as a short HTML page);
the slugs are stable and listed in :data:`PROBLEM_TYPES` and in docs/api.md. ``detail`` says in
plain words what was wrong with *this* request. Unexpected exceptions become ``internal-error``
(500) with the request id, logged with their traceback; no traceback ever reaches the client.

How an exception finds its answer, without this module importing any domain:

- a domain's refusal is a :class:`~server.runtime.problems.DomainError` that names its problem
  type (defined beside it, in its domain's ``errors``); its ``detail``, ``extra`` members and
  ``headers`` go into the answer as they are;
- a handler's own refusal is an :class:`HttpProblem` naming a slug;
- the libraries' errors (edxml, signing, storage) are mapped by :data:`_LIBRARY_SLUGS`, to
  problem types their domains define (a test checks that the app defines each).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

import edxml
import signing
from server.http.appkeys import REQUEST_ID
from server.runtime.problems import PROBLEM_PATH as PROBLEM_PATH
from server.runtime.problems import PROBLEM_TYPES as PROBLEM_TYPES
from server.runtime.problems import DomainError, ProblemType, problem_type
from storage import errors as storage_errors

log = logging.getLogger("lienthong.http")

PROBLEM_CONTENT_TYPE = "application/problem+json"

# --- the types of the HTTP layer itself ------------------------------------------------------

problem_type(
    "invalid-query",
    400,
    "Invalid query parameter",
    "A query parameter (limit, after, kind, state) has a value that is not allowed.",
)
problem_type(
    "role-not-allowed",
    403,
    "Not allowed for this token's role",
    "The token's role does not reach this operation: an archivist token only reads documents "
    "and the archive of its agency, an admin token only `/metrics` and `/api/v1/audit`.",
)
problem_type(
    "method-not-allowed",
    405,
    "Method not allowed",
    "The resource exists but not with this HTTP method.",
)
problem_type(
    "payload-too-large",
    413,
    "Package too large",
    "The body exceeds the configured maximum size (server.max_body_bytes).",
)
problem_type(
    "range-not-satisfiable",
    416,
    "Range not satisfiable",
    "The requested byte range lies outside the stored package.",
)
INTERNAL_ERROR = problem_type(
    "internal-error",
    500,
    "Internal error",
    "An unexpected failure; quote `request_id` when reporting it.",
)


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


# The libraries' errors and their problem slugs; the first matching class wins, so subclasses
# come before their bases.
_LIBRARY_SLUGS: list[tuple[type[BaseException], str]] = [
    (edxml.UnsafeXmlError, "unsafe-xml"),
    (edxml.NotWellFormedError, "malformed-xml"),
    (edxml.LimitExceededError, "limit-exceeded"),
    (edxml.NotEdxmlError, "not-edxml"),
    (edxml.InvalidValueError, "invalid-value"),
    (edxml.InvalidOrganIdError, "invalid-value"),
    (edxml.EdxmlError, "invalid-package"),
    (signing.InputPdfError, "invalid-pdf"),
    (signing.CertificateRejectedError, "certificate-rejected"),
    (signing.SessionError, "signature-invalid"),
    (signing.AppearanceError, "bad-request"),
    (signing.TimestampError, "signing-unavailable"),
    (signing.RevocationUnavailableError, "signing-unavailable"),
    (signing.TokenError, "signing-unavailable"),
    (signing.SigningError, "signing-failed"),
    (storage_errors.StorageFull, "storage-full"),
    (storage_errors.ObjectMissing, "object-unavailable"),
    (storage_errors.NotFound, "not-found"),
    (storage_errors.IntegrityError, "object-unavailable"),
    (storage_errors.StorageError, "storage-unavailable"),
]
LIBRARY_SLUGS = frozenset(slug for _, slug in _LIBRARY_SLUGS)

# The status logged and counted for a request whose client went away before the answer
# (nginx's 499): not the axis's failure.
CLIENT_GONE = 499

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
    problem: str | ProblemType,
    detail: str,
    *,
    request: web.Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """The problem+json answer for ``problem`` (a type or its slug); ``extra`` members are added
    to the document."""
    ptype = problem if isinstance(problem, ProblemType) else PROBLEM_TYPES[problem]
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
    if ptype.retry:
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


def problem_for(exc: BaseException) -> ProblemType | None:
    """The problem type of an exception, or None when it is unexpected (a bug: 500)."""
    if isinstance(exc, DomainError):
        return getattr(exc, "problem", None)
    for cls, slug in _LIBRARY_SLUGS:
        if isinstance(exc, cls):
            return PROBLEM_TYPES[slug]
    return None


def response_for_exception(request: web.Request, exc: BaseException) -> web.Response:
    """Map any exception to its problem answer; log unexpected ones with their traceback."""
    if isinstance(exc, HttpProblem):
        return problem_response(
            exc.slug, exc.detail, request=request, headers=exc.headers, **exc.extra
        )
    ptype = problem_for(exc)
    if ptype is None:
        log.error("unexpected error", exc_info=exc)
        return problem_response(
            INTERNAL_ERROR,
            "The axis failed unexpectedly; nothing was promised. Quote the request id.",
            request=request,
        )
    if isinstance(exc, storage_errors.StorageError) and ptype.slug.startswith("storage-"):
        log.error("storage failure", exc_info=exc)
        detail = (
            "The axis is out of storage space; nothing was stored. Retry later."
            if ptype.slug == "storage-full"
            else "The axis's storage failed; nothing was stored. Retry later."
        )
        return problem_response(ptype, detail, request=request)
    if isinstance(exc, DomainError):
        return problem_response(
            ptype, _detail_for(exc), request=request, headers=exc.headers, **exc.extra
        )
    extra: dict[str, Any] = {}
    if isinstance(exc, edxml.EdxmlError):
        if exc.path:
            extra["path"] = exc.path
        if exc.line is not None:
            extra["line"] = exc.line
    return problem_response(ptype, _detail_for(exc), request=request, **extra)


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
        if request.transport is None or request.transport.is_closing():
            # The client hung up (e.g. mid-upload): whatever failed after, nobody hears the
            # answer, and it is the client's doing, not the axis's (issue 18, finding 10).
            return web.Response(status=CLIENT_GONE, reason="Client Closed Request")
        if isinstance(exc, HttpProcessingError):
            # The body's HTTP framing broke mid-way (server/app/protocol.py hands it over).
            return problem_response(
                "bad-request",
                "The request body is malformed HTTP (e.g. a broken chunk); nothing was stored.",
                request=request,
            )
        return response_for_exception(request, exc)
