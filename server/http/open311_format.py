"""The Open311 GeoReport v2 wire format (docs/open311.md): documents rendered as XML and JSON,
form-encoded POST bodies and query parameters read, errors in the spec's ``errors/error`` shape.

Pure and synchronous: no aiohttp, no database. A document is built once as plain Python values
(:data:`Value`: a dict is an element with child elements in order, a list is a list element
whose items are named by :data:`ITEM_TAGS`, ``None`` an empty element) and rendered either way:

* XML: ``<?xml version="1.0" encoding="utf-8"?>``, no namespace, booleans ``true``/``false``;
* JSON: the spec's "Spark convention": a list element is an array of its items (the root's too,
  so ``services`` is a top-level array), an empty element is ``null``. Identifiers
  (``service_code``, ``service_request_id``, ``token``, value keys) are always strings: the
  spec's examples write ``001`` bare, which is not JSON.

Errors are :class:`Open311Error` (an HTTP status and one or more ``(code, description)``); the
HTTP layer (server/http/open311.py) renders them in the format the URL asked for.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from server.runtime.contacts import IDEMPOTENCY_KEY

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"xml": "text/xml", "json": "application/json"}
CONTENT_TYPES = {fmt: f"{mime}; charset=utf-8" for fmt, mime in FORMATS.items()}
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
SERVICE_TYPES = ("realtime", "batch", "blackbox")
STATUSES = ("open", "closed")
MAX_DESCRIPTION = 4000  # characters (the spec's limit on description)
MAX_SPAN = timedelta(days=90)  # GET requests: the widest start_date..end_date, and the default
MAX_FIELDS = 200  # form fields read from one POST body
MAX_VALUE = 4000  # characters of any one form value but the description

# A list element and the name of its items (XML), e.g. <services><service>...</service>.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}

Value = None | bool | int | float | str | Mapping[str, "Value"] | Sequence["Value"]


class Open311Error(Exception):
    """A refusal in the spec's error shape: HTTP ``status`` and its ``errors`` (code, text).

    ``code`` in the body is the HTTP status unless a more specific one is given.
    """

    def __init__(
        self,
        status: int,
        *errors: str | tuple[int, str],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.errors = [(status, e) if isinstance(e, str) else e for e in errors]
        self.headers = dict(headers or {})
        super().__init__("; ".join(text for _, text in self.errors))


def missing(*names: str) -> Open311Error:
    """400 naming each missing parameter (one error each, as the spec allows several)."""
    return Open311Error(400, *(f"{name} was not provided" for name in names))


# --- rendering -------------------------------------------------------------------------------


def _text(value: Value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _xml(tag: str, value: Value, out: list[str]) -> None:
    kind = type(value)  # concrete types first, as in _spark
    if value is None or value == "":
        out.append(f"<{tag}/>")
    elif kind is dict or (kind is not str and isinstance(value, Mapping)):
        out.append(f"<{tag}>")
        for child, child_value in value.items():  # type: ignore[union-attr]
            _xml(child, child_value, out)
        out.append(f"</{tag}>")
    elif kind is list or kind is tuple:
        item = ITEM_TAGS[tag]
        out.append(f"<{tag}>")
        for element in value:  # type: ignore[union-attr]
            _xml(item, element, out)
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{escape(_text(value))}</{tag}>")


def render_xml(root: str, document: Value) -> bytes:
    """The XML of ``document`` under the element ``root`` (UTF-8, with its declaration)."""
    out = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _xml(root, document, out)
    return "".join(out).encode("utf-8")


_SCALARS = (bool, int, float, type(None))


def _spark(value: Value) -> Any:
    # concrete types first, scalars of a dict inline: an isinstance check against the Mapping
    # ABC costs a microsecond, and GET requests renders 1,000 requests of 17 elements
    kind = type(value)
    if kind is dict:
        out: dict[str, Any] = {}
        for key, child in value.items():  # type: ignore[union-attr]
            child_kind = type(child)
            if child_kind is str:
                out[key] = child or None
            elif child_kind in _SCALARS:
                out[key] = child
            else:
                out[key] = _spark(child)
        return out
    if kind is str:
        return value or None
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [_spark(item) for item in value]  # type: ignore[union-attr]
    if isinstance(value, Mapping):
        return {key: _spark(child) for key, child in value.items()}
    return value


def render_json(document: Value) -> bytes:
    """The JSON of ``document`` (the Spark convention: list elements are arrays)."""
    return json.dumps(_spark(document), ensure_ascii=False).encode("utf-8")


def render(fmt: str, root: str, document: Value) -> bytes:
    """``document`` in ``fmt`` (``xml`` or ``json``)."""
    return render_xml(root, document) if fmt == "xml" else render_json(document)


def errors_document(error: Open311Error) -> list[dict[str, Value]]:
    """The ``errors`` list element of a refusal."""
    return [{"code": code, "description": text} for code, text in error.errors]


# --- the documents ---------------------------------------------------------------------------


def w3_time(moment: datetime) -> str:
    """A time in the W3C subset of ISO 8601 with its offset (``2010-04-14T06:37:38+07:00``)."""
    if moment.tzinfo is None:
        raise ValueError("an Open311 time needs a time zone")
    return moment.replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the discovery document."""

    url: str
    changeset: str
    type: str = "production"
    specification: str = SPECIFICATION
    formats: tuple[str, ...] = tuple(FORMATS.values())


