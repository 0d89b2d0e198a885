"""The national axis client protocol (VDXP) as pure functions: headers in, answers out.

Byte-level facts come from ``shared/VDXP-PROTOCOL.md`` (read off the Java SDK, SDKVXP 2.0.1):

- every parameter travels in an ``XroadVnpt-<key>`` header; the caller signs them with
  ``XroadVnpt-sign-header`` (compact JSON of the signed headers, in the caller's unordered map
  order), ``XroadVnpt-sign-header-key`` (the map's keys, unprefixed, joined by ``;``) and
  ``XroadVnpt-hash-header`` (hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, over the
  exact sign-header string);
- ``XroadVnpt-hash-file`` is the SHA-256 of a sendEdoc body without its trailing CRLF, each byte
  written in hex *without zero padding*;
- answers are ASCII-only JSON (the client decodes them as US-ASCII) with ``status``,
  ``ErrorCode`` and ``ErrorDesc`` always present, and no ``null`` anywhere (one null in a list
  item makes the client drop the whole list).

Nothing here does I/O: the HTTP layer (``server/http/vdxp.py``) and the client
(``server/vdxp/client.py``) both build on these functions, so what one writes the other reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from server.vdxp.errors import AuthError, ErrorCode, RequestError

PREFIX = "XroadVnpt-"
VERSION = "3.0.201608"
USER_AGENT = "JAVASDKAgent/1.0.0 XRoad/VPCP"

H_SYSTEM_ID = PREFIX + "systemid"
H_TIMESTAMP = PREFIX + "timestamp"
H_SIGN_HEADER = PREFIX + "sign-header"
H_SIGN_HEADER_KEY = PREFIX + "sign-header-key"
H_HASH_HEADER = PREFIX + "hash-header"
H_HASH_FILE = PREFIX + "hash-file"
H_VERSION = PREFIX + "version"
H_CONTENT_TYPE = PREFIX + "Content-Type"

# The signature headers themselves are never part of the signed map.
_SIGNATURE_HEADERS = frozenset(h.lower() for h in (H_SIGN_HEADER, H_SIGN_HEADER_KEY, H_HASH_HEADER))

# Vietnam has no daylight saving time: a fixed offset is exact.
VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

_TIMESTAMP_RE = re.compile(r"^(\d{2})(\d{2})(\d{4})T(\d{2})(\d{2})(\d{2})\+(\d{1,4})$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
# A signature header larger than this is not a client's: refuse before hashing it.
_MAX_SIGN_HEADER = 64 * 1024


# --------------------------------------------------------------------------- small codecs


def unpadded_hex(digest: bytes) -> str:
    """Hex of ``digest`` as the SDK writes it: no zero padding per byte (``0x0a`` -> ``a``).

    This loses information (``a`` + ``b`` could be ``0x0a 0x0b`` or ``0xab``): it is only ever
    compared, never decoded.
    """
    return "".join(f"{byte:x}" for byte in digest)


def hash_file(data: bytes) -> str:
    """The ``XroadVnpt-hash-file`` value for a file: unpadded hex SHA-256 of its bytes."""
    return unpadded_hex(hashlib.sha256(data).digest())


def hash_file_matches(digest: bytes, header: str) -> bool:
    """Whether ``header`` names ``digest``: unpadded (the SDK) or padded (other clients) hex.

    Case-insensitive; compared in constant time (the value is public, but it costs nothing).
    """
    value = header.strip().lower()
    if not value or not _HEX_RE.match(value):
        return False
    unpadded = unpadded_hex(digest)
    padded = digest.hex()
    return hmac.compare_digest(value, unpadded) or hmac.compare_digest(value, padded)


def format_timestamp(moment: datetime) -> str:
    """``ddMMyyyy'T'HHmmss+SSSS`` in Vietnam time; ``+`` is literal, SSSS the milliseconds."""
    local = moment.astimezone(VN_TZ) if moment.tzinfo else moment
    return f"{local:%d%m%Y}T{local:%H%M%S}+{local.microsecond // 1000:04d}"


def parse_timestamp(value: str) -> datetime | None:
    """Read a VDXP timestamp as an aware datetime (Vietnam time), or None when malformed.

    The SDK takes it once per client object and repeats it for hours: the axis refuses it only
    outside ``[vdxp] timestamp_window`` (a day by default, server/vdxp/replay.py).
    """
    m = _TIMESTAMP_RE.match(value.strip())
    if not m:
        return None
    day, month, year, hour, minute, second, millis = (int(g) for g in m.groups())
    try:
        return datetime(
            year, month, day, hour, minute, second, min(millis, 999) * 1000, tzinfo=VN_TZ
        )
    except ValueError:
        return None


def hmac_hex(secret: str, message: bytes) -> str:
    """Lowercase hex HMAC-SHA256 keyed with the secret's UTF-8 bytes (not base64-decoded)."""
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def encode_to(recipients: Sequence[str] | str) -> str:
    """The ``to`` header value: JSON text, a string with its quotes or a list of strings."""
    if isinstance(recipients, str):
        return json.dumps(recipients, ensure_ascii=False)
    items = list(recipients)
    if len(items) == 1:
        return json.dumps(items[0], ensure_ascii=False)
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def parse_to(value: str) -> list[str]:
    """Recipients from a ``to`` header: ``"X"`` (with quotes), ``["X","Y"]`` or a bare ``X``.

    Duplicates are dropped, order kept. Raise :class:`RequestError` when no id can be read.
    """
    text = value.strip()
    items: list[Any]
    try:
        decoded = json.loads(text)
    except RecursionError:  # thousands of brackets: no client's list of recipients
        raise RequestError("header XroadVnpt-to is nested too deeply") from None
    except ValueError:
        # Not JSON: tolerate a bare id or a comma-separated list from hand-written clients.
        items = [part.strip() for part in text.split(",")]
    else:
        if isinstance(decoded, str):
            items = [decoded]
        elif isinstance(decoded, list):
            items = decoded
        else:
            raise RequestError("header XroadVnpt-to must be a JSON string or a JSON list")
    result: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise RequestError("header XroadVnpt-to contains an empty or non-text recipient")
        ident = item.strip()
        if ident not in result:
            result.append(ident)
    if not result:
        raise RequestError("header XroadVnpt-to names no recipient")
    return result


