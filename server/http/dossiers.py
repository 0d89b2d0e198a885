"""One-stop dossiers (hồ sơ một cửa, issue 16): intake, moves, one dossier, lists.

- ``POST /api/v1/dossiers``: the receiving unit takes in a dossier (multipart: a JSON part
  ``dossier`` and one file part per component, named by its code); 201 with its code and due
  date (200 with the same answer for a retry with the same ``Idempotency-Key``).
- ``POST /api/v1/dossiers/{code}/events``: a move ``{status, note, at?}`` (JSON, or multipart
  with a JSON part ``event`` and the supplemented files).
- ``GET /api/v1/dossiers/{code}``: the dossier with its files and events, for its receiving unit
  and its competent agency only (404 for any other).
- ``GET /api/v1/dossiers?status=&procedure=&agency=&overdue=&received_after=&after=&limit=``:
  the caller's dossiers.
- ``POST /api/v1/dossiers/{code}/apology``: ``{new_due_at, reason}`` for an overdue dossier: the
  apology and new appointment (the dossier counts as late for good).
- ``GET /api/v1/dossiers/{code}/slips/{kind}.pdf``: a slip (receipt, supplement, refusal,
  apology) as A4 PDF, sealed when the axis has a seal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

from server.dossiers.apology import apologize, is_overdue, read_apology
from server.dossiers.errors import DossierFileTooLarge, DossierNotFound, InvalidDossier
from server.dossiers.intake import (
    CHANNELS,
    Intake,
    StagedFile,
    check_key,
    read_request,
    read_time,
    receive,
)
from server.dossiers.lifecycle import LABELS, SUPPLEMENT
from server.dossiers.moves import Move, advance
from server.dossiers.slip_source import SlipRequest, place_of, slip_data
from server.dossiers.slips import KINDS, SlipSealer, render_slip
from server.dossiers.transfers import dossier_view
from server.http.appkeys import CALENDAR, CONFIG, DATABASE, OBJECTS, PRINCIPAL, SLIP_SEALER
from server.http.dossier_transfers import (
    TRANSFERRED_IN_SCHEMA,
    TRANSFERS,
    transferred_file,
    transferred_in,
)
from server.http.errors import HttpProblem, readable_form
from server.http.jsonresponse import json_response
from server.http.openapi_parts import (
    BAD_QUERY,
    NOT_FOUND,
    PAGING,
    UNAUTHORIZED,
    json_body,
    page_of,
    path_param,
    problem,
    query_param,
    ref,
)
from server.http.paging import choice, next_text_cursor, page_params, text_cursor
from server.runtime.spool import temp_path
from server.runtime.timeline import event_json
from storage.ids import utcnow
from storage.repos.dossiers import DossierFilter, DossierRepo, DossierRow

routes = web.RouteTableDef()

_PART_NAME = re.compile(r"^[A-Za-z0-9._-]{1,50}$")
_JSON_LIMIT = 64 * 1024
_MAX_PARTS = 100
_READ = 256 * 1024


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONFIG].dossiers.timezone)


def _time(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def lookup_url(request: web.Request, code: str) -> str:
    """The public lookup page of a dossier (``[server] public_url`` + ``/tra-cuu?ma=``)."""
    return f"{request.app[CONFIG].base_url}/tra-cuu?ma={quote(code, safe='')}"


def summary(request: web.Request, dossier: DossierRow, now: datetime) -> dict[str, Any]:
    """A dossier as lists show it."""
    zone = _zone(request)
    return {
        "code": dossier.code,
        "status": dossier.status,
        "status_label": LABELS[dossier.status],
        "procedure": dossier.procedure,
        "receiving_unit": dossier.receiving_unit,
        "agency": dossier.agency,
        "channel": dossier.channel,
        "applicant_name": dossier.applicant.get("name", ""),
        "received_at": _time(dossier.received_at, zone),
        "due_at": _time(dossier.due_at, zone),
        "paused": dossier.status == SUPPLEMENT,
        "overdue": is_overdue(dossier, now),
        "late": dossier.late,
        "lookup_url": lookup_url(request, dossier.code),
        **transferred_in(dossier),
    }


async def _stage(part: BodyPartReader, name: str, request: web.Request) -> StagedFile:
    """A file part written to the spool while hashed; refused over ``max_file_bytes``."""
    config = request.app[CONFIG]
    limit = config.dossiers.max_file_bytes
    path = temp_path(config.spool_dir, ".part")
    digest = hashlib.sha256()
    size = 0
    out = await asyncio.to_thread(path.open, "wb")
    try:
        while chunk := await part.read_chunk(_READ):
            size += len(chunk)
            if size > limit:
                raise DossierFileTooLarge(name, limit)
            digest.update(chunk)
            await asyncio.to_thread(out.write, chunk)
    except BaseException:
        out.close()
        path.unlink(missing_ok=True)
        raise
    await asyncio.to_thread(out.close)
    content_type = part.headers.get("Content-Type", "application/octet-stream")
    return StagedFile(name, part.filename or name, content_type, path, digest.hexdigest(), size)


async def _form(request: web.Request, json_name: str) -> tuple[Any, list[StagedFile]]:
    """The JSON part ``json_name`` (parsed) and the staged file parts of a multipart form.
    The caller removes the staged files (:func:`_discard`), whatever happens."""
    if request.content_type != "multipart/form-data":
        raise HttpProblem(
            "bad-request", f"Send multipart/form-data with a JSON part named {json_name!r}."
        )
    data: Any = None
    files: list[StagedFile] = []
    try:
        with readable_form():
            reader = await request.multipart()
            count = 0
            while (part := await reader.next()) is not None:
                count += 1
                if count > _MAX_PARTS or not isinstance(part, BodyPartReader):
                    raise HttpProblem("bad-request", f"At most {_MAX_PARTS} plain parts.")
                name = part.name or ""
                if name == json_name:
                    raw = await part.read_chunk(_JSON_LIMIT + 1)
                    if len(raw) > _JSON_LIMIT or await part.read_chunk(1):
                        raise InvalidDossier(json_name, "is larger than 64 KiB")
                    data = _json(raw, json_name)
                elif not _PART_NAME.match(name) or any(f.component == name for f in files):
                    raise InvalidDossier(name or "(unnamed part)", "is not a usable part name")
                else:
                    files.append(await _stage(part, name, request))
    except BaseException:
        _discard(files)
        raise
    if data is None:
        _discard(files)
        raise InvalidDossier(json_name, "is required (a JSON part)")
    return data, files


def _json(raw: bytes, field: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidDossier(field, "is not JSON") from None


def _discard(files: Sequence[StagedFile]) -> None:
    for staged in files:
        staged.path.unlink(missing_ok=True)


@routes.post("/api/v1/dossiers")
async def intake(request: web.Request) -> web.Response:
    """Receive a dossier: 201 ``{code, status, received_at, due_at, lookup_url}``."""
    unit = request[PRINCIPAL].organ_id
    key = check_key(request.headers.get("Idempotency-Key"))
    data, files = await _form(request, "dossier")
    try:
        received = await receive(
            request.app[DATABASE],
            request.app[OBJECTS],
            request.app[CALENDAR].clock,
            _zone(request),
            Intake(unit, read_request(data, utcnow()), files, key),
        )
    finally:
        _discard(files)
    dossier = received.dossier
    zone = _zone(request)
    body = {
        "code": dossier.code,
        "status": dossier.status,
        "received_at": _time(dossier.received_at, zone),
        "due_at": _time(dossier.due_at, zone),
        "lookup_url": lookup_url(request, dossier.code),
    }
    location = f"/api/v1/dossiers/{quote(dossier.code, safe='')}"
    return json_response(
        body, status=201 if received.created else 200, headers={"Location": location}
    )


def _move_fields(data: Any) -> tuple[int, str, datetime | None]:
    if not isinstance(data, dict):
        raise InvalidDossier("event", "must be a JSON object")
    unknown = set(data) - {"status", "note", "at"}
    if unknown:
        raise InvalidDossier(sorted(unknown)[0], "is not a known field")
    status = data.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise InvalidDossier("status", "must be a status code from 1 to 10")
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise InvalidDossier("note", "must be a string")
    at = None if data.get("at") is None else read_time(data["at"], "at")
    return status, note.strip(), at


@routes.post("/api/v1/dossiers/{code}/events")
async def move(request: web.Request) -> web.Response:
    """Move a dossier to another status; the dossier as it is after the move."""
    actor = request[PRINCIPAL].organ_id
    files: list[StagedFile] = []
    if request.content_type == "multipart/form-data":
        data, files = await _form(request, "event")
    else:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise InvalidDossier("event", "is too large") from None
        data = _json(raw, "event")
    try:
        status, note, at = _move_fields(data)
        code = request.match_info["code"]
        move = Move(actor, code, status, note, at, files)
        try:
            await advance(
                request.app[DATABASE], request.app[OBJECTS], request.app[CALENDAR].clock, move
            )
        except DossierNotFound:  # perhaps one transferred to the caller: its step moves
            await request.app[TRANSFERS].advance_copy(move)
    finally:
        _discard(files)
    return await _full(request, code, actor)


async def _full(request: web.Request, code: str, organ_id: str) -> web.Response:
    zone = _zone(request)
    async with request.app[DATABASE].reader() as tx:
        view = await dossier_view(tx, code, organ_id)
    dossier, files, events, apologies = view.dossier, view.files, view.events, view.apologies
    body = summary(request, dossier, utcnow())
    body["applicant"] = dossier.applicant
    body["channel_name"] = CHANNELS[dossier.channel]
    body["paused_at"] = _time(dossier.paused_at, zone)
    body["files"] = [
        {
            "component": f.component,
            "name": f.name,
            "content_type": f.content_type,
            "sha256": f.sha256,
            "size": f.size,
            "event": f.event,
            **transferred_file(dossier, f),
        }
        for f in files
    ]
    body["events"] = [event_json(e, zone) for e in events]
    body["apologies"] = [
        {
            "event": a.event,
            "actor": a.actor,
            "at": _time(a.at, zone),
            "old_due_at": _time(a.old_due_at, zone),
            "new_due_at": _time(a.new_due_at, zone),
            "reason": a.reason,
        }
        for a in apologies
    ]
    return json_response(body)


@routes.post("/api/v1/dossiers/{code}/apology")
async def apology(request: web.Request) -> web.Response:
    """Apologise for an overdue dossier and set a new due date; the dossier after it."""
    actor = request[PRINCIPAL].organ_id
    code = request.match_info["code"]
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidDossier("apology", "is too large") from None
    await apologize(request.app[DATABASE], read_apology(actor, code, _json(raw, "apology")))
    return await _full(request, code, actor)


@routes.get("/api/v1/dossiers/{code}")
async def show(request: web.Request) -> web.Response:
    """One dossier with its files and events; 404 unless the caller is one of its parties."""
    return await _full(request, request.match_info["code"], request[PRINCIPAL].organ_id)


_MAX_OFFICER = 100


@routes.get("/api/v1/dossiers/{code}/slips/{kind}.pdf")
async def slip(request: web.Request) -> web.Response:
    """A slip of the dossier as A4 PDF, rendered from the dossier as it is now (sealed when the
    axis has a seal); 404 for an unknown kind or another agency, 409 when the dossier's history
    has nothing this kind records. ``?officer=`` prints the officer's name under the signature."""
    code, kind = request.match_info["code"], request.match_info["kind"]
    if kind not in KINDS:
        raise HttpProblem("not-found", f"No slip kind {kind!r} (one of {', '.join(KINDS)}).")
    officer = request.query.get("officer", "").strip()
    if len(officer) > _MAX_OFFICER:
        raise HttpProblem("invalid-query", f"`officer` must be at most {_MAX_OFFICER} characters.")
    data = await slip_data(
        request.app[DATABASE],
        SlipRequest(request[PRINCIPAL].organ_id, code, kind, lookup_url(request, code), officer),
    )
    pdf = await asyncio.to_thread(render_slip, data)
    sealer = request.app.get(SLIP_SEALER) or SlipSealer()
    pdf = await sealer(pdf, location=place_of(data.unit_name, data.parent_name) or None)
    name = f"{kind}-{code}.pdf"
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


