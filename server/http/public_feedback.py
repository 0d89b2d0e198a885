"""Citizen feedback for the public and the sender (issue 17): no token.

- ``GET /api/v1/public/feedback?after=&limit=``: published feedback (not hidden), newest first:
  answer, category, agency, dates, place, the sender's name masked; never the contacts.
- ``GET /api/v1/public/feedback/{code}``: one published feedback; with ``?token=`` (the
  sender's private link) the private view, whatever its status: the progress and the answer.
- ``POST /api/v1/public/feedback/{code}/rating {token, rating}``: hài lòng / không hài lòng,
  once, after the answer.
- ``GET /api/v1/public/feedback/{code}/photos/{n}``: an approved photo of a published
  feedback (or any of its photos, with the sender's ``?token=``).
- ``GET /api/v1/public/feedback-categories``: the categories one may send feedback in.

Reads by code and ratings are rate-limited per client address (``[feedback]
lookup_per_minute``); a wrong token answers 404 like an unknown code.
"""

from __future__ import annotations

import hmac
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from server.feedback.categories import category_json, list_categories
from server.feedback.errors import FeedbackNotFound, InvalidFeedback, TooManyRequests
from server.feedback.intake import by_token, hash_secret
from server.feedback.moves import RATINGS, rate
from server.feedback.queries import category_names
from server.feedback.views import private_view, public_view
from server.http.appkeys import CONFIG, DATABASE
from server.http.feedback import photo_number, photo_response
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    BAD_QUERY,
    NOT_FOUND,
    PAGING,
    TOO_MANY_REQUESTS,
    json_body,
    page_of,
    path_param,
    problem,
    query_param,
)
from server.http.paging import next_text_cursor, page_params, text_cursor
from server.runtime.ratelimit import TokenBuckets
from storage.db import Tx
from storage.repos.agencies import AgencyRepo
from storage.repos.feedback import FeedbackRepo, FeedbackRow

routes = web.RouteTableDef()
PREFIX = "/api/v1/public/feedback"
LOOKUP_LIMIT: web.AppKey[TokenBuckets] = web.AppKey("feedback_lookup_limit", TokenBuckets)
_NO_STORE = {"Cache-Control": "no-store"}


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONFIG].dossiers.timezone)


def _limit(request: web.Request) -> None:
    wait = request.app[LOOKUP_LIMIT].take(request.remote or "unknown")
    if wait:
        raise TooManyRequests(wait)


def _is_public(row: FeedbackRow | None) -> bool:
    return row is not None and row.published_at is not None and not row.hidden


async def published_views(tx: Tx, rows: list[FeedbackRow], zone: ZoneInfo) -> list[dict[str, Any]]:
    """The public views of published feedback, with their categories' and agencies' names
    (read once for the page, the photos in one query)."""
    categories = await category_names(tx)
    agencies: dict[str, str] = {}
    for organ_id in {r.agency for r in rows}:
        agency = await AgencyRepo(tx).get(organ_id)
        agencies[organ_id] = agency.name if agency else organ_id
    photos = await FeedbackRepo(tx).photos_of([r.code for r in rows])
    return [
        public_view(
            r, categories.get(r.category, r.category), agencies[r.agency], photos[r.code], zone
        )
        for r in rows
    ]


@routes.get(PREFIX)
async def published(request: web.Request) -> web.Response:
    """Published feedback, newest first."""
    after, limit = page_params(request)
    cursor = text_cursor(after)
    zone = _zone(request)
    async with request.app[DATABASE].reader() as tx:
        rows = await FeedbackRepo(tx).published(cursor, limit + 1)
        items = await published_views(tx, rows[:limit], zone)
    following = next_text_cursor(rows[limit - 1].code) if len(rows) > limit else None
    return json_response({"items": items, "next": following})


@routes.get(PREFIX + "/{code}")
async def one(request: web.Request) -> web.Response:
    """One published feedback, or the sender's private view with ``?token=``."""
    _limit(request)
    code, token = request.match_info["code"], request.query.get("token", "")
    zone = _zone(request)
    if token:
        row = await by_token(request.app[DATABASE], code, token)
        async with request.app[DATABASE].reader() as tx:
            events = await FeedbackRepo(tx).events(code)
        return json_response(private_view(row, events, zone), headers=_NO_STORE)
    async with request.app[DATABASE].reader() as tx:
        found = await FeedbackRepo(tx).get(code)
        if found is None or not _is_public(found):
            raise FeedbackNotFound("No published feedback has this code.")
        [body] = await published_views(tx, [found], zone)
    return json_response(body)


