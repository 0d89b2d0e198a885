"""Open311 GeoReport v2 at ``/open311/v2/`` (issue 17, docs/open311.md): apps report citizen
feedback (phản ánh) and read its progress with the standard's requests, unchanged.

Every resource answers in the format its suffix names, ``.xml`` (required by the spec) or
``.json``; refusals too, in the spec's ``errors/error`` shape with its status codes (403 for a
missing or wrong ``api_key``, 404 for an unknown service, request, token or jurisdiction, 400
for anything else, naming the parameter; 429 with ``Retry-After`` past ``[open311]
posts_per_minute`` posts of one key). The wire format is server/http/open311_format.py; what
the resources show comes from an :class:`Open311Backend` (server/http/open311_feedback.py over
the feedback domain), which never shows the sender's name or contacts, nor hidden feedback.

* ``GET discovery.{fmt}``, ``GET services.{fmt}``, ``GET services/{service_code}.{fmt}``
* ``GET requests.{fmt}`` (service_request_id, service_code, start_date, end_date, status),
  ``POST requests.{fmt}`` (form-encoded UTF-8, ``api_key``), ``GET requests/{id}.{fmt}``
* ``GET tokens/{token}.{fmt}``
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web

from server.http import open311_format as o311
from server.http.appkeys import CONFIG, DATABASE, REQUEST_ID
from server.runtime.problems import DomainError
from server.runtime.ratelimit import SharedBudget
from server.runtime.tokens import hash_token
from storage.errors import StorageError
from storage.repos.open311_keys import Open311KeyRepo

log = logging.getLogger("lienthong.open311")

PREFIX = "/open311/v2/"
MAX_BODY = 256 * 1024  # a POST body: 4,000 characters of description and a few fields
_FMT = "{fmt:(?:xml|json)}"
_STORAGE_FAILED = o311.Open311Error(
    503, "the axis's storage failed; nothing was stored: retry later", headers={"Retry-After": "30"}
)


class Open311Backend(Protocol):
    """What the Open311 resources read and write (server/http/open311_feedback.py)."""

    async def changeset(self) -> str:
        """When the services or their definitions last changed (sortable text)."""
        ...

    async def service_list(self) -> list[o311.Service]:
        """Every service (feedback category) an app may report to."""
        ...

    async def service(self, code: str) -> o311.Service | None:
        """One service, or None."""
        ...

    async def create(
        self, new: o311.NewRequest, app: str, retry: o311.RetryMarks
    ) -> list[dict[str, o311.Value]]:
        """Store a new request posted by ``app``; the ``service_requests`` answer (a retry
        ``retry`` recognises answers the first request's, storing nothing)."""
        ...

    async def requests(self, query: o311.RequestQuery) -> list[o311.ServiceRequest]:
        """The visible requests the query selects, newest first (at most 1,000)."""
        ...

    async def request(self, service_request_id: str) -> o311.ServiceRequest | None:
        """One visible request, or None."""
        ...

    async def token(self, token: str) -> list[dict[str, o311.Value]] | None:
        """The ``service_requests`` answer of a token, or None when unknown."""
        ...


BACKEND: web.AppKey[Open311Backend] = web.AppKey("open311_backend")
POST_BUDGET: web.AppKey[SharedBudget] = web.AppKey("open311_post_budget", SharedBudget)

routes = web.RouteTableDef()
Handler = Callable[[web.Request, str], Awaitable[tuple[str, o311.Value] | web.Response]]


def _fmt(request: web.Request) -> str:
    return request.match_info.get("fmt") or ("json" if request.path.endswith(".json") else "xml")


def _answer(fmt: str, root: str, document: o311.Value, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=o311.render(fmt, root, document),
        headers={"Content-Type": o311.CONTENT_TYPES[fmt], "Cache-Control": "no-store"},
    )


def refusal(fmt: str, error: o311.Open311Error) -> web.Response:
    """The ``errors`` answer of a refusal, with its status and headers."""
    response = _answer(fmt, "errors", o311.errors_document(error), status=error.status)
    response.headers.update(error.headers)
    return response


def _from_domain(exc: DomainError) -> o311.Open311Error:
    """A domain's refusal in Open311 terms: 403, 404, 429 and 5xx keep their status, every other
    refusal is the spec's 400 with the domain's status as the error's code."""
    status = exc.problem.status
    keep = status in {403, 404, 429} or status >= 500
    return o311.Open311Error(
        status if keep else 400, (status, exc.detail), headers=exc.headers or None
    )


def _internal(request: web.Request, exc: Exception) -> o311.Open311Error:
    """A 500 in the spec's shape, with the request id to quote; logged with its traceback."""
    request_id = request.get(REQUEST_ID) or "-"
    log.error("open311: unexpected error", exc_info=exc, extra={"request_id": request_id})
    return o311.Open311Error(
        500, f"The axis failed unexpectedly; quote the request id {request_id} when reporting it."
    )


def resource(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register an Open311 resource: its handler gets the format and returns (root, document);
    refusals of any layer are rendered in the format asked for."""

    def register(handler: Handler) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            fmt = _fmt(request)
            try:
                o311.check_jurisdiction(
                    request.query.get("jurisdiction_id"),
                    request.app[CONFIG].feedback.jurisdiction_id,
                )
                answer = await handler(request, fmt)
            except o311.Open311Error as exc:
                return refusal(fmt, exc)
            except DomainError as exc:
                return refusal(fmt, _from_domain(exc))
            except StorageError as exc:  # full disk, database down: nothing was stored
                log.error("open311: storage failure", exc_info=exc)
                return refusal(fmt, _STORAGE_FAILED)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                return refusal(fmt, o311.Open311Error(exc.status, exc.reason))
            except Exception as exc:  # a bug: the spec's shape too, never a traceback
                return refusal(fmt, _internal(request, exc))
            if isinstance(answer, web.Response):
                return answer
            return _answer(fmt, *answer)

        if method == "GET":
            routes.get(PREFIX + path)(handle)  # HEAD too
        else:
            routes.route(method, PREFIX + path)(handle)
        return handler

    return register


@resource("GET", "discovery." + _FMT)
async def discovery(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """Service discovery: the one production endpoint, XML and JSON."""
    config = request.app[CONFIG]
    changeset = await request.app[BACKEND].changeset()
    endpoint = o311.Endpoint(config.base_url + PREFIX.rstrip("/"), changeset)
    document = o311.discovery_document(
        changeset, config.open311.contact, config.open311.key_service, [endpoint]
    )
    return "discovery", document


@resource("GET", "services." + _FMT)
async def services(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """The services (feedback categories)."""
    return "services", o311.services_document(await request.app[BACKEND].service_list())


async def _service(request: web.Request, code: str) -> o311.Service:
    service = await request.app[BACKEND].service(code)
    if service is None:
        raise o311.Open311Error(404, f"service_code {code!r} was not found")
    return service


@resource("GET", "services/{service_code:[^/]+}." + _FMT)
async def service_definition(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """One service's definition (its attributes)."""
    service = await _service(request, request.match_info["service_code"])
    return "service_definition", o311.service_definition_document(service)


@resource("GET", "requests." + _FMT)
async def list_requests(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """The requests a query selects (the last 90 days by default)."""
    query = o311.request_query(request.query, datetime.now(UTC))
    found = await request.app[BACKEND].requests(query)
    return "service_requests", o311.requests_document(found)


@resource("GET", "requests/{service_request_id:[^/]+}." + _FMT)
async def one_request(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """One request."""
    number = request.match_info["service_request_id"]
    found = await request.app[BACKEND].request(number)
    if found is None:
        raise o311.Open311Error(404, f"service_request_id {number!r} was not found")
    return "service_requests", o311.requests_document([found])


@resource("GET", "tokens/{token:[^/]+}." + _FMT)
async def token(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """The request id a token stands for."""
    value = request.match_info["token"]
    document = await request.app[BACKEND].token(value)
    if document is None:
        raise o311.Open311Error(404, f"token {value!r} was not found")
    return "service_requests", document


async def _app_of(request: web.Request, api_key: str | None) -> str:
    """The app whose active key this is; 403 when missing, unknown or revoked."""
    if not api_key:
        raise o311.Open311Error(403, "api_key was not provided: ask the axis for a key")
    async with request.app[DATABASE].reader() as tx:
        app = await Open311KeyRepo(tx).app_of(hash_token(api_key))
    if app is None:
        raise o311.Open311Error(403, "Invalid api_key received: unknown or revoked")
    return app


async def _body(request: web.Request) -> bytes:
    """The POST body, whole (``read(n)`` may return less than there is), at most MAX_BODY."""
    too_large = o311.Open311Error(400, (413, f"the body is larger than {MAX_BODY} bytes"))
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@resource("POST", "requests." + _FMT)
async def post_request(request: web.Request, fmt: str) -> tuple[str, o311.Value]:
    """A new request from an app (form-encoded UTF-8, its ``api_key``), rate-limited per key."""
    pairs = o311.read_form(await _body(request), request.headers.get("Content-Type"))
    plain, attributes = o311.form_fields(pairs)
    app = await _app_of(request, plain.get("api_key"))
    o311.check_jurisdiction(
        plain.get("jurisdiction_id"), request.app[CONFIG].feedback.jurisdiction_id
    )
    wait = request.app[POST_BUDGET].wait(app)
    if wait:
        raise o311.Open311Error(
            429,
            f"too many requests from this api_key: retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if "service_code" not in plain:
        raise o311.missing("service_code")
    service = await _service(request, plain["service_code"])
    new = o311.new_request(plain, attributes, service)
    retry = o311.retry_marks(pairs, request.headers.get("Idempotency-Key"))
    return "service_requests", await request.app[BACKEND].create(new, app, retry)


@routes.route("*", "/open311/{tail:.*}")
async def unknown(request: web.Request) -> web.Response:
    """Anything else under /open311/: 404 in the spec's shape (JSON when the path ends .json)."""
    fmt = "json" if request.path.endswith(".json") else "xml"
    return refusal(fmt, o311.Open311Error(404, f"no Open311 resource at {request.path}"))


def setup(app: web.Application, backend: Open311Backend, workers: int = 1) -> None:
    """Register the routes with their ``backend``, and this process's share of the posts
    each API key may make (``[open311] posts_per_minute``)."""
    app.router.add_routes(routes)
    app[BACKEND] = backend
    app[POST_BUDGET] = SharedBudget(app[CONFIG].open311.posts_per_minute, workers=workers)