# --------------------------------------------------------------------------- signing (client)


def header_name(key: str) -> str:
    """The HTTP header carrying parameter ``key`` (``from`` -> ``XroadVnpt-from``)."""
    return key if key.lower().startswith(PREFIX.lower()) else PREFIX + key


def signed_headers(params: Mapping[str, str], secret: str) -> dict[str, str]:
    """Every ``XroadVnpt-*`` header the SDK sends for ``params``, signed with ``secret``.

    ``params`` is the client's map, already holding ``systemid``, ``timestamp`` and
    ``Content-Type`` (and ``hash-file`` for sendEdoc); its iteration order is the order of the
    keys in the signature, as in the SDK. Values are sent as they are: the caller makes sure
    they are ASCII (the Java client would send non-ASCII mangled).
    """
    headers: dict[str, str] = {}
    keys: list[str] = []
    for key, value in params.items():
        headers[header_name(key)] = value
        # The SDK lists the map's own keys, without the XroadVnpt- prefix.
        keys.append(key)
    sign_header = json.dumps(headers, ensure_ascii=False, separators=(",", ":"))
    headers[H_SIGN_HEADER_KEY] = ";".join(keys)
    headers[H_SIGN_HEADER] = sign_header
    headers[H_HASH_HEADER] = hmac_hex(secret, sign_header.encode("utf-8"))
    return headers


# --------------------------------------------------------------------------- verifying (server)


def _raw_bytes(value: str) -> bytes:
    """The bytes received for a header value (aiohttp decodes UTF-8 with surrogateescape)."""
    return value.encode("utf-8", "surrogateescape")


def _is_mangled(value: str) -> bool:
    """Whether a received header value cannot be what a client signed as UTF-8 text.

    The Java client sends only the low byte of each character, so Vietnamese letters arrive as
    stray bytes: invalid UTF-8 (seen here as lone surrogates) or control characters (``Đ``
    U+0110 arrives as 0x10).
    """
    for ch in value:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF or (code < 0x20 and ch != "\t") or code == 0x7F:
            return True
    return False


@dataclass(frozen=True)
class AuthHeaders:
    """The authentication headers of one request, as received."""

    system_id: str
    sign_header: str
    hash_header: str
    sign_header_key: str | None


