"""The VDXP header codec and answer builders (server/vdxp/protocol.py), byte for byte."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from server.vdxp import protocol as p
from server.vdxp.errors import AuthError, ErrorCode, RequestError

SECRET = "s3cr3t-of-G22"


def _received(headers: dict[str, str]) -> list[tuple[str, str]]:
    """What aiohttp hands the server: (name, value) pairs, values decoded with surrogateescape."""
    return list(headers.items())


def _mangle(text: str) -> str:
    """What the Java stack puts on the wire for a header value, as aiohttp decodes it."""
    raw = bytes(ord(c) & 0xFF for c in text)
    return raw.decode("utf-8", "surrogateescape")


def _sdk_headers(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    full = {
        **params,
        "systemid": "sys-g22",
        "timestamp": "25112026T104501+0042",
        "Content-Type": "application/json",
    }
    return p.signed_headers(full, secret)


# -- small codecs ------------------------------------------------------------------------


def test_unpadded_hex_drops_leading_zeros_of_each_byte() -> None:
    assert p.unpadded_hex(bytes([0x00, 0x0A, 0xAB, 0x10])) == "0aab10"
    digest = hashlib.sha256(b"x").digest()
    assert p.unpadded_hex(digest) == "".join(format(b, "x") for b in digest)


def test_hash_file_length_is_61_to_64_and_matches_either_form() -> None:
    # find a payload whose digest has at least one byte < 0x10 (most have)
    data = next(bytes([i]) for i in range(256) if min(hashlib.sha256(bytes([i])).digest()) < 16)
    digest = hashlib.sha256(data).digest()
    value = p.hash_file(data)
    assert 61 <= len(value) < 64
    assert p.hash_file_matches(digest, value)
    assert p.hash_file_matches(digest, value.upper())
    assert p.hash_file_matches(digest, digest.hex())
    assert not p.hash_file_matches(digest, p.hash_file(data + b"\r\n"))
    assert not p.hash_file_matches(digest, "")
    assert not p.hash_file_matches(digest, "zz")


def test_timestamp_round_trip_and_literal_plus() -> None:
    moment = datetime(2026, 11, 25, 3, 45, 1, 42_000, tzinfo=UTC)
    text = p.format_timestamp(moment)
    assert text == "25112026T104501+0042"  # Vietnam time, + literal, 4-digit milliseconds
    assert p.parse_timestamp(text) == moment
    assert p.parse_timestamp("2026-11-25") is None
    assert p.parse_timestamp("32132026T104501+0042") is None


def test_to_as_json_string_list_or_bare() -> None:
    assert p.parse_to('"000.00.00.H41"') == ["000.00.00.H41"]
    assert p.parse_to('["000.00.00.H41","000.00.00.H51","000.00.00.H41"]') == [
        "000.00.00.H41",
        "000.00.00.H51",
    ]
    assert p.parse_to("000.00.00.H41") == ["000.00.00.H41"]
    with pytest.raises(RequestError):
        p.parse_to("[]")
    with pytest.raises(RequestError):
        p.parse_to('{"a": 1}')
    with pytest.raises(RequestError):
        p.parse_to('["", 3]')
    assert p.encode_to(["000.00.00.H41"]) == '"000.00.00.H41"'
    assert p.encode_to(["a", "b"]) == '["a","b"]'


# -- signing and verification ---------------------------------------------------------------


def test_signed_headers_have_sdk_shape() -> None:
    headers = _sdk_headers({"from": "000.00.00.G22", "to": '"000.00.00.H41"'})
    sign_header = headers["XroadVnpt-sign-header"]
    assert sign_header.startswith('{"XroadVnpt-from":"000.00.00.G22","XroadVnpt-to":"\\"000')
    assert headers["XroadVnpt-sign-header-key"] == "from;to;systemid;timestamp;Content-Type"
    expected = hmac.new(SECRET.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
    assert headers["XroadVnpt-hash-header"] == expected
    assert headers["XroadVnpt-to"] == '"000.00.00.H41"'


def test_verify_reads_headers_in_any_case() -> None:
    headers = _sdk_headers({"docId": "abc", "status": "done"})
    lowered = [(k.lower(), v) for k, v in headers.items()]
    auth = p.read_auth_headers(lowered)
    assert auth.system_id == "sys-g22"
    params = p.verify_signature(auth, lowered, SECRET)
    assert params.get("docid") == "abc"
    assert params.get("DOCID") == "abc"
    assert params.require("status") == "done"
    assert params.get("missing") is None
    with pytest.raises(RequestError) as info:
        params.require("to")
    assert info.value.code == ErrorCode.NOT_SIGNED


def test_verify_uses_the_exact_received_string_whatever_the_order() -> None:
    # A hand-built sign header with another key order and spaces: still valid as received.
    values = {"XroadVnpt-status": "done", "XroadVnpt-docid": "abc", "XroadVnpt-systemid": "sys"}
    sign_header = json.dumps(values)  # default separators: ", " and ": "
    headers = dict(values)
    headers["XroadVnpt-sign-header"] = sign_header
    headers["XroadVnpt-hash-header"] = p.hmac_hex(SECRET, sign_header.encode()).upper()
    auth = p.read_auth_headers(_received(headers))
    params = p.verify_signature(auth, _received(headers), SECRET)
    assert params.get("docId") == "abc"


def test_wrong_secret_is_refused() -> None:
    headers = _sdk_headers({"docId": "abc"})
    auth = p.read_auth_headers(_received(headers))
    with pytest.raises(AuthError) as info:
        p.verify_signature(auth, _received(headers), "another secret")
    assert info.value.code == ErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize(
    "missing", ["XroadVnpt-systemid", "XroadVnpt-sign-header", "XroadVnpt-hash-header"]
)
def test_missing_auth_header_is_refused(missing: str) -> None:
    headers = _sdk_headers({"docId": "abc"})
    del headers[missing]
    with pytest.raises(AuthError) as info:
        p.read_auth_headers(_received(headers))
    assert info.value.code == ErrorCode.MISSING_HEADER


def test_header_that_differs_from_its_signed_value_is_refused() -> None:
    headers = _sdk_headers({"docId": "abc"})
    headers["XroadVnpt-docId"] = "someone-elses"
    auth = p.read_auth_headers(_received(headers))
    with pytest.raises(AuthError) as info:
        p.verify_signature(auth, _received(headers), SECRET)
    assert info.value.code == ErrorCode.SIGNED_VALUE_MISMATCH


def test_signed_header_missing_from_request_is_refused() -> None:
    headers = _sdk_headers({"docId": "abc"})
    del headers["XroadVnpt-docId"]
    auth = p.read_auth_headers(_received(headers))
    with pytest.raises(AuthError) as info:
        p.verify_signature(auth, _received(headers), SECRET)
    assert info.value.code == ErrorCode.MISSING_HEADER


def test_unsigned_headers_are_not_parameters() -> None:
    headers = _sdk_headers({"status": "done"})
    headers["XroadVnpt-docId"] = "smuggled"  # accumulated or injected, but not signed
    auth = p.read_auth_headers(_received(headers))
    params = p.verify_signature(auth, _received(headers), SECRET)
    assert params.get("docId") is None


def test_key_list_must_match_the_sign_header() -> None:
    headers = _sdk_headers({"docId": "abc"})
    headers["XroadVnpt-sign-header-key"] = "XroadVnpt-docId"
    auth = p.read_auth_headers(_received(headers))
    with pytest.raises(AuthError):
        p.verify_signature(auth, _received(headers), SECRET)
    # keys with the prefix are accepted too
    headers = _sdk_headers({"docId": "abc"})
    headers["XroadVnpt-sign-header-key"] = (
        "XroadVnpt-docId;XroadVnpt-systemid;XroadVnpt-timestamp;XroadVnpt-Content-Type"
    )
    auth = p.read_auth_headers(_received(headers))
    assert p.verify_signature(auth, _received(headers), SECRET).get("docid") == "abc"


def test_docid_in_two_cases_with_two_values_is_ambiguous() -> None:
    headers = _sdk_headers({"docId": "abc", "docid": "xyz"})
    auth = p.read_auth_headers(_received(headers))
    params = p.verify_signature(auth, _received(headers), SECRET)
    with pytest.raises(RequestError) as info:
        params.get("docId")
    assert info.value.code == ErrorCode.AMBIGUOUS_HEADER
    assert sorted(params.all("DOCID")) == ["abc", "xyz"]
    same = _sdk_headers({"docId": "abc", "docid": "abc"})
    auth = p.read_auth_headers(_received(same))
    assert p.verify_signature(auth, _received(same), SECRET).get("docId") == "abc"


def test_mangled_non_ascii_value_gets_a_clear_error() -> None:
    # The client signs UTF-8 text; the wire carries one byte per character.
    headers = _sdk_headers({"from": "000.00.00.G22", "note": "Văn phòng Chính phủ"})
    wire = {k: _mangle(v) for k, v in headers.items()}
    auth = p.read_auth_headers(_received(wire))
    with pytest.raises(AuthError) as info:
        p.verify_signature(auth, _received(wire), SECRET)
    assert info.value.code == ErrorCode.MANGLED_HEADER
    assert "non-ASCII" in info.value.desc


def test_mangled_value_that_happens_to_be_valid_utf8_is_still_named() -> None:
    # "é" (U+00E9) mangles to the single byte 0xE9, and "©" to 0xA9: b"\xc3\xa9" is "é" in
    # UTF-8, so the wire text decodes cleanly but the HMAC cannot match.
    headers = _sdk_headers({"note": "Ã©"})
    wire = {k: _mangle(v) for k, v in headers.items()}
    assert "\udc00" not in wire["XroadVnpt-sign-header"]
    auth = p.read_auth_headers(_received(wire))
    with pytest.raises(AuthError) as info:
        p.verify_signature(auth, _received(wire), SECRET)
    assert info.value.code == ErrorCode.MANGLED_HEADER


def test_proper_utf8_header_from_a_non_java_client_verifies() -> None:
    headers = _sdk_headers({"note": "Nghệ An"})
    auth = p.read_auth_headers(_received(headers))
    assert p.verify_signature(auth, _received(headers), SECRET).get("note") == "Nghệ An"


def test_hand_concatenated_sign_header_with_unescaped_quotes() -> None:
    # Some agency software builds the JSON by hand: the quotes of `to` stay unescaped.
    sign_header = '{"XroadVnpt-to":""000.00.00.H41"","XroadVnpt-systemid":"sys"}'
    headers = {
        "XroadVnpt-to": '"000.00.00.H41"',
        "XroadVnpt-systemid": "sys",
        "XroadVnpt-sign-header": sign_header,
        "XroadVnpt-sign-header-key": "XroadVnpt-to;XroadVnpt-systemid",
        "XroadVnpt-hash-header": p.hmac_hex(SECRET, sign_header.encode()),
    }
    auth = p.read_auth_headers(_received(headers))
    params = p.verify_signature(auth, _received(headers), SECRET)
    assert p.parse_to(params.require("to")) == ["000.00.00.H41"]


def test_signed_systemid_must_be_the_header_systemid() -> None:
    headers = _sdk_headers({"docId": "abc"})
    headers["XroadVnpt-systemid"] = "sys-h41"
    auth = p.read_auth_headers(_received(headers))
    with pytest.raises(AuthError):
        p.verify_signature(auth, _received(headers), SECRET)


# -- answers ---------------------------------------------------------------------------------


def test_answers_are_ascii_with_every_field_and_no_null() -> None:
    body = p.encode_answer(p.ok(DocId="abc", data=[{"title": "Công văn", "x": None}]))
    assert body.isascii()
    decoded = json.loads(body)
    assert decoded["status"] == "OK"
    assert decoded["ErrorCode"] == "0"
    assert decoded["ErrorDesc"] == ""
    assert decoded["data"] == [{"title": "Công văn", "x": ""}]
    assert b"\\u00f4" in body  # "ô" escaped
    assert b"null" not in body
    failed = json.loads(p.encode_answer(p.fail(ErrorCode.NOT_FOUND, "không tìm thấy")))
    assert failed == {"status": "FAIL", "ErrorCode": "2007", "ErrorDesc": "không tìm thấy"}


def test_item_builders_fill_every_field() -> None:
    item = p.sent_item(senderDocId="1", title=None)
    assert set(item) == set(p.SENT_ITEM_FIELDS)
    assert all(isinstance(v, str) for v in item.values())
    with pytest.raises(ValueError):
        p.sent_item(bogus="1")
    received = p.received_item(
        doc_id="d",
        service_type="eDoc",
        message_type="edoc",
        created_time="",
        updated_time="",
        sender="a",
        recipient="b",
        status="initial",
        status_desc="",
    )
    assert list(received) == [
        "docId",
        "serviceType",
        "messageType",
        "created_time",
        "updated_time",
        "from",
        "to",
        "status",
        "status_desc",
    ]
    agency = p.agency_item(ident="a", parent=None, code="a", name="A", mail=None, qd20=True)
    assert agency == {
        "id": "a",
        "pid": "",
        "code": "a",
        "name": "A",
        "mail": "",
        "oldCode": "",
        "code102": "a",
    }
    unit = p.sync_unit_item(
        ident="a", parent=None, code="a", name="A", mail=None, center_code="LT", modify_date=""
    )
    assert set(unit) == {
        "code",
        "id",
        "mail",
        "name",
        "pid",
        "version",
        "centerCode",
        "deleted",
        "modifyDate",
        "isAgency",
    }