def discovery_document(
    changeset: str, contact: str, key_service: str, endpoints: Iterable[Endpoint]
) -> dict[str, Value]:
    """``discovery``: when it changed, whom to contact, how to get a key, the endpoints."""
    return {
        "changeset": changeset,
        "contact": contact,
        "key_service": key_service,
        "endpoints": [
            {
                "specification": e.specification,
                "url": e.url,
                "changeset": e.changeset,
                "type": e.type,
                "formats": list(e.formats),
            }
            for e in endpoints
        ],
    }


@dataclass(frozen=True)
class AttributeValue:
    """One choice of a singlevaluelist or multivaluelist attribute."""

    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    """One attribute of a service definition (a field the client asks the citizen for)."""

    code: str
    datatype: str
    description: str
    required: bool = False
    variable: bool = True
    order: int = 1
    datatype_description: str | None = None
    values: tuple[AttributeValue, ...] = ()


@dataclass(frozen=True)
class Service:
    """A service (our feedback category) as Open311 lists it."""

    service_code: str
    service_name: str
    description: str | None = None
    type: str = "realtime"
    keywords: tuple[str, ...] = ()
    group: str | None = None
    attributes: tuple[Attribute, ...] = ()

    @property
    def metadata(self) -> bool:
        """True when the service has a definition (attributes) to fetch."""
        return bool(self.attributes)


def service_entry(service: Service) -> dict[str, Value]:
    """One ``service`` of the ``services`` list, in the spec's order."""
    return {
        "service_code": service.service_code,
        "service_name": service.service_name,
        "description": service.description,
        "metadata": service.metadata,
        "type": service.type,
        "keywords": ", ".join(service.keywords) or None,
        "group": service.group,
    }


def services_document(services: Iterable[Service]) -> list[dict[str, Value]]:
    """``services``."""
    return [service_entry(s) for s in services]


def service_definition_document(service: Service) -> dict[str, Value]:
    """``service_definition``: the service code and its attributes by ``order``."""
    attributes: list[dict[str, Value]] = []
    for a in sorted(service.attributes, key=lambda a: a.order):
        entry: dict[str, Value] = {
            "variable": a.variable,
            "code": a.code,
            "datatype": a.datatype,
            "required": a.required,
            "datatype_description": a.datatype_description,
            "order": a.order,
            "description": a.description,
        }
        if a.values:
            entry["values"] = [{"key": v.key, "name": v.name} for v in a.values]
        attributes.append(entry)
    return {"service_code": service.service_code, "attributes": attributes}


@dataclass(frozen=True)
class ServiceRequest:
    """One service request as Open311 shows it (never the sender's name or contacts)."""

    service_request_id: str
    status: str  # open | closed
    service_name: str
    service_code: str
    requested_datetime: datetime
    updated_datetime: datetime
    status_notes: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None


def request_entry(r: ServiceRequest) -> dict[str, Value]:
    """One ``request`` of ``service_requests`` (GET), every field in the spec's order."""
    return {
        "service_request_id": r.service_request_id,
        "status": r.status,
        "status_notes": r.status_notes,
        "service_name": r.service_name,
        "service_code": r.service_code,
        "description": r.description,
        "agency_responsible": r.agency_responsible,
        "service_notice": r.service_notice,
        "requested_datetime": w3_time(r.requested_datetime),
        "updated_datetime": w3_time(r.updated_datetime),
        "expected_datetime": None if r.expected_datetime is None else w3_time(r.expected_datetime),
        "address": r.address,
        "address_id": r.address_id,
        "zipcode": r.zipcode,
        "lat": r.lat,
        "long": r.long,
        "media_url": r.media_url,
    }


def requests_document(requests: Iterable[ServiceRequest]) -> list[dict[str, Value]]:
    """``service_requests`` (GET requests, GET one request)."""
    return [request_entry(r) for r in requests]