_STATUSES = frozenset(str(s) for s in LABELS)


def _received_after(request: web.Request) -> datetime | None:
    """``received_after``: an ISO 8601 time with its offset, or a date (from the start of that
    day in ``[dossiers] timezone``); ``invalid-query`` otherwise."""
    value = request.query.get("received_after") or None
    if value is None:
        return None
    try:
        if len(value) == 10:
            return datetime.fromisoformat(value).replace(tzinfo=_zone(request))
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise HttpProblem(
            "invalid-query",
            "`received_after` must be a date (2026-03-01) or an ISO 8601 time with its offset.",
        )
    return moment


@routes.get("/api/v1/dossiers")
async def list_dossiers(request: web.Request) -> web.Response:
    """The caller's dossiers (received or to process) in code order, paged like the inbox."""
    after, limit = page_params(request)
    status = choice(request, "status", _STATUSES)
    overdue = choice(request, "overdue", frozenset({"true", "false"}))
    now = utcnow()
    where = DossierFilter(
        agency=request[PRINCIPAL].organ_id,
        status=None if status is None else int(status),
        procedure=request.query.get("procedure") or None,
        overdue_at=now if overdue == "true" else None,
        competent=request.query.get("agency") or None,
        received_after=_received_after(request),
    )
    async with request.app[DATABASE].reader() as tx:
        rows = await DossierRepo(tx).page(where, text_cursor(after), limit + 1)
    page = rows[:limit]
    next_cursor = next_text_cursor(page[-1].code) if len(rows) > limit else None
    items = [summary(request, d, now) for d in page]
    return json_response({"items": items, "next": next_cursor})


