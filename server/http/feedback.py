"""Citizen feedback (phản ánh, kiến nghị, issue 17): intake, officers' lists and moves,
forwarding over the axis and the agencies' replies.

- ``POST /api/v1/feedback``: anyone (no token; rate-limited per client address) or a receiving
  officer (a token; not rate-limited; ``channel`` phone, letter...). JSON, or multipart with
  the same fields as form fields (``attributes[CODE]`` for attributes) and up to 5 file parts
  ``photo``; ``Idempotency-Key``. 201 ``{code, status, received_at, due, private_link,
  token}`` (200 for a retry with the same key).
- ``GET /api/v1/feedback?status=&category=&agency=&overdue=true&after=&limit=``: the caller's
  feedback (received, or to answer); ``GET /api/v1/feedback/{code}``: one, for its parties.
- ``POST /api/v1/feedback/{code}/events {status, note, agency?}``: a move (409 with
  ``allowed``); ``status: transferred`` forwards it (``agency`` optional).
- ``POST /api/v1/feedback/{code}/moderation {hidden?, reason?, approved_photos?}``.
- ``GET /api/v1/feedback/{code}/photos/{n}``: a photo, for its parties.
- ``GET /api/v1/feedback-inbox``, ``GET /api/v1/feedback-inbox/{id}``, ``POST
  /api/v1/feedback-inbox/{id}/events {status, note}``: the feedback forwarded to the caller and
  its replies (processing, supplement, answered), sent back over the axis.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import IO, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

from server.feedback.errors import FeedbackNotFound, InvalidFeedback, TooManyRequests
from server.feedback.forwarding import Forwarding
from server.feedback.intake import FeedbackServices, Received, read_submission, submit
from server.feedback.lifecycle import LABELS, TRANSFERRED
from server.feedback.moves import FeedbackMove, Moderation, advance, feedback_of, moderate
from server.feedback.photos import MAX_PHOTOS
from server.feedback.views import officer_view, summary
from server.http.appkeys import CALENDAR, CONFIG, DATABASE, EXCHANGE, JOBS, OBJECTS, PRINCIPAL
from server.http.errors import HttpProblem, readable_form
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    BAD_QUERY,
    NOT_FOUND,
    PAGING,
    TOO_MANY_REQUESTS,
    UNAUTHORIZED,
    json_body,
    page_of,
    path_param,
    problem,
    query_param,
    ref,
)
from server.http.paging import choice, next_text_cursor, page_params, text_cursor
from server.runtime.ratelimit import TokenBuckets
from storage.db import Database
from storage.ids import utcnow
from storage.repos.feedback import FeedbackFilter, FeedbackRepo, TransferRow

routes = web.RouteTableDef()

FORWARDING: web.AppKey[Forwarding] = web.AppKey("feedback_forwarding", Forwarding)
SUBMIT_LIMIT: web.AppKey[TokenBuckets] = web.AppKey("feedback_submit_limit", TokenBuckets)

_FIELD_LIMIT = 16 * 1024
_MAX_PARTS = 40
_IN_MEMORY = 1024 * 1024


def services_of(app: web.Application) -> FeedbackServices:
    """The feedback services of the running app (for routes and pages)."""
    config = app[CONFIG]
    return FeedbackServices(
        app[DATABASE],
        app[OBJECTS],
        app[CALENDAR].clock,
        ZoneInfo(config.dossiers.timezone),
        config.feedback,
        config.spool_dir,
    )


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONFIG].dossiers.timezone)


def private_link(request: web.Request, code: str, token: str) -> str:
    """The sender's private link (``[server] public_url`` + ``/phan-anh/{code}?token=``)."""
    base = request.app[CONFIG].base_url
    return f"{base}/phan-anh/{quote(code, safe='')}?token={quote(token, safe='')}"


def check_rate(request: web.Request) -> None:
    """Take one anonymous submission of the client address's budget, or 429."""
    wait = request.app[SUBMIT_LIMIT].take(request.remote or "unknown")
    if wait:
        raise TooManyRequests(wait)