def created_document(
    *,
    service_request_id: str | None = None,
    token: str | None = None,
    service_notice: str | None = None,
    account_id: str | None = None,
) -> list[dict[str, Value]]:
    """``service_requests`` answering a POST: the request id (realtime) **or** the token
    (batch), never both; neither for a blackbox service."""
    if service_request_id is not None and token is not None:
        raise ValueError("a created request answers with its id or a token, not both")
    first: dict[str, Value] = {}
    if service_request_id is not None:
        first["service_request_id"] = service_request_id
    if token is not None:
        first["token"] = token
    return [{**first, "service_notice": service_notice, "account_id": account_id}]


def token_document(token: str, service_request_id: str | None) -> list[dict[str, Value]]:
    """``service_requests`` answering GET tokens/{token} (no id yet: an empty element)."""
    return [{"service_request_id": service_request_id, "token": token}]


# --- reading requests ------------------------------------------------------------------------


def check_jurisdiction(given: str | None, ours: str) -> None:
    """404 unless ``given`` is empty, missing or ``ours`` (the one jurisdiction served)."""
    if given and given.strip() and given.strip() != ours:
        raise Open311Error(404, f"jurisdiction_id {given.strip()!r} was not found")


def read_form(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    """The fields of a form-encoded UTF-8 POST body, with or without a charset parameter.

    400 for another content type, another charset, bytes that are not UTF-8, or too many fields.
    """
    mime, _, params = (content_type or "").partition(";")
    if mime.strip().lower() != "application/x-www-form-urlencoded":
        raise Open311Error(400, "the body must be application/x-www-form-urlencoded; charset=utf-8")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in {"utf-8", "utf8"}:
                raise Open311Error(400, f"charset {charset!r} is not accepted: send UTF-8")
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise Open311Error(400, "the body is not UTF-8") from None
    except ValueError:
        raise Open311Error(400, f"the body has more than {MAX_FIELDS} fields") from None


_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
_PLAIN_FIELDS = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)


@dataclass(frozen=True)
class NewRequest:
    """A POST requests body, read and checked against the service (not yet stored)."""

    service_code: str
    lat: float | None
    long: float | None
    address_string: str | None
    address_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    description: str | None
    media_url: str | None
    device_id: str | None
    account_id: str | None
    attributes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The sender's full name, Vietnamese order: family name first."""
        return " ".join(p for p in (self.last_name, self.first_name) if p)


@dataclass(frozen=True)
class RetryMarks:
    """How a retried POST is recognised (SHA-256 hex): its ``Idempotency-Key`` header if any,
    and its form without ``api_key`` (the fields sorted: their order does not matter)."""

    idempotency_key: str | None
    body_hash: str


def retry_marks(pairs: Iterable[tuple[str, str]], idempotency_key: str | None) -> RetryMarks:
    """The :class:`RetryMarks` of a POST; 400 for a key that is not 1 to 200 visible ASCII
    characters."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise Open311Error(400, "Idempotency-Key must be 1 to 200 visible ASCII characters")
    kept = sorted((name, value) for name, value in pairs if name != "api_key")
    body = hashlib.sha256(json.dumps(kept, ensure_ascii=False).encode()).hexdigest()
    key = None if idempotency_key is None else hashlib.sha256(idempotency_key.encode()).hexdigest()
    return RetryMarks(key, body)


def form_fields(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The plain fields (each once; empty ones dropped: "optional" means empty = absent) and the
    ``attribute[code]`` / ``attribute[code][]`` values. Unknown fields are ignored."""
    plain: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for name, value in pairs:
        if name != "description" and len(value) > MAX_VALUE:
            raise Open311Error(400, f"{name} is longer than {MAX_VALUE} characters")
        match = _ATTRIBUTE.match(name)
        if match:
            if value.strip():
                attributes.setdefault(match.group(1), []).append(value.strip())
        elif name in _PLAIN_FIELDS and value.strip():
            if name in plain:
                raise Open311Error(400, f"{name} was given twice")
            plain[name] = value.strip() if name != "description" else value
    return plain, attributes


def _coordinate(text: str, name: str, limit: float) -> float:
    try:
        number = float(text)
    except ValueError:
        raise Open311Error(400, f"{name} is not a number: {text!r}") from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise Open311Error(400, f"{name} must be between -{limit:g} and {limit:g}")
    return number


