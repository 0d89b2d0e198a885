"""``/vdxp/{operation}``: the national axis client protocol, for agency software built on the
published Java SDK (SDKVXP), pointed at this axis instead of the national one.

Every answer is HTTP 200 with an ASCII-only JSON body carrying ``status``/``ErrorCode``/
``ErrorDesc`` (the SDK reads nothing else): a wrong or missing signature, an unknown item or an
axis fault is a ``FAIL``, never an error page or a 500. ``downloadEdoc`` alone answers the raw
file on success. Authentication is the protocol's own (system id + HMAC, see
:mod:`server.vdxp.protocol`), so these paths are public to the bearer-token middleware.

``Expect: 100-continue`` is answered by aiohttp's default expect handler as soon as the route
matches, before any middleware or handler runs (the SDK otherwise waits ~3 s per call).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

import edxml
from server.exchange import ExchangeError
from server.http.appkeys import CONFIG, EXCHANGE
from server.http.jsonbody import JsonBodyError
from server.http.jsonbody import loads as json_loads
from server.runtime.spool import BodyTooLarge
from server.vdxp import protocol, replay
from server.vdxp.credentials import Caller
from server.vdxp.errors import ErrorCode, RequestError, VdxpError
from server.vdxp.service import VdxpService, error_of
from storage.errors import StorageError

log = logging.getLogger("lienthong.vdxp")

PREFIX = "/vdxp"
VDXP_SERVICE: web.AppKey[VdxpService] = web.AppKey("vdxp_service", VdxpService)

_CHUNK = 256 * 1024
# registerAgency's body: a small JSON object.
_MAX_JSON_BODY = 64 * 1024

Operation = Callable[
    [web.Request, VdxpService, Caller, protocol.SignedParams], Awaitable[web.StreamResponse]
]


def answer(body: dict[str, Any]) -> web.Response:
    """An HTTP 200 answer with the ASCII JSON body the SDK reads."""
    return web.Response(
        body=protocol.encode_answer(body), content_type="application/json", charset="utf-8"
    )


# -- operations -------------------------------------------------------------------------------


async def send_edoc(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """sendEdoc: the raw package + CRLF as the body; answers ``DocId``."""
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit + 2:
        raise RequestError(
            f"the package is {request.content_length} bytes; this axis accepts at most {limit}",
            ErrorCode.TOO_LARGE,
        )
    receipt = await service.send(caller, params, request.content.iter_chunked(_CHUNK))
    return answer(protocol.ok(DocId=receipt.document.id))


async def get_received_edoc_list(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """getReceivedEdocList: what waits for the caller (``messagetype`` edoc or status)."""
    return answer(protocol.ok(data=await service.received_list(caller, params)))


async def get_sent_edoc_list(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """getSentEdocList: the caller's documents, per recipient."""
    return answer(protocol.ok(data=await service.sent_list(caller, params)))