@routes.post(PREFIX + "/{code}/rating")
async def rating(request: web.Request) -> web.Response:
    """The sender's rating of the answer, once: ``{token, rating}``."""
    _limit(request)
    try:
        data = await request.json()
    except ValueError:
        raise InvalidFeedback("rating", "send JSON {token, rating}") from None
    if not isinstance(data, dict):
        raise InvalidFeedback("rating", "send JSON {token, rating}")
    token, value = data.get("token"), data.get("rating")
    if not isinstance(token, str) or not isinstance(value, str):
        raise InvalidFeedback("rating", f"send JSON {{token, rating}}: {', '.join(RATINGS)}")
    row = await rate(request.app[DATABASE], request.match_info["code"], token, value)
    async with request.app[DATABASE].reader() as tx:
        events = await FeedbackRepo(tx).events(row.code)
    return json_response(private_view(row, events, _zone(request)), headers=_NO_STORE)


@routes.get(PREFIX + "/{code}/photos/{n}")
async def public_photo(request: web.Request) -> web.Response:
    """An approved photo of a published feedback, or any photo for the sender's token."""
    _limit(request)
    code, n = request.match_info["code"], photo_number(request)
    token = request.query.get("token", "")
    async with request.app[DATABASE].reader() as tx:
        row = await FeedbackRepo(tx).get(code)
        photos = {p.n: p for p in await FeedbackRepo(tx).photos(code)} if row else {}
    sender = bool(row and token and hmac.compare_digest(row.token_hash, hash_secret(token)))
    chosen = photos.get(n)
    if chosen is None or not (sender or (_is_public(row) and chosen.approved)):
        raise FeedbackNotFound("No such photo.")
    return await photo_response(request, chosen.sha256, chosen.content_type)


@routes.get("/api/v1/public/feedback-categories")
async def categories(request: web.Request) -> web.Response:
    """The categories (service code, name, group, attributes...)."""
    async with request.app[DATABASE].reader() as tx:
        rows = await list_categories(tx)
    return json_response({"items": [category_json(c) for c in rows]})


def setup(app: web.Application, workers: int = 1) -> None:
    """Register the routes and this process's share of the lookup budget per address."""
    app.router.add_routes(routes)
    share = max(1.0, app[CONFIG].feedback.lookup_per_minute / max(1, workers))
    app[LOOKUP_LIMIT] = TokenBuckets(share, burst=share)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the public feedback routes."""
    code = path_param("code", description="The feedback code, e.g. PA-260309-0001")
    token = query_param("token", description="The sender's private token (the private link)")
    obj = {"type": "object"}
    public: dict[str, Any] = {"security": []}
    return {
        PREFIX: {
            "get": {
                **public,
                "summary": "Published feedback with its answer, newest first (no token)",
                "description": "Category, agency, place, dates, answer, the sender's name "
                "masked; never contacts; only approved photos (their numbers).",
                "parameters": PAGING,
                "responses": {
                    "200": json_body("A page", page_of("PublicFeedback")),
                    "400": BAD_QUERY,
                },
            }
        },
        PREFIX + "/{code}": {
            "get": {
                **public,
                "summary": "A published feedback; with `token`, the sender's private view",
                "parameters": [code, token],
                "responses": {
                    "200": json_body("The feedback", obj),
                    "404": NOT_FOUND,
                    "429": TOO_MANY_REQUESTS,
                },
            }
        },
        PREFIX + "/{code}/rating": {
            "post": {
                **public,
                "summary": "The sender rates the answer once: hai-long / khong-hai-long",
                "requestBody": {"required": True, "content": {"application/json": {"schema": obj}}},
                "parameters": [code],
                "responses": {
                    "200": json_body("The private view after it", obj),
                    "404": NOT_FOUND,
                    "409": problem("Not answered yet, or rated already (`feedback-move-refused`)."),
                    "422": problem("Not a rating (`invalid-feedback`)."),
                    "429": TOO_MANY_REQUESTS,
                },
            }
        },
        PREFIX + "/{code}/photos/{n}": {
            "get": {
                **public,
                "summary": "An approved photo of a published feedback (any, with `token`)",
                "parameters": [code, path_param("n", {"type": "integer"}), token],
                "responses": {
                    "200": {"description": "The photo"},
                    "404": NOT_FOUND,
                    "429": TOO_MANY_REQUESTS,
                },
            }
        },
        "/api/v1/public/feedback-categories": {
            "get": {
                **public,
                "summary": "The feedback categories (Open311 services)",
                "responses": {"200": json_body("The categories", obj)},
            }
        },
    }


def public_feedback_schemas() -> dict[str, Any]:
    """The ``PublicFeedback`` schema."""
    s = {"type": "string"}
    ns = {"type": ["string", "null"]}
    return {
        "PublicFeedback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "code": s,
                "category": {"type": "object"},
                "agency": {"type": "object"},
                "title": s,
                "content": s,
                "place": {"type": "object"},
                "sender_name": {"type": "string", "description": "masked: Nguyễn V. A."},
                "received_at": s,
                "answered_at": ns,
                "published_at": ns,
                "answer": s,
                "photos": {"type": "array", "items": {"type": "integer"}},
            },
        }
    }