def check_attributes(service: Service, given: Mapping[str, list[str]]) -> list[str]:
    """Problems with the attributes given for ``service`` (empty: they are fine)."""
    problems: list[str] = []
    defined = {a.code: a for a in service.attributes}
    for code in given:
        if code not in defined:
            problems.append(f"attribute[{code}] is not an attribute of {service.service_code}")
    for a in sorted(service.attributes, key=lambda a: a.order):
        values = given.get(a.code, [])
        if not values:
            if a.required and a.variable:
                problems.append(f"attribute[{a.code}] was not provided")
            continue
        if a.datatype != "multivaluelist" and len(values) > 1:
            problems.append(f"attribute[{a.code}] takes one value")
        keys = {v.key for v in a.values}
        for value in values:
            if a.datatype in {"singlevaluelist", "multivaluelist"} and value not in keys:
                problems.append(f"attribute[{a.code}]: {value!r} is not one of its values")
            elif a.datatype == "number":
                try:
                    if not math.isfinite(float(value)):
                        raise ValueError(value)
                except ValueError:
                    problems.append(f"attribute[{a.code}]: {value!r} is not a number")
            elif a.datatype == "datetime":
                try:
                    parse_w3_time(value, f"attribute[{a.code}]")
                except Open311Error:
                    problems.append(f"attribute[{a.code}]: {value!r} is not a W3C date-time")
            elif a.datatype == "string" and ("\n" in value or "\r" in value):
                problems.append(f"attribute[{a.code}] is a string without line breaks")
    return problems


def new_request(
    plain: Mapping[str, str], attributes: Mapping[str, list[str]], service: Service
) -> NewRequest:
    """The POST body checked against ``service``: every problem at once, as 400 errors naming
    the parameters (a location, the contact NĐ 20/2008 Art. 7 requires: a name and a phone or
    e-mail, the required attributes, the description's length)."""
    problems: list[str] = []
    lat = long = None
    has_point = "lat" in plain or "long" in plain
    if has_point:
        if "lat" not in plain or "long" not in plain:
            problems.append(("long" if "lat" in plain else "lat") + " was not provided")
        else:
            try:
                lat = _coordinate(plain["lat"], "lat", 90)
                long = _coordinate(plain["long"], "long", 180)
            except Open311Error as exc:
                problems.extend(text for _, text in exc.errors)
    elif "address_string" not in plain and "address_id" not in plain:
        problems.append("a location was not provided: lat and long, address_string or address_id")
    if "first_name" not in plain and "last_name" not in plain:
        problems.append("first_name or last_name was not provided (the sender's name)")
    if "email" not in plain and "phone" not in plain:
        problems.append("email or phone was not provided (how to answer the sender)")
    description = plain.get("description")
    if description is not None and len(description) > MAX_DESCRIPTION:
        problems.append(f"description is longer than {MAX_DESCRIPTION} characters")
    problems.extend(check_attributes(service, attributes))
    if problems:
        raise Open311Error(400, *problems)
    return NewRequest(
        service_code=service.service_code,
        lat=lat,
        long=long,
        address_string=plain.get("address_string"),
        address_id=plain.get("address_id"),
        email=plain.get("email"),
        phone=plain.get("phone"),
        first_name=plain.get("first_name"),
        last_name=plain.get("last_name"),
        description=description,
        media_url=plain.get("media_url"),
        device_id=plain.get("device_id"),
        account_id=plain.get("account_id"),
        attributes={code: list(values) for code, values in attributes.items()},
    )


_W3 = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$", re.IGNORECASE
)


def parse_w3_time(text: str, name: str) -> datetime:
    """A W3C date-time (``2010-01-01T00:00:00Z``, ``…+07:00``; a bare date is midnight UTC).

    400 naming ``name`` for anything else, a time without a zone included.
    """
    text = text.strip()
    if not _W3.match(text):
        raise Open311Error(400, f"{name} must be a W3C date-time, e.g. 2010-01-01T00:00:00Z")
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} is not a valid date-time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _list(text: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))


@dataclass(frozen=True)
class RequestQuery:
    """GET requests: the ids (which override the rest), or codes, a window and statuses."""

    ids: tuple[str, ...]
    service_codes: tuple[str, ...]
    start: datetime
    end: datetime
    statuses: tuple[str, ...]


def request_query(params: Mapping[str, str], now: datetime) -> RequestQuery:
    """The query of GET requests. ``service_request_id`` overrides every other parameter;
    ``start_date``/``end_date`` may span 90 days at most; a missing one is 90 days from the
    other, both missing the last 90 days up to ``now``."""
    ids = _list(params.get("service_request_id"))
    if ids:
        return RequestQuery(ids, (), now - MAX_SPAN, now, ())
    codes = _list(params.get("service_code"))
    statuses = _list(params.get("status"))
    for status in statuses:
        if status not in STATUSES:
            raise Open311Error(400, f"status must be open or closed, not {status!r}")
    start_text = (params.get("start_date") or "").strip()
    end_text = (params.get("end_date") or "").strip()
    start = parse_w3_time(start_text, "start_date") if start_text else None
    end = parse_w3_time(end_text, "end_date") if end_text else None
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    return RequestQuery(ids, codes, start, end, statuses)
