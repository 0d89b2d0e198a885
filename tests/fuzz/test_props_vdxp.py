"""Properties of the VDXP header codec, server/vdxp/protocol.py (hypothesis; issue 18).

Whatever headers arrive, verifying them gives signed parameters or a VDXP refusal
(:class:`VdxpError`), never another exception; what :func:`signed_headers` writes, the server
reads back as the same parameters; ``to`` and the timestamp survive their encoding.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.vdxp import protocol
from server.vdxp.errors import VdxpError

PROPS = settings(derandomize=True, deadline=None, max_examples=200,
                 suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
SECRET = "s3cr3t-of-the-system"
# Parameter names and values as an agency's software sends them: ASCII, no CR/LF.
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
    lambda n: n.lower() not in {"sign-header", "sign-header-key", "hash-header", "systemid"}
)
VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip)
HEADER_TEXT = st.text(max_size=200) | st.sampled_from(
    ["[" * 3000 + "]" * 3000, "{}", "[]", "[1,2]", '[["a","b"]]', '{"a":{"b":[1]}}', "null"]
)


def _check(auth_headers: dict[str, str], secret: str = SECRET) -> protocol.SignedParams | None:
    try:
        auth = protocol.read_auth_headers(auth_headers.items())
        return protocol.verify_signature(auth, auth_headers.items(), secret)
    except VdxpError:
        return None


@PROPS
@given(st.dictionaries(st.sampled_from([protocol.H_SYSTEM_ID, protocol.H_SIGN_HEADER,
       protocol.H_SIGN_HEADER_KEY, protocol.H_HASH_HEADER, "XroadVnpt-to", "XroadVnpt-docId"]),
       HEADER_TEXT))  # fmt: skip
def test_any_headers_verify_or_are_refused(headers: dict[str, str]) -> None:
    _check(headers)


@PROPS
@given(HEADER_TEXT, st.sampled_from([None, "systemid", "a;b", ""]))
def test_any_sign_header_with_a_valid_hmac_verifies_or_is_refused(
    sign_header: str, keys: str | None
) -> None:
    """The HMAC is right (an agency with its secret): the JSON inside can still be anything."""
    headers = {
        protocol.H_SYSTEM_ID: "sys",
        protocol.H_SIGN_HEADER: sign_header,
        protocol.H_HASH_HEADER: protocol.hmac_hex(
            SECRET, sign_header.encode("utf-8", "surrogatepass")
        ),
    }
    if keys is not None:
        headers[protocol.H_SIGN_HEADER_KEY] = keys
    _check(headers)


@PROPS
@given(st.dictionaries(NAME, VALUE.filter(bool), max_size=6))
def test_signed_headers_read_back_as_the_same_parameters(params: dict[str, str]) -> None:
    ordered = {"systemid": "sys-1", "timestamp": "07122026T090000+0000", **params}
    headers = protocol.signed_headers(ordered, SECRET)
    signed = _check(headers)
    assert signed is not None and signed.system_id == "sys-1"
    by_name: dict[str, set[str]] = {}
    for key, value in ordered.items():
        by_name.setdefault(key.lower(), set()).add(value)
    for name, values in by_name.items():
        assert set(signed.all(name)) == values
    assert _check(headers, SECRET + "x") is None  # another secret never verifies


@PROPS
@given(st.text(max_size=300) | st.sampled_from(["[" * 5000 + "]" * 5000, "[[]]", "1", "{}"]))
def test_any_to_header_is_recipients_or_a_refusal(value: str) -> None:
    try:
        recipients = protocol.parse_to(value)
    except VdxpError:
        return
    assert recipients and all(isinstance(r, str) and r == r.strip() and r for r in recipients)


ORGAN_ID = st.from_regex(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}", fullmatch=True)


@PROPS
@given(st.lists(ORGAN_ID, min_size=1, max_size=5))
def test_to_round_trips(ids: list[str]) -> None:
    assert protocol.parse_to(protocol.encode_to(ids)) == list(dict.fromkeys(ids))


@PROPS
@given(st.datetimes(dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31)))
def test_timestamp_round_trips_to_the_millisecond(moment: dt.datetime) -> None:
    aware = moment.replace(tzinfo=protocol.VN_TZ)
    back = protocol.parse_timestamp(protocol.format_timestamp(aware))
    assert back == aware.replace(microsecond=aware.microsecond // 1000 * 1000)


@PROPS
@given(st.text(max_size=40))
def test_any_timestamp_text_reads_or_is_none(text: str) -> None:
    assert protocol.parse_timestamp(text) is None or protocol.parse_timestamp(text).tzinfo
