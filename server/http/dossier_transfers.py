"""One-stop dossiers across agencies (một cửa liên thông, issue 16): transfers over the axis.

- ``POST /api/v1/dossiers/{code}/transfer {agency}``: a party of the dossier sends it to the
  agency of one of its procedure's steps (an edXML package through the exchange).
- ``GET /api/v1/dossiers/{code}/steps``: the procedure's steps with their due dates and the
  transfers made, for the dossier's parties.
- ``GET /api/v1/dossier-transfers``: the dossiers transferred to the caller (from this axis or
  another); ``GET /api/v1/dossier-transfers/{id}``: one, with the dossier and its moves here;
  ``POST /api/v1/dossier-transfers/{id}/events {status, note}``: the caller's move, reported
  back to the originating unit as a status message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from server.dossiers.errors import DossierNotFound, InvalidDossier
from server.dossiers.lifecycle import LABELS
from server.dossiers.transfers import StepDue, Transfers
from server.http.appkeys import CALENDAR, CONFIG, DATABASE, EXCHANGE, JOBS, OBJECTS, PRINCIPAL
from server.http.jsonbody import read_json_object
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    NOT_FOUND,
    UNAUTHORIZED,
    json_body,
    path_param,
    problem,
)
from server.http.paging import seq_number
from storage.db import Database
from storage.repos.dossier_transfers import TransferEventRow, TransferRow
from storage.repos.dossiers import DossierFileRow, DossierRow

routes = web.RouteTableDef()
TRANSFERS: web.AppKey[Transfers] = web.AppKey("dossier_transfers", Transfers)


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONFIG].dossiers.timezone)


def _transfer(row: TransferRow, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row.id,
        "dossier": row.dossier,
        "origin": row.origin,
        "agency": row.agency,
        "step": row.step,
        "package": row.package,
        "document_id": row.document_id,
        "status": row.status,
        "status_label": LABELS[row.status],
        "due_at": row.due_at.astimezone(zone).isoformat(),
        "paused_at": None if row.paused_at is None else row.paused_at.astimezone(zone).isoformat(),
        "created_at": row.created_at.astimezone(zone).isoformat(),
    }


TRANSFERRED_IN_SCHEMA = {
    "type": "object",
    "description": "Only on a dossier of another unit transferred to the caller for one step "
    "of its procedure: `status` and `due_at` are the step's; its files carry a `url`.",
    "required": ["id", "step", "origin", "package"],
    "properties": {
        "id": {"type": "integer", "description": "the transfer (/api/v1/dossier-transfers/{id})"},
        "step": {"type": "integer"},
        "origin": {"type": "string", "description": "the unit that sent it"},
        "package": {"type": "string", "description": "the edXML package it came in"},
    },
}


def transferred_in(dossier: DossierRow) -> dict[str, Any]:
    """``transferred_in`` of a dossier transferred to the caller for a step (nothing for the
    axis's own dossiers): the transfer, the step, who sent it and the package it came in."""
    mark = dossier.transfer
    if mark is None:
        return {}
    return {
        "transferred_in": {
            "id": mark.id,
            "step": mark.step,
            "origin": mark.origin,
            "package": mark.package,
        }
    }


def transferred_file(dossier: DossierRow, f: DossierFileRow) -> dict[str, Any]:
    """``url`` of a file of a dossier transferred in: its attachment in the package."""
    if dossier.transfer is None or f.attachment is None:
        return {}
    return {"url": f"/api/v1/documents/{dossier.transfer.package}/attachments/{f.attachment}"}


def _step(step: StepDue, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "number": step.number,
        "agency": step.agency,
        "days": step.days,
        "due_at": step.due_at.astimezone(zone).isoformat(),
    }


def _event(e: TransferEventRow, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "actor": e.actor,
        "at": e.at.astimezone(zone).isoformat(),
        "from": e.from_status,
        "to": e.to_status,
        "note": e.note,
    }


async def _json(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise DossierNotFound("No such dossier transferred to this agency.")
    return int(raw)


@routes.post("/api/v1/dossiers/{code}/transfer")
async def transfer(request: web.Request) -> web.Response:
    body = await _json(request)
    agency = body.get("agency")
    if not isinstance(agency, str) or not agency:
        raise InvalidDossier("agency", "is required: an organ id")
    row = await request.app[TRANSFERS].transfer(
        request[PRINCIPAL].organ_id, request.match_info["code"], agency
    )
    return json_response(_transfer(row, _zone(request)), status=201)


@routes.get("/api/v1/dossiers/{code}/steps")
async def steps(request: web.Request) -> web.Response:
    zone = _zone(request)
    due, transfers = await request.app[TRANSFERS].steps(
        request[PRINCIPAL].organ_id, request.match_info["code"]
    )
    return json_response(
        {
            "steps": [_step(s, zone) for s in due],
            "transfers": [_transfer(t, zone) for t in transfers],
        }
    )


@routes.get("/api/v1/dossier-transfers")
async def incoming(request: web.Request) -> web.Response:
    zone = _zone(request)
    after = seq_number(request.query.get("after"), "after") or 0
    rows = await request.app[TRANSFERS].incoming(request[PRINCIPAL].organ_id, after, 100)
    return json_response(
        {
            "items": [
                {**_transfer(r, zone), "procedure": r.body.get("procedure", {}).get("code")}
                for r in rows
            ],
            "next": str(rows[-1].id) if len(rows) == 100 else None,
        }
    )


@routes.get("/api/v1/dossier-transfers/{id}")
async def incoming_one(request: web.Request) -> web.Response:
    zone = _zone(request)
    row, events = await request.app[TRANSFERS].incoming_one(
        request[PRINCIPAL].organ_id, _id(request)
    )
    return json_response(
        {
            **_transfer(row, zone),
            "dossier_json": row.body,
            "events": [_event(e, zone) for e in events],
        }
    )


@routes.post("/api/v1/dossier-transfers/{id}/events")
async def move(request: web.Request) -> web.Response:
    body = await _json(request)
    status, note = body.get("status"), body.get("note", "")
    if not isinstance(status, int) or not isinstance(note, str):
        raise InvalidDossier("status", "status must be a number and note text")
    row = await request.app[TRANSFERS].advance_transfer(
        request[PRINCIPAL].organ_id, _id(request), status, note
    )
    return json_response(_transfer(row, _zone(request)))


async def _context(app: web.Application) -> AsyncIterator[None]:
    exchange = app[EXCHANGE]
    delivery = app[CONFIG].delivery
    transfers = Transfers(
        app[DATABASE],
        app[OBJECTS],
        exchange,
        app[CALENDAR].clock,
        ZoneInfo(app[CONFIG].dossiers.timezone),
        base_delay=delivery.base_delay_ms / 1000,
        max_delay=delivery.max_delay,
    )
    app[TRANSFERS] = transfers
    exchange.on_accepted.append(transfers.on_accepted)
    exchange.on_status.append(transfers.on_status)

    # Status messages not sent at a move are retried at the delivery worker's pace, by the
    # process holding the job's lease (any process could: the exchange keeps one status for the
    # same bytes; one spares the work).
    async def retry(_fenced: Database) -> None:
        await transfers.retry_reports(delivery.poll_ms / 1000)

    try:
        async with app[JOBS].running("dossier-reports", retry):
            yield
    finally:
        exchange.on_accepted.remove(transfers.on_accepted)
        exchange.on_status.remove(transfers.on_status)


def setup(app: web.Application) -> None:
    """Add the routes, and the hooks once the exchange and the calendar are up."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_context)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the transfer routes (merged by server/http/openapi.py)."""
    code = path_param("code", description="The dossier code")
    ident = path_param("id", description="A transfer's id at this axis")
    refused = problem("`transfer-refused`: not received or in processing, or already sent.")
    invalid = problem("`invalid-dossier`: `agency` is not another agency of the steps.")
    obj = {"type": "object"}
    move_body = {"content": {"application/json": {"schema": obj}}, "required": True}
    return {
        "/api/v1/dossiers/{code}/transfer": {
            "post": {
                "summary": "Send a dossier to the agency of a step (một cửa liên thông)",
                "description": "`{agency}`: an edXML package with `ho-so.json` and the files, "
                "routed by the exchange (this axis or another).",
                "parameters": [code],
                "requestBody": move_body,
                "responses": {
                    "201": json_body("The transfer", obj),
                    "400": problem("Not JSON"),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": refused,
                    "422": invalid,
                },
            }
        },
        "/api/v1/dossiers/{code}/steps": {
            "get": {
                "summary": "A dossier's steps with their due dates, and its transfers",
                "parameters": [code],
                "responses": {
                    "200": json_body("The steps", obj),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/dossier-transfers": {
            "get": {
                "summary": "Dossiers transferred to the caller",
                "responses": {
                    "200": json_body("A page", obj),
                    "400": problem("Bad query"),
                    "401": UNAUTHORIZED,
                },
            }
        },
        "/api/v1/dossier-transfers/{id}": {
            "get": {
                "summary": "One dossier transferred to the caller, with its moves here",
                "parameters": [ident],
                "responses": {
                    "200": json_body("The transfer", obj),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/dossier-transfers/{id}/events": {
            "post": {
                "summary": "Move a transferred dossier (reported back as a status message)",
                "parameters": [ident],
                "requestBody": move_body,
                "responses": {
                    "200": json_body("The transfer", obj),
                    "400": problem("Not JSON"),
                    "401": UNAUTHORIZED,
                    "403": problem("`move-not-permitted`"),
                    "404": NOT_FOUND,
                    "409": problem("`illegal-move`"),
                    "422": problem("`invalid-dossier`"),
                },
            }
        },
    }