async def _spool(part: BodyPartReader, limit: int, stack: ExitStack, field: str) -> IO[bytes]:
    spooled = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY))
    size = 0
    while chunk := await part.read_chunk(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise InvalidFeedback(field, f"is larger than {limit} bytes")
        spooled.write(chunk)
    spooled.seek(0)
    return spooled


async def read_form(
    request: web.Request, stack: ExitStack
) -> tuple[dict[str, Any], list[IO[bytes]]]:
    """The fields and photos of a multipart feedback form (photos spooled, closed by
    ``stack``): text fields by name, ``attributes[CODE]`` gathered into ``attributes``
    (repeated for a multivaluelist), file parts ``photo``."""
    fields: dict[str, Any] = {}
    photos: list[IO[bytes]] = []
    limit = request.app[CONFIG].feedback.max_photo_bytes
    with readable_form():
        reader = await request.multipart()
        count = 0
        while (part := await reader.next()) is not None:
            count += 1
            if count > _MAX_PARTS or not isinstance(part, BodyPartReader):
                raise HttpProblem("bad-request", f"At most {_MAX_PARTS} plain parts.")
            name = part.name or ""
            if part.filename is not None or name in ("photo", "photos"):
                if name not in ("photo", "photos"):
                    raise InvalidFeedback(name or "(unnamed part)", "files go in parts 'photo'")
                if len(photos) >= MAX_PHOTOS:
                    raise InvalidFeedback("photos", f"at most {MAX_PHOTOS} photos")
                field = f"photos[{len(photos) + 1}]"
                photos.append(await _spool(part, limit, stack, field))
                continue
            raw = await part.read_chunk(_FIELD_LIMIT + 1)
            if len(raw) > _FIELD_LIMIT or await part.read_chunk(1):
                raise InvalidFeedback(name, "is too long")
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidFeedback(name, "is not UTF-8 text") from None
            _add_field(fields, name, value)
    return fields, photos


def _add_field(fields: dict[str, Any], name: str, value: str) -> None:
    """A form field into ``fields``: ``attributes[CODE]`` into ``fields["attributes"]`` (a
    repeated one, for a multivaluelist, becomes a list)."""
    if not (name.startswith("attributes[") and name.endswith("]")):
        fields[name] = value
        return
    attributes = fields.setdefault("attributes", {})
    code = name[len("attributes[") : -1]
    if code in attributes:
        previous = attributes[code]
        attributes[code] = [*(previous if isinstance(previous, list) else [previous]), value]
    else:
        attributes[code] = value


async def read_urlencoded(request: web.Request) -> dict[str, Any]:
    """The fields of an ``application/x-www-form-urlencoded`` feedback (no photos)."""
    fields: dict[str, Any] = {}
    try:
        posted = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise HttpProblem("bad-request", "The form cannot be read as UTF-8.") from None
    for name, value in posted.items():
        if not isinstance(value, str):
            raise InvalidFeedback(name, "files go in a multipart form")
        _add_field(fields, name, value)
    return fields


async def _json(request: web.Request, what: str) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidFeedback(what, "is too large") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidFeedback(what, "is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidFeedback(what, "must be a JSON object")
    return data


def receipt(request: web.Request, received: Received) -> dict[str, Any]:
    """The answer of an intake: the code, status, limits and the sender's private link."""
    row = received.feedback
    body = summary(row, utcnow(), _zone(request))
    return {
        "code": row.code,
        "status": row.status,
        "status_label": body["status_label"],
        "received_at": body["received_at"],
        "due": body["due"],
        "token": received.token,
        "private_link": private_link(request, row.code, received.token),
    }


@routes.post("/api/v1/feedback")
async def intake(request: web.Request) -> web.Response:
    """Receive a feedback: 201 with its code and the private link."""
    principal = request.get(PRINCIPAL)
    officer = principal.organ_id if principal is not None else None
    if officer is None:
        check_rate(request)
    with ExitStack() as stack:
        if request.content_type == "multipart/form-data":
            fields, photos = await read_form(request, stack)
        elif request.content_type == "application/x-www-form-urlencoded":
            fields, photos = await read_urlencoded(request), []
        else:
            fields, photos = await _json(request, "feedback"), []
        channel = str(fields.pop("channel", "") or ("phone" if officer else "web"))
        submission = read_submission(fields, photos=photos, channel=channel)
        received = await submit(
            services_of(request.app),
            submission,
            officer=officer,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
    location = f"/api/v1/feedback/{quote(received.feedback.code, safe='')}"
    return json_response(
        receipt(request, received),
        status=201 if received.created else 200,
        headers={"Location": location, "Cache-Control": "no-store"},
    )


@routes.get("/api/v1/feedback")
async def list_feedback(request: web.Request) -> web.Response:
    """The caller's feedback (received or to answer) in code order, paged."""
    after, limit = page_params(request)
    status = choice(request, "status", frozenset(LABELS))
    overdue = choice(request, "overdue", frozenset({"true", "false"}))
    now = utcnow()
    where = FeedbackFilter(
        agency=request[PRINCIPAL].organ_id,
        status=status,
        category=request.query.get("category") or None,
        competent=request.query.get("agency") or None,
        overdue_at=now if overdue == "true" else None,
    )
    async with request.app[DATABASE].reader() as tx:
        rows = await FeedbackRepo(tx).page(where, text_cursor(after), limit + 1)
    page = rows[:limit]
    cursor = next_text_cursor(page[-1].code) if len(rows) > limit else None
    zone = _zone(request)
    return json_response({"items": [summary(r, now, zone) for r in page], "next": cursor})


async def _full(request: web.Request, code: str, organ_id: str) -> web.Response:
    async with request.app[DATABASE].reader() as tx:
        row = await feedback_of(tx, code, organ_id)
        repo = FeedbackRepo(tx)
        photos = await repo.photos(code)
        events = await repo.events(code)
    return json_response(officer_view(row, photos, events, utcnow(), _zone(request)))


@routes.get("/api/v1/feedback/{code}")
async def show(request: web.Request) -> web.Response:
    """One feedback with its photos and events; 404 unless the caller is one of its parties."""
    return await _full(request, request.match_info["code"], request[PRINCIPAL].organ_id)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise InvalidFeedback(key, "must be a string")
    return value.strip()


@routes.post("/api/v1/feedback/{code}/events")
async def move(request: web.Request) -> web.Response:
    """Move a feedback (``transferred``: forward it over the axis); the feedback after it."""
    actor = request[PRINCIPAL].organ_id
    code = request.match_info["code"]
    data = await _json(request, "event")
    unknown = set(data) - {"status", "note", "agency"}
    if unknown:
        raise InvalidFeedback(sorted(unknown)[0], "is not a known field")
    status, note = _str(data, "status"), _str(data, "note")
    agency = _str(data, "agency") or None
    if status == TRANSFERRED:
        await request.app[FORWARDING].forward(actor, code, agency)
    else:
        await advance(
            request.app[DATABASE],
            request.app[CALENDAR].clock,
            FeedbackMove(actor, code, status, note, agency),
        )
    return await _full(request, code, actor)


@routes.post("/api/v1/feedback/{code}/moderation")
async def moderation(request: web.Request) -> web.Response:
    """Hide a feedback from public view (or show it again), approve its public photos."""
    actor = request[PRINCIPAL].organ_id
    code = request.match_info["code"]
    data = await _json(request, "moderation")
    unknown = set(data) - {"hidden", "reason", "approved_photos"}
    if unknown:
        raise InvalidFeedback(sorted(unknown)[0], "is not a known field")
    hidden = data.get("hidden")
    if hidden is not None and not isinstance(hidden, bool):
        raise InvalidFeedback("hidden", "must be true or false")
    approved = data.get("approved_photos")
    if approved is not None and (
        not isinstance(approved, list)
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in approved)
    ):
        raise InvalidFeedback("approved_photos", "must be a list of photo numbers")
    await moderate(
        request.app[DATABASE],
        Moderation(
            actor,
            code,
            hidden,
            _str(data, "reason"),
            None if approved is None else frozenset(approved),
        ),
    )
    return await _full(request, code, actor)


async def photo_response(request: web.Request, sha256: str, content_type: str) -> web.Response:
    """A stored photo's bytes."""
    data = b"".join([chunk async for chunk in request.app[OBJECTS].open(sha256)])
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )


def photo_number(request: web.Request) -> int:
    """The ``{n}`` of a photo path; 404 when not a number."""
    raw = request.match_info["n"]
    if not raw.isdigit() or len(raw) > 2:
        raise FeedbackNotFound("No such photo.")
    return int(raw)


@routes.get("/api/v1/feedback/{code}/photos/{n}")
async def photo(request: web.Request) -> web.Response:
    """A photo of the feedback, for its parties."""
    code, n = request.match_info["code"], photo_number(request)
    async with request.app[DATABASE].reader() as tx:
        await feedback_of(tx, code, request[PRINCIPAL].organ_id)
        photos = {p.n: p for p in await FeedbackRepo(tx).photos(code)}
    if n not in photos:
        raise FeedbackNotFound("No such photo.")
    return await photo_response(request, photos[n].sha256, photos[n].content_type)


# -- the competent agency's side ---------------------------------------------------------------


def _transfer(row: TransferRow, zone: ZoneInfo, *, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "feedback": row.feedback,
        "origin": row.origin,
        "agency": row.agency,
        "package": row.package,
        "document_id": row.document_id,
        "status": row.status,
        "status_label": LABELS[row.status],
        "answer": row.answer,
        "title": row.body.get("title", ""),
        "received_at": row.created_at.astimezone(zone).isoformat(),
    }
    if full:
        body["feedback_json"] = row.body
    return body


def _transfer_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise FeedbackNotFound("No such feedback forwarded to this agency.")
    return int(raw)


@routes.get("/api/v1/feedback-inbox")
async def inbox(request: web.Request) -> web.Response:
    """The feedback forwarded to the caller (from this axis or another), by id."""
    after, limit = page_params(request)
    start = int(after, 16) if after else 0
    rows = await request.app[FORWARDING].incoming(request[PRINCIPAL].organ_id, start, limit + 1)
    page = rows[:limit]
    cursor = format(page[-1].id, "x") if len(rows) > limit else None
    zone = _zone(request)
    return json_response({"items": [_transfer(r, zone) for r in page], "next": cursor})


@routes.get("/api/v1/feedback-inbox/{id}")
async def inbox_one(request: web.Request) -> web.Response:
    """One feedback forwarded to the caller, with the feedback as the package carried it."""
    row = await request.app[FORWARDING].incoming_one(
        request[PRINCIPAL].organ_id, _transfer_id(request)
    )
    return json_response(_transfer(row, _zone(request), full=True))


@routes.post("/api/v1/feedback-inbox/{id}/events")
async def reply(request: web.Request) -> web.Response:
    """The agency's move on a forwarded feedback, sent back over the axis."""
    data = await _json(request, "event")
    unknown = set(data) - {"status", "note"}
    if unknown:
        raise InvalidFeedback(sorted(unknown)[0], "is not a known field")
    row = await request.app[FORWARDING].reply(
        request[PRINCIPAL].organ_id, _transfer_id(request), _str(data, "status"), _str(data, "note")
    )
    return json_response(_transfer(row, _zone(request)))


async def _context(app: web.Application) -> AsyncIterator[None]:
    exchange = app[EXCHANGE]
    delivery = app[CONFIG].delivery
    forwarding = Forwarding(services_of(app), exchange, base_delay=delivery.base_delay_ms / 1000,
                            max_delay=delivery.max_delay)  # fmt: skip
    app[FORWARDING] = forwarding
    exchange.on_accepted.append(forwarding.on_accepted)
    exchange.on_status.append(forwarding.on_status)

    # Forwarded packages and agencies' replies not sent at their move are retried at the
    # delivery worker's pace, by the process holding the job's lease (any process could: the
    # exchange answers a resend of the same bytes with its first receipt; one spares the work).
    async def retry(_fenced: Database) -> None:
        await forwarding.outbox.run(delivery.poll_ms / 1000)

    try:
        async with app[JOBS].running("feedback-outbox", retry):
            yield
    finally:
        exchange.on_accepted.remove(forwarding.on_accepted)
        exchange.on_status.remove(forwarding.on_status)


def setup(app: web.Application, workers: int = 1) -> None:
    """Add the routes, this process's share of the submission budget per client address, and
    the exchange hooks once the exchange and the calendar are up."""
    app.router.add_routes(routes)
    share = max(1.0, app[CONFIG].feedback.submit_per_minute / max(1, workers))
    app[SUBMIT_LIMIT] = TokenBuckets(share, burst=share)
    app.cleanup_ctx.append(_context)


INVALID = problem(
    "A field breaks a rule (`invalid-feedback`, `field` names it), or the form is unusable "
    "(`bad-request`); nothing was stored."
)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the feedback routes (merged by server/http/openapi.py)."""
    code = path_param("code", description="The feedback code, e.g. PA-260309-0001")
    ident = path_param("id", description="A forwarded feedback's id at this axis")
    obj = {"type": "object"}
    json_in = {"required": True, "content": {"application/json": {"schema": obj}}}
    multipart = {"multipart/form-data": {"schema": obj}}
    refused = problem("Not allowed from this status (`feedback-move-refused`, with `allowed`).")
    return {
        "/api/v1/feedback": {
            "post": {
                "summary": "Send a feedback (phản ánh, kiến nghị); no token needed",
                "description": "JSON or multipart (form fields, `attributes[CODE]`, up to 5 "
                "file parts `photo`): category, title, content (≤ 4,000 characters), address "
                "and/or lat + long, name and phone or email, attributes. Anonymous posts are "
                "rate-limited per client address (`[feedback] submit_per_minute`); an officer's "
                "token records its agency as receiving unit and `channel` (phone, letter...). "
                "`Idempotency-Key`: a retry answers the first feedback (200).",
                "security": [{}, {"bearer": []}],
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": obj}, **multipart},
                },
                "responses": {
                    "200": json_body("The feedback of an earlier intake with this key", obj),
                    "201": json_body("Received: code, status, limits, token, private_link", obj),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "422": INVALID,
                    "429": TOO_MANY_REQUESTS,
                },
            },
            "get": {
                "summary": "The caller's feedback (received or to answer), by code",
                "parameters": [
                    query_param("status", {"type": "string", "enum": list(LABELS)}),
                    query_param("category", description="A category's service code"),
                    query_param("agency", description="Only feedback this agency must answer"),
                    query_param(
                        "overdue",
                        {"type": "string", "enum": ["true", "false"]},
                        "true: only feedback past one of its limits",
                    ),
                    *PAGING,
                ],
                "responses": {
                    "200": json_body("A page", page_of("Feedback")),
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                },
            },
        },
        "/api/v1/feedback/{code}": {
            "get": {
                "summary": "One feedback with its photos and events (its parties only)",
                "parameters": [code],
                "responses": {
                    "200": json_body("The feedback", ref("Feedback")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/feedback/{code}/events": {
            "post": {
                "summary": "Move a feedback (docs/feedback.md, the move table)",
                "description": "`{status, note, agency?}`; `transferred` forwards it over the "
                "axis to `agency` (default: the category's); `note` is required for "
                "`not_accepted` (the reason), `supplement` and `answered` (the answer).",
                "parameters": [code],
                "requestBody": json_in,
                "responses": {
                    "200": json_body("The feedback after the move", ref("Feedback")),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "403": problem(
                        "The move is the other party's (`feedback-move-not-permitted`)."
                    ),
                    "404": NOT_FOUND,
                    "409": refused,
                    "422": INVALID,
                },
            }
        },
        "/api/v1/feedback/{code}/moderation": {
            "post": {
                "summary": "Hide a feedback from public view, approve its public photos",
                "description": "`{hidden?, reason?, approved_photos?}` by the receiving unit: "
                "`hidden` true needs a `reason` (abuse, personal data in the text).",
                "parameters": [code],
                "requestBody": json_in,
                "responses": {
                    "200": json_body("The feedback after it", ref("Feedback")),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "422": INVALID,
                },
            }
        },
        "/api/v1/feedback/{code}/photos/{n}": {
            "get": {
                "summary": "A photo of the feedback (re-encoded, without metadata)",
                "parameters": [code, path_param("n", {"type": "integer"})],
                "responses": {
                    "200": {"description": "The photo (image/jpeg or image/png)"},
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/feedback-inbox": {
            "get": {
                "summary": "The feedback forwarded to the caller (this axis or another)",
                "parameters": PAGING,
                "responses": {
                    "200": json_body("A page", page_of("ForwardedFeedback")),
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                },
            }
        },
        "/api/v1/feedback-inbox/{id}": {
            "get": {
                "summary": "One forwarded feedback, as the package carried it",
                "parameters": [ident],
                "responses": {
                    "200": json_body("It", ref("ForwardedFeedback")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/feedback-inbox/{id}/events": {
            "post": {
                "summary": "The agency's move: processing, supplement or answered (the answer)",
                "description": "`{status, note}`; sent back to the receiving unit as an edXML "
                "status message, where it becomes the feedback's move (and answer).",
                "parameters": [ident],
                "requestBody": json_in,
                "responses": {
                    "200": json_body("The forwarded feedback after it", ref("ForwardedFeedback")),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": refused,
                    "422": INVALID,
                },
            }
        },
    }


def feedback_schemas() -> dict[str, Any]:
    """The ``Feedback`` and ``ForwardedFeedback`` schemas (``components/schemas``)."""
    s = {"type": "string"}
    return {
        "Feedback": {
            "type": "object",
            "required": ["code", "status", "category", "receiving_unit", "agency", "due"],
            "properties": {
                "code": s,
                "status": {"type": "string", "enum": list(LABELS)},
                "status_label": s,
                "category": s,
                "title": s,
                "receiving_unit": s,
                "agency": s,
                "channel": s,
                "received_at": s,
                "due": {"type": "object", "description": "classify, transfer, answer, publish"},
                "overdue": {"type": "object", "description": "one flag per limit"},
                "is_overdue": {"type": "boolean"},
                "hidden": {"type": "boolean"},
            },
        },
        "ForwardedFeedback": {
            "type": "object",
            "required": ["id", "feedback", "origin", "agency", "status"],
            "properties": {
                "id": {"type": "integer"},
                "feedback": s,
                "origin": s,
                "agency": s,
                "status": s,
                "answer": s,
            },
        },
    }
