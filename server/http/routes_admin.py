"""/api/v1/webhook: an agency registers where its packages are pushed (docs/delivery.md).

``PUT`` sets (or replaces) the caller's webhook: ``{"url": "https://...", "secret": "..."}``;
every waiting package of the caller is then pushed there. ``GET`` shows it (never the secret),
``DELETE`` removes it (the agency pulls its inbox again).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from server.exchange import webhooks
from server.http.appkeys import CONFIG, DATABASE, EXCHANGE
from server.http.auth import principal_of
from server.http.errors import HttpProblem
from server.http.jsonbody import read_json_object
from server.http.jsonresponse import json_response
from server.http.openapi_parts import UNAUTHORIZED, json_body, problem, ref
from server.runtime.config import Config
from storage.db import Tx
from storage.ids import utcnow
from storage.repos.routes import PushRepo, RouteRepo, Webhook

routes = web.RouteTableDef()

MIN_SECRET_LENGTH = 16


def _routes(request: web.Request, tx: Tx) -> RouteRepo:
    # The webhook secret is sealed at rest with the axis key (server.runtime.secretbox).
    return RouteRepo(tx, request.app[EXCHANGE].router.secrets)


def webhook_json(hook: Webhook) -> dict[str, Any]:
    """The public view of a webhook (the secret is never shown back)."""
    return {
        "organ_id": hook.organ_id,
        "url": hook.url,
        "created_at": hook.created_at.isoformat(),
        "updated_at": hook.updated_at.isoformat(),
    }


def check_webhook(url: object, secret: object, config: Config) -> tuple[str, str]:
    """The URL and secret if usable, else a ``bad-request`` problem saying why (a target the
    axis must not push to included: server/exchange/webhooks.py)."""
    if not isinstance(url, str) or not isinstance(secret, str):
        raise HttpProblem("bad-request", 'Send {"url": "https://...", "secret": "..."} as JSON.')
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise HttpProblem("bad-request", f"The webhook URL {url!r} cannot be parsed.") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise HttpProblem("bad-request", f"The webhook URL {url!r} is not an http(s) URL.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    refusal = webhooks.target_refusal(parts.hostname, port, config)
    if refusal is not None:
        raise HttpProblem("bad-request", f"The webhook URL {url!r} is refused: {refusal}.")
    if len(secret) < MIN_SECRET_LENGTH:
        raise HttpProblem(
            "bad-request", f"The webhook secret must be at least {MIN_SECRET_LENGTH} characters."
        )
    return url, secret


@routes.put("/api/v1/webhook")
async def put_webhook(request: web.Request) -> web.Response:
    """Register the caller's webhook and schedule its waiting packages for pushing."""
    body = await read_json_object(request, '{"url": "...", "secret": "..."}')
    url, secret = check_webhook(body.get("url"), body.get("secret"), request.app[CONFIG])
    organ_id = principal_of(request).organ_id
    async with request.app[DATABASE].transaction() as tx:
        hook = await _routes(request, tx).set_webhook(organ_id, url, secret)
        await PushRepo(tx).schedule_recipient(organ_id, utcnow())
    exchange = request.app[EXCHANGE]
    if exchange.on_scheduled is not None:
        exchange.on_scheduled()
    return json_response(webhook_json(hook))


@routes.get("/api/v1/webhook")
async def get_webhook(request: web.Request) -> web.Response:
    """The caller's webhook (404 when it pulls its inbox)."""
    organ_id = principal_of(request).organ_id
    async with request.app[DATABASE].reader() as tx:
        hook = await _routes(request, tx).webhook(organ_id)
    if hook is None:
        raise HttpProblem("not-found", f"{organ_id} has no webhook: it pulls its inbox.")
    return json_response(webhook_json(hook))


@routes.delete("/api/v1/webhook")
async def delete_webhook(request: web.Request) -> web.Response:
    """Remove the caller's webhook; waiting packages stay in its inbox."""
    organ_id = principal_of(request).organ_id
    async with request.app[DATABASE].transaction() as tx:
        removed = await _routes(request, tx).remove_webhook(organ_id)
        await PushRepo(tx).unschedule_recipient(organ_id)
    if not removed:
        raise HttpProblem("not-found", f"{organ_id} has no webhook.")
    return web.Response(status=204)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/api/v1/webhook`` (merged by server/http/openapi.py)."""
    return {
        "/api/v1/webhook": {
            "put": {
                "summary": "Register the caller's webhook (push delivery; docs/delivery.md)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url", "secret"],
                                "properties": {
                                    "url": {"type": "string", "format": "uri"},
                                    "secret": {"type": "string", "minLength": 16},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": json_body("The webhook (without its secret)", ref("Webhook")),
                    "400": problem("Not JSON, not an http(s) URL, or a short secret."),
                    "401": UNAUTHORIZED,
                },
            },
            "get": {
                "summary": "The caller's webhook",
                "responses": {
                    "200": json_body("The webhook (without its secret)", ref("Webhook")),
                    "401": UNAUTHORIZED,
                    "404": problem("The caller has no webhook: it pulls its inbox."),
                },
            },
            "delete": {
                "summary": "Remove the caller's webhook (its inbox is pulled again)",
                "responses": {
                    "204": {"description": "Removed"},
                    "401": UNAUTHORIZED,
                    "404": problem("The caller has no webhook."),
                },
            },
        },
    }