@dataclass(frozen=True)
class SignedParams:
    """The parameters covered by a verified signature, read case-insensitively.

    ``values`` maps the lowercase parameter name (without ``XroadVnpt-``) to the distinct
    values signed for it (two keys differing only in case, ``docId`` and ``docid``, may both
    occur). Operations read parameters from here only: an unsigned header is never trusted.
    """

    system_id: str
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        """The signed value of ``name``; None when unsigned; FAIL when signed with two values."""
        found = self.values.get(name.lower())
        if not found:
            return None
        if len(found) > 1:
            raise RequestError(
                f"parameter {name} is signed with {len(found)} different values",
                ErrorCode.AMBIGUOUS_HEADER,
            )
        return found[0]

    def all(self, name: str) -> tuple[str, ...]:
        """Every distinct value signed for ``name`` (the SDK may carry a stale ``docid`` next
        to a fresh ``docId``: the caller decides which one is meant)."""
        return tuple(v for v in self.values.get(name.lower(), ()) if v.strip())

    def require(self, name: str) -> str:
        """The signed value of ``name``; FAIL naming the header when it is absent or empty."""
        value = self.get(name)
        if value is None or not value.strip():
            raise RequestError(f"missing signed header {header_name(name)}", ErrorCode.NOT_SIGNED)
        return value.strip()