INVALID = problem(
    "A field breaks a rule (`invalid-dossier`, `field` names it), or the form is unusable "
    "(`bad-request`); nothing was stored."
)


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of the dossier routes (merged by server/http/openapi.py)."""
    code = path_param("code", description="The dossier code, e.g. 000.00.31.H41-260309-0001")
    multipart = {"multipart/form-data": {"schema": {"type": "object"}}}
    return {
        "/api/v1/dossiers": {
            "post": {
                "summary": "Receive a dossier (tiếp nhận hồ sơ)",
                "description": "A JSON part `dossier` ({procedure, applicant, channel, agency?, "
                "received_at?}) and one file part per component, named by its code. "
                "`Idempotency-Key`: a retry answers the first dossier (200).",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                ],
                "requestBody": {"required": True, "content": multipart},
                "responses": {
                    "200": json_body(
                        "The dossier of an earlier intake with this key", ref("DossierReceipt")
                    ),
                    "201": json_body("Received", ref("DossierReceipt")),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "413": problem(
                        "A file over `[dossiers] max_file_bytes` (`dossier-file-too-large`)."
                    ),
                    "422": INVALID,
                },
            },
            "get": {
                "summary": "The caller's dossiers (received or to process), by code",
                "description": "With the dossiers of other units transferred to the caller "
                "for a step (`transferred_in`; `status` and `due_at` are the step's).",
                "parameters": [
                    query_param("status", {"type": "integer", "minimum": 1, "maximum": 10}),
                    query_param("procedure", description="A procedure's national code"),
                    query_param(
                        "agency", description="Only dossiers this agency (organ id) processes"
                    ),
                    query_param(
                        "received_after",
                        description="Only dossiers received at or after this time (ISO 8601 "
                        "with its offset) or date (from its start, Vietnam time)",
                    ),
                    query_param(
                        "overdue",
                        {"type": "string", "enum": ["true", "false"]},
                        "true: only dossiers past their due date, not paused nor final",
                    ),
                    *PAGING,
                ],
                "responses": {
                    "200": json_body("A page", page_of("Dossier")),
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                },
            },
        },
        "/api/v1/dossiers/{code}": {
            "get": {
                "summary": "One dossier with its files and events",
                "parameters": [code],
                "responses": {
                    "200": json_body("The dossier", ref("Dossier")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            }
        },
        "/api/v1/dossiers/{code}/apology": {
            "post": {
                "summary": "Apology and new appointment for an overdue dossier (Mẫu 04)",
                "description": "JSON {new_due_at, reason}: `new_due_at` ISO 8601 with its "
                "offset, later than the due date and not in the past. Records an event and an "
                "audit entry, moves the due date and marks the dossier `late` for good.",
                "parameters": [code],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": json_body("The dossier after the apology", ref("Dossier")),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": problem("The dossier is not overdue (`dossier-not-overdue`)."),
                    "422": INVALID,
                },
            }
        },
        "/api/v1/dossiers/{code}/slips/{kind}.pdf": {
            "get": {
                "summary": "A slip (phiếu) of the dossier as A4 PDF, sealed when `[seal]` is set",
                "description": "`receipt` (Mẫu 01, once accepted), `supplement` (Mẫu 02, the "
                "latest supplement request: one item a line of its note), `refusal` (Mẫu 03, "
                "its note the reason), `apology` (Mẫu 04, the latest apology). Rendered from "
                "the dossier as it is now; the QR code opens `[server] public_url` + "
                "`/tra-cuu?ma=<code>`.",
                "parameters": [
                    code,
                    path_param("kind", {"type": "string", "enum": list(KINDS)}),
                    query_param("officer", description="The officer's name to print"),
                ],
                "responses": {
                    "200": {
                        "description": "The slip",
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "400": BAD_QUERY,
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": problem(
                        "The dossier's history has nothing this slip records "
                        "(`slip-not-applicable`, with `kind`)."
                    ),
                },
            }
        },
        "/api/v1/dossiers/{code}/events": {
            "post": {
                "summary": "Move a dossier to another status (DVCQG codes 1–10)",
                "description": "JSON {status, note, at?}, or multipart with a JSON part `event` "
                "and files: the supplement (→4), the result (→9), the return (→10).",
                "parameters": [code],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}, **multipart},
                },
                "responses": {
                    "200": json_body("The dossier after the move", ref("Dossier")),
                    "400": INVALID,
                    "401": UNAUTHORIZED,
                    "403": problem(
                        "The move is the other party's (`move-not-permitted`, with `allowed`)."
                    ),
                    "404": NOT_FOUND,
                    "409": problem(
                        "Not allowed from the current status (`illegal-move`, with `allowed`)."
                    ),
                    "413": problem("A file too large (`dossier-file-too-large`)."),
                    "422": INVALID,
                },
            }
        },
    }


def dossier_schemas() -> dict[str, Any]:
    """The shared ``Dossier`` and ``DossierReceipt`` schemas (``components/schemas``)."""
    s = {"type": "string"}
    ns = {"type": ["string", "null"]}
    status = {"type": "integer", "minimum": 1, "maximum": 10}
    return {
        "DossierReceipt": {
            "type": "object",
            "required": ["code", "status", "received_at", "due_at", "lookup_url"],
            "properties": {
                "code": s,
                "status": status,
                "received_at": s,
                "due_at": s,
                "lookup_url": s,
            },
        },
        "Dossier": {
            "type": "object",
            "required": ["code", "status", "procedure", "agency", "due_at"],
            "properties": {
                "code": s,
                "status": status,
                "status_label": s,
                "procedure": s,
                "receiving_unit": s,
                "agency": s,
                "channel": {"type": "integer", "enum": [1, 2, 3]},
                "applicant_name": s,
                "received_at": s,
                "due_at": s,
                "paused": {"type": "boolean"},
                "overdue": {"type": "boolean"},
                "late": {
                    "type": "boolean",
                    "description": "late in the KPIs, for good: an apology was issued, or the "
                    "dossier was done (9) after its due date",
                },
                "lookup_url": s,
                "applicant": {"type": "object", "description": "one dossier only"},
                "paused_at": ns,
                "files": {"type": "array", "items": {"type": "object"}},
                "events": {"type": "array", "items": {"type": "object"}},
                "apologies": {"type": "array", "items": {"type": "object"}},
                "transferred_in": TRANSFERRED_IN_SCHEMA,
            },
        },
    }
