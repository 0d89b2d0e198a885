"""Properties of the edXML reader and writer (hypothesis; issue 18, "Fuzzing in CI").

- any byte string, and any damage done to a real package, reads as a model or raises an
  :class:`EdxmlError`, never another exception, on both of the reader's ways (the tree of inputs
  up to ``tree_max_size`` and the streaming reader beyond);
- a generated envelope or status message survives ``serialize`` then ``parse`` unchanged, and
  serializing what was read gives the same bytes again.

Seeded (``derandomize``) and bounded, so a run is the same on every machine and takes seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edxml
from edxml import (
    VN_TZ,
    Attachment,
    Code,
    EdxmlError,
    Envelope,
    Limits,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)

PROPS = settings(
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The streaming reader: every input is "large" for it.
STREAMING = Limits(tree_max_size=0)

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "edxml"
SEEDS = [
    p.read_bytes()
    for p in sorted(CORPUS.rglob("*.edxml"))
    if p.stat().st_size < 64 * 1024 and p.name != "edoc.edxml"
][:8]


def read(data: bytes, limits: Limits | None = None) -> object:
    """parse(); the property: a model or an EdxmlError, nothing else escapes."""
    try:
        result = edxml.parse(data, limits=limits)
    except EdxmlError:
        return None
    assert isinstance(result, Envelope | StatusMessage)
    return result


@PROPS
@given(st.binary(max_size=4096))
def test_any_bytes_read_as_a_model_or_an_edxml_error(data: bytes) -> None:
    read(data)
    read(data, STREAMING)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real package with a few bytes replaced, removed, inserted or cut off."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "fragment"]))
        if how == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b"<!DOCTYPE x>",
                        b"<![CDATA[",
                        b"]]>",
                        b"&amp;",
                        b"&#0;",
                        b"&#x110000;",
                        b"<edXML:To>",
                        b"</edXML:To>",
                        b"<edXML:Attachment>",
                        b"\x00",
                        b"\xff\xfe",
                        b'<?xml version="1.0"?>',
                        b"<edXML:StatusCode>9</edXML:StatusCode>",
                        b"<edXML:ContentTransferEncoded>!!</edXML:ContentTransferEncoded>",
                    ]
                )
            )
    return bytes(data)


@PROPS
@given(damaged())
def test_damaged_packages_read_as_a_model_or_an_edxml_error(data: bytes) -> None:
    read(data)
    read(data, STREAMING)


def test_the_seeds_are_there() -> None:
    assert len(SEEDS) >= 4
    assert all(read(seed) is not None for seed in SEEDS)


# ---------------------------------------------------------------------------- round trip

# Text as a sender writes it: what XML 1.0 can carry, without edge whitespace (values are read
# trimmed) and never empty (an empty element reads as absent).
_XML_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=["Cs", "Cc"],
    exclude_characters="\ufffe\uffff",
) | st.sampled_from("\t\n")
TEXT = st.text(_XML_CHARS, min_size=1, max_size=40).map(str.strip).filter(bool)
ORGAN_ID = st.from_regex(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}", fullmatch=True)
DATE = st.dates(dt.date(1990, 1, 1), dt.date(2099, 12, 31))
MOMENT = st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=VN_TZ)
)


def _opt(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


ORGANIZATION = st.builds(
    Organization, ORGAN_ID, organ_name=_opt(TEXT), organ_add=_opt(TEXT), email=_opt(TEXT)
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    attachments = tuple(
        Attachment(
            f"cid:att{i}",
            name=draw(TEXT),
            content_type=draw(
                _opt(st.sampled_from(["application/pdf", "text/plain", "application/zip"]))
            ),
            data=draw(st.binary(max_size=300)),
        )
        for i in range(draw(st.integers(0, 3)))
    )
    header = MessageHeader(
        from_=draw(ORGANIZATION),
        to=tuple(draw(st.lists(ORGANIZATION, min_size=1, max_size=3))),
        document_id=draw(TEXT),
        subject=draw(_opt(TEXT)),
        content=draw(_opt(TEXT)),
        code=draw(_opt(st.builds(Code, TEXT, TEXT))),
        promulgation_info=draw(_opt(st.builds(PromulgationInfo, TEXT, DATE))),
        due_date=draw(_opt(DATE)),
        to_places=tuple(draw(st.lists(TEXT, max_size=3))),
        other_info=draw(_opt(st.builds(OtherInfo, priority=st.sampled_from(Priority)))),
        response_for=tuple(
            draw(st.lists(st.builds(ResponseFor, ORGAN_ID, TEXT, DATE, TEXT), max_size=2))
        ),
    )
    return Envelope(
        header=header,
        trace_headers=tuple(draw(st.lists(st.builds(TraceHeader, ORGAN_ID, MOMENT), max_size=2))),
        manifest=tuple(
            ManifestReference(a.content_id, a.content_type, None, a.name) for a in attachments
        ),
        attachments=attachments,
    )


STATUSES = st.builds(
    StatusMessage,
    from_=ORGANIZATION,
    response_for=st.builds(ResponseFor, ORGAN_ID, document_id=TEXT),
    status_code=st.sampled_from(StatusCode),
    staff_info=_opt(st.builds(StaffInfo, TEXT, TEXT)),
    description=_opt(TEXT),
    timestamp=_opt(MOMENT),
)


@PROPS
@given(envelopes() | STATUSES)
def test_serialize_then_parse_gives_the_same_model_and_bytes(
    model: Envelope | StatusMessage,
) -> None:
    data = edxml.serialize(model)
    back = edxml.parse(data)
    streamed = edxml.parse(io.BytesIO(data), limits=STREAMING)
    assert back == model
    assert streamed == model
    assert edxml.serialize(back) == data


@PROPS
@given(envelopes())
def test_a_written_package_reads_back_with_its_attachment_bytes(env: Envelope) -> None:
    back = edxml.parse(edxml.serialize(env))
    assert isinstance(back, Envelope)
    assert [a.data for a in back.attachments] == [a.data for a in env.attachments]
    assert dataclasses.replace(back, attachments=()) == dataclasses.replace(env, attachments=())