def _collect(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Header values by lowercase name (every occurrence kept)."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(name.lower(), []).append(value)
    return result


def _one(found: dict[str, list[str]], name: str) -> str | None:
    values = found.get(name.lower())
    if not values:
        return None
    if len(set(values)) > 1:
        raise AuthError(f"header {name} is sent more than once", ErrorCode.AMBIGUOUS_HEADER)
    return values[0]


def read_auth_headers(headers: Iterable[tuple[str, str]]) -> AuthHeaders:
    """The systemid and signature headers of a request; :class:`AuthError` when one is missing.

    ``headers`` yields ``(name, value)`` pairs (``request.headers.items()`` of aiohttp, which
    keeps repeated headers). Names are matched case-insensitively.
    """
    found = _collect(headers)
    system_id = _one(found, H_SYSTEM_ID)
    sign_header = _one(found, H_SIGN_HEADER)
    hash_header = _one(found, H_HASH_HEADER)
    for name, value in (
        (H_SYSTEM_ID, system_id),
        (H_SIGN_HEADER, sign_header),
        (H_HASH_HEADER, hash_header),
    ):
        if value is None or not value.strip():
            raise AuthError(f"missing header {name}", ErrorCode.MISSING_HEADER)
    assert system_id is not None and sign_header is not None and hash_header is not None
    if _is_mangled(system_id):
        raise AuthError(
            "header XroadVnpt-systemid contains non-ASCII characters that arrived mangled",
            ErrorCode.MANGLED_HEADER,
        )
    return AuthHeaders(
        system_id=system_id.strip(),
        sign_header=sign_header,
        hash_header=hash_header.strip(),
        sign_header_key=_one(found, H_SIGN_HEADER_KEY),
    )


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in their order (told apart from a JSON array)."""


def _pairs_from_json(sign_header: str) -> list[tuple[str, str]] | None:
    """The (header, value) pairs of a JSON sign-header, None when it is not a JSON object."""
    try:
        decoded = json.loads(sign_header, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, _Pairs):  # a JSON array or scalar is no map of headers
        return None
    result: list[tuple[str, str]] = []
    for key, value in decoded:
        if isinstance(value, str):
            result.append((key, value))
        elif value is None:
            result.append((key, ""))
        else:
            result.append((key, json.dumps(value, ensure_ascii=False, separators=(",", ":"))))
    return result


def _pairs_by_keys(sign_header: str, key_list: str) -> list[tuple[str, str]] | None:
    """Split a sign-header that is not valid JSON using the ordered key list.

    Some builds of agency software concatenate the JSON by hand, so a ``to`` value keeps its
    own quotes unescaped (``"XroadVnpt-to":""X""``). The signature is still over these exact
    bytes; knowing the keys and their order is enough to cut the values out.
    """
    keys = [header_name(k.strip()) for k in key_list.split(";") if k.strip()]
    text = sign_header.strip()
    if not keys or not (text.startswith("{") and text.endswith("}")):
        return None
    markers: list[tuple[int, int, str]] = []
    pos = 1
    for key in keys:
        marker = f'"{key}":'
        start = text.find(marker, pos)
        if start < 0:
            return None
        markers.append((start, start + len(marker), key))
        pos = start + len(marker)
    pairs: list[tuple[str, str]] = []
    for index, (_start, value_start, key) in enumerate(markers):
        if index + 1 < len(markers):
            end = markers[index + 1][0]
            raw = text[value_start:end].rstrip()
            if not raw.endswith(","):
                return None
            raw = raw[:-1]
        else:
            raw = text[value_start:-1]
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
            raw = raw[1:-1]
        pairs.append((key, raw))
    return pairs


def verify_signature(
    auth: AuthHeaders, headers: Iterable[tuple[str, str]], secret: str
) -> SignedParams:
    """Check a request's signature and return the parameters it covers.

    1. HMAC-SHA256(secret, the sign-header string exactly as received) must equal
       ``hash-header`` (compared in constant time); the string is never rebuilt, because the
       SDK's key order varies from call to call.
    2. Every value in the sign-header must equal its individual ``XroadVnpt-*`` header.

    Non-ASCII values the Java client mangled are reported as such (the HMAC was computed over
    UTF-8 the server never received). Raise :class:`AuthError` on any mismatch.
    """
    if len(auth.sign_header) > _MAX_SIGN_HEADER:
        raise AuthError("header XroadVnpt-sign-header is too large", ErrorCode.BAD_PARAMETER)
    if _is_mangled(auth.sign_header):
        raise AuthError(
            "header XroadVnpt-sign-header contains non-ASCII characters that arrived mangled "
            "(the client sent one byte per character): send ASCII values only",
            ErrorCode.MANGLED_HEADER,
        )
    expected = hmac_hex(secret, _raw_bytes(auth.sign_header))
    received = auth.hash_header.lower()
    if not received.isascii() or not hmac.compare_digest(expected, received):
        if not auth.sign_header.isascii():
            raise AuthError(
                "the signature does not match and header XroadVnpt-sign-header contains "
                "non-ASCII characters: they were probably mangled in transit; send ASCII only",
                ErrorCode.MANGLED_HEADER,
            )
        raise AuthError(
            "the signature (XroadVnpt-hash-header) does not match: wrong secret for this "
            "system id (or a non-ASCII header value was mangled in transit)",
            ErrorCode.BAD_SIGNATURE,
        )

    pairs = _pairs_from_json(auth.sign_header)
    if pairs is None and auth.sign_header_key:
        pairs = _pairs_by_keys(auth.sign_header, auth.sign_header_key)
    if pairs is None:
        raise AuthError(
            "header XroadVnpt-sign-header is not a JSON object of the signed headers",
            ErrorCode.BAD_PARAMETER,
        )

    if auth.sign_header_key is not None:
        listed = {
            header_name(k.strip()).lower() for k in auth.sign_header_key.split(";") if k.strip()
        }
        if listed != {header_name(k).lower() for k, _ in pairs}:
            raise AuthError(
                "header XroadVnpt-sign-header-key does not list the keys of the sign-header",
                ErrorCode.SIGNED_VALUE_MISMATCH,
            )

    found = _collect(headers)
    values: dict[str, list[str]] = {}
    for key, signed in pairs:
        name = header_name(key)
        if name.lower() in _SIGNATURE_HEADERS:
            continue
        got = found.get(name.lower())
        if not got:
            raise AuthError(
                f"signed header {name} is missing from the request", ErrorCode.MISSING_HEADER
            )
        for value in got:
            if _is_mangled(value):
                raise AuthError(
                    f"header {name} contains non-ASCII characters that arrived mangled",
                    ErrorCode.MANGLED_HEADER,
                )
        # HTTP strips surrounding whitespace from header values: compare without it.
        if not any(
            hmac.compare_digest(_raw_bytes(v.strip()), _raw_bytes(signed.strip())) for v in got
        ):
            raise AuthError(
                f"header {name} differs from its signed value", ErrorCode.SIGNED_VALUE_MISMATCH
            )
        param = name[len(PREFIX) :].lower()
        bucket = values.setdefault(param, [])
        if signed.strip() not in bucket:
            bucket.append(signed.strip())

    system_values = values.get("systemid")
    if system_values is not None and system_values != [auth.system_id]:
        raise AuthError(
            "the signed systemid differs from header XroadVnpt-systemid",
            ErrorCode.SIGNED_VALUE_MISMATCH,
        )
    return SignedParams(system_id=auth.system_id, values={k: tuple(v) for k, v in values.items()})


# --------------------------------------------------------------------------- answers


def _no_nulls(value: Any) -> Any:
    """A copy of ``value`` with every None replaced by an empty string (the SDK chokes on null)."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return {str(k): _no_nulls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nulls(v) for v in value]
    return value


def ok(**fields: Any) -> dict[str, Any]:
    """A success answer: ``status`` OK, ``ErrorCode`` "0", ``ErrorDesc`` and the given fields."""
    answer: dict[str, Any] = {"status": "OK", "ErrorCode": ErrorCode.OK.value, "ErrorDesc": ""}
    answer.update(fields)
    return answer


def fail(code: ErrorCode | str, desc: str, **fields: Any) -> dict[str, Any]:
    """A FAIL answer with a stable code and plain-words description (plus fields, all present)."""
    answer: dict[str, Any] = {"status": "FAIL", "ErrorCode": str(code), "ErrorDesc": desc}
    answer.update(fields)
    return answer


def encode_answer(answer: Mapping[str, Any]) -> bytes:
    """The answer body: compact JSON, ASCII only (non-ASCII as ``\\uXXXX``), no nulls."""
    return json.dumps(_no_nulls(answer), ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def received_item(
    *,
    doc_id: str,
    service_type: str,
    message_type: str,
    created_time: str,
    updated_time: str,
    sender: str,
    recipient: str,
    status: str,
    status_desc: str,
) -> dict[str, str]:
    """One item of getReceivedEdocList, every field present."""
    return {
        "docId": _text(doc_id),
        "serviceType": _text(service_type),
        "messageType": _text(message_type),
        "created_time": _text(created_time),
        "updated_time": _text(updated_time),
        "from": _text(sender),
        "to": _text(recipient),
        "status": _text(status),
        "status_desc": _text(status_desc),
    }


SENT_ITEM_FIELDS = (
    "senderDocId",
    "receiverDocId",
    "fromCode",
    "toCode",
    "sendStatus",
    "sendStatusDesc",
    "receiveStatus",
    "receiveStatusDesc",
    "title",
    "notation",
    "sentTime",
    "receivedTime",
    "serviceType",
    "messageType",
)


def sent_item(**fields: Any) -> dict[str, str]:
    """One item of getSentEdocList: exactly :data:`SENT_ITEM_FIELDS`, missing ones as ``""``."""
    unknown = set(fields) - set(SENT_ITEM_FIELDS)
    if unknown:
        raise ValueError(f"unknown sent item fields: {sorted(unknown)}")
    return {name: _text(fields.get(name)) for name in SENT_ITEM_FIELDS}


def agency_item(
    *, ident: str, parent: str | None, code: str, name: str, mail: str | None, qd20: bool = False
) -> dict[str, str]:
    """One item of getAgenciesList (``qd20``: the getAgenciesListQD20 variant with ``code102``)."""
    item = {
        "id": _text(ident),
        "pid": _text(parent),
        "code": _text(code),
        "name": _text(name),
        "mail": _text(mail),
        "oldCode": "",
    }
    if qd20:
        item["code102"] = _text(code)
    return item


def sync_unit_item(
    *,
    ident: str,
    parent: str | None,
    code: str,
    name: str,
    mail: str | None,
    center_code: str,
    modify_date: str,
    deleted: bool = False,
    is_agency: bool = True,
    version: int = 1,
) -> dict[str, Any]:
    """One unit of getSynchronizeUnit, every field present."""
    return {
        "code": _text(code),
        "id": _text(ident),
        "mail": _text(mail),
        "name": _text(name),
        "pid": _text(parent),
        "version": int(version),  # the SDK reads it with getAsInt
        "centerCode": _text(center_code),
        "deleted": bool(deleted),
        "modifyDate": _text(modify_date),
        "isAgency": bool(is_agency),
    }


def format_answer_time(moment: datetime | None) -> str:
    """Times in answers: ``dd/MM/yyyy HH:mm:ss`` in Vietnam time (``""`` when unknown)."""
    if moment is None:
        return ""
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M:%S")