async def get_edoc(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """getEdoc: the package as base64 in ``data``, streamed (never whole in memory)."""
    doc = await service.document(caller, await service.pick_doc_id(caller, params))
    response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    # Base64 of the package is ASCII; the JSON around it is ours, so nothing needs escaping.
    head = protocol.encode_answer(protocol.ok(data=""))
    assert head.endswith(b'""}')
    response.content_length = len(head) + 4 * ((doc.size + 2) // 3)
    await response.prepare(request)
    await response.write(head[:-2])
    carry = b""
    async for chunk in service.open_package(doc):
        data = carry + chunk
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        if cut:
            await response.write(base64.b64encode(data[:cut]))
    if carry:
        await response.write(base64.b64encode(carry))
    await response.write(b'"}')
    await response.write_eof()
    return response


async def download_edoc(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """downloadEdoc: the raw package file."""
    doc = await service.document(caller, await service.pick_doc_id(caller, params))
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{doc.id}.edxml"',
            "ETag": f'"{doc.sha256}"',
        }
    )
    response.content_length = doc.size
    await response.prepare(request)
    async for chunk in service.open_package(doc):
        await response.write(chunk)
    await response.write_eof()
    return response


async def update_status(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """updateStatus: mark a pulled item done / fail / processing."""
    doc_id = await service.pick_doc_id(caller, params)
    await service.update_status(caller, doc_id, params.require("status"))
    return answer(protocol.ok())


async def count_receive_edoc(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """countReceiveEdoc: how many documents wait."""
    return answer(protocol.ok(count=await service.count(caller, "document")))


async def count_receive_status(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """countReceiveStatus: how many status packages wait."""
    return answer(protocol.ok(count=await service.count(caller, "status")))


async def _directory(service: VdxpService, *, qd20: bool) -> list[dict[str, str]]:
    agencies, deleted = await service.agencies()
    return [
        protocol.agency_item(
            ident=a.organ_id,
            parent=a.parent_id,
            code=a.organ_id,
            name=a.name,
            mail=a.email,
            qd20=qd20,
        )
        for a in agencies
        if a.organ_id not in deleted
    ]


async def get_agencies_list(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """getAgenciesList: the directory {id, pid, code, name, mail, oldCode}."""
    return answer(protocol.ok(data=await _directory(service, qd20=False)))


async def get_agencies_list_qd20(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """getAgenciesListQD20: the directory with ``code102``."""
    return answer(protocol.ok(data=await _directory(service, qd20=True)))


async def get_synchronize_unit(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """getSynchronizeUnit: every unit with its deleted flag and modification date."""
    agencies, deleted = await service.agencies()
    center = request.app[CONFIG].server.axis_id
    data = [
        protocol.sync_unit_item(
            ident=a.organ_id,
            parent=a.parent_id,
            code=a.organ_id,
            name=a.name,
            mail=a.email,
            center_code=center,
            modify_date=protocol.format_answer_time(deleted.get(a.organ_id, a.created_at)),
            deleted=a.organ_id in deleted,
        )
        for a in agencies
    ]
    return answer(protocol.ok(data=data))


async def register_agency(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """registerAgency: the body is the unit as JSON ({code, name, mail, pid})."""
    if request.content_length is not None and request.content_length > _MAX_JSON_BODY:
        raise RequestError("the unit description is too large", ErrorCode.TOO_LARGE)
    raw = await request.content.read(_MAX_JSON_BODY + 1)
    if len(raw) > _MAX_JSON_BODY:
        raise RequestError("the unit description is too large", ErrorCode.TOO_LARGE)
    try:
        unit = json_loads(raw)
        if isinstance(unit, str):  # the SDK passes "a JSON string": accept it double-encoded
            unit = json_loads(unit)
    except JsonBodyError as exc:
        raise RequestError(f"the body must be a JSON object describing the unit: {exc}") from None
    if not isinstance(unit, dict):
        raise RequestError("the body must be a JSON object describing the unit")
    agency = await service.register_agency(caller, unit)
    item = protocol.agency_item(
        ident=agency.organ_id,
        parent=agency.parent_id,
        code=agency.organ_id,
        name=agency.name,
        mail=agency.email,
    )
    return answer(protocol.ok(data=item))


async def delete_agency(
    request: web.Request, service: VdxpService, caller: Caller, params: protocol.SignedParams
) -> web.StreamResponse:
    """deleteAgency: the unit's code in a signed header (``code``, ``agencycode`` or ``id``)."""
    code = params.get("code") or params.get("agencycode") or params.get("id")
    if code is None or not code.strip():
        raise RequestError("missing signed header XroadVnpt-code", ErrorCode.NOT_SIGNED)
    await service.delete_agency(caller, code.strip())
    return answer(protocol.ok())


OPERATIONS: dict[str, Operation] = {
    "sendEdoc": send_edoc,
    "getReceivedEdocList": get_received_edoc_list,
    "getSentEdocList": get_sent_edoc_list,
    "getEdoc": get_edoc,
    "downloadEdoc": download_edoc,
    "updateStatus": update_status,
    "countReceiveEdoc": count_receive_edoc,
    "countReceiveStatus": count_receive_status,
    "getAgenciesList": get_agencies_list,
    "getAgenciesListQD20": get_agencies_list_qd20,
    "getSynchronizeUnit": get_synchronize_unit,
    "registerAgency": register_agency,
    "deleteAgency": delete_agency,
}
_BY_LOWER = {name.lower(): op for name, op in OPERATIONS.items()}


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Authenticate, run the operation, and turn every failure into a FAIL answer."""
    name = request.match_info["operation"]
    operation = _BY_LOWER.get(name.lower())
    caller: Caller | None = None
    try:
        if operation is None:
            raise RequestError(f"unknown operation {name}", ErrorCode.UNKNOWN_OPERATION)
        service = request.app[VDXP_SERVICE]
        caller, params = await service.authenticate(request.headers.items())
        # The signature is verified: refuse an old or replayed one (server/vdxp/replay.py).
        await replay.check_replay(
            service.database,
            request.app[CONFIG].vdxp,
            name,
            params,
            request.headers.get(protocol.H_HASH_HEADER, ""),
        )
        return await operation(request, service, caller, params)
    except VdxpError as exc:
        code, desc = exc.code, exc.desc
    except (ExchangeError, edxml.EdxmlError, BodyTooLarge, StorageError) as exc:
        code, desc = error_of(exc)
    except Exception:
        log.exception("vdxp operation failed", extra={"operation": name})
        code, desc = ErrorCode.INTERNAL, "internal error of the axis"
    log.info(
        "vdxp fail",
        extra={
            "operation": name,
            "code": str(code),
            "agency": caller.organ_id if caller is not None else None,
        },
    )
    return answer(protocol.fail(code, desc))


async def _service(app: web.Application) -> AsyncIterator[None]:
    """Bind the VDXP service to the exchange opened by the app's resources context."""
    app[VDXP_SERVICE] = VdxpService(app[EXCHANGE])
    yield


def setup(app: web.Application) -> None:
    """Add ``/vdxp/{operation}`` to ``app`` (call after the resources cleanup context)."""
    app.cleanup_ctx.append(_service)
    app.router.add_route("POST", PREFIX + "/{operation}", dispatch)
    app.router.add_route("GET", PREFIX + "/{operation}", dispatch)
