"""EarlyParse: a package parsed while its spool file is written gives what a parse after the
fact gives (result or error); a body that fails stops the parse; a short body never starts it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import BinaryIO

import pytest

import edxml
from edxml import (
    Attachment,
    DiscardSink,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    StatusMessage,
)
from server.exchange.early_parse import EarlyParse

STEP = 256 * 1024


def package(size: int) -> bytes:
    att = Attachment("att0", name="lon.pdf", content_type="application/pdf", data=os.urandom(size))
    return edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization("000.00.00.G22", organ_name="VPCP"),
                to=(Organization("000.00.00.H41", organ_name="Nghệ An"),),
                document_id="000.00.00.G22,2024/05/01,1/EARLY",
                subject="Văn bản lớn",
            ),
            manifest=(ManifestReference("cid:att0", att.content_type, None, att.name),),
            attachments=(att,),
        )
    )


def parse(source: BinaryIO | Path) -> Envelope | StatusMessage:
    return edxml.parse(source, sink=DiscardSink())


async def write_following(
    path: Path, body: bytes, early: EarlyParse[Envelope | StatusMessage], upto: int | None = None
) -> None:
    """Write ``body`` (up to ``upto``) in steps, telling ``early`` after each, yielding to
    the loop between steps so the parse thread runs beside the writes."""
    end = len(body) if upto is None else upto
    with path.open("wb") as out:
        for start in range(0, end, STEP):
            out.write(body[start : min(start + STEP, end)])
            out.flush()
            early.written(path, min(start + STEP, end), last=upto is None and start + STEP >= end)
            await asyncio.sleep(0)


async def test_parse_while_written_equals_parse_after(tmp_path: Path) -> None:
    body = package(3 * 1024 * 1024)
    path = tmp_path / "p.edxml"
    early: EarlyParse[Envelope | StatusMessage] = EarlyParse(parse, threshold=1024 * 1024)
    await write_following(path, body, early)
    assert early.started
    got = await early.result()
    want = parse(path)
    assert isinstance(got, Envelope) and isinstance(want, Envelope)
    assert got.header == want.header
    assert [(a.size, a.sha256) for a in got.attachments] == [
        (a.size, a.sha256) for a in want.attachments
    ]


async def test_bad_xml_at_the_end_is_the_same_error(tmp_path: Path) -> None:
    body = package(3 * 1024 * 1024)
    body = body[: -len(b"</edXMLEnvelope>") - 1] + b"<oops>"
    path = tmp_path / "p.edxml"
    early: EarlyParse[Envelope | StatusMessage] = EarlyParse(parse, threshold=1024 * 1024)
    await write_following(path, body, early)
    with pytest.raises(edxml.EdxmlError) as after:
        parse(path)
    with pytest.raises(type(after.value)) as during:
        await early.result()
    assert str(during.value) == str(after.value)


async def test_failed_body_stops_the_parse(tmp_path: Path) -> None:
    body = package(3 * 1024 * 1024)
    path = tmp_path / "p.edxml"
    early: EarlyParse[Envelope | StatusMessage] = EarlyParse(parse, threshold=1024 * 1024)
    await write_following(path, body, early, upto=2 * 1024 * 1024)
    assert early.started
    early.abort()  # the body will never be complete: the waiting parse must end
    with pytest.raises(Exception, match="failed before its end"):
        await early.result()


async def test_short_body_never_starts(tmp_path: Path) -> None:
    body = package(64 * 1024)
    path = tmp_path / "p.edxml"
    early: EarlyParse[Envelope | StatusMessage] = EarlyParse(parse, threshold=1024 * 1024)
    await write_following(path, body, early)
    assert not early.started


async def test_parse_queued_behind_waiting_bodies_is_withdrawn(tmp_path: Path) -> None:
    body = package(3 * 1024 * 1024)
    waiting: list[EarlyParse[Envelope | StatusMessage]] = []
    for n in range(4):  # as many as the early-parse threads: each waits for its body
        early: EarlyParse[Envelope | StatusMessage] = EarlyParse(parse, threshold=1024 * 1024)
        await write_following(tmp_path / f"{n}.edxml", body, early, upto=2 * 1024 * 1024)
        assert await asyncio.to_thread(early._begun.wait, 60)  # its thread took it
        waiting.append(early)
    last: EarlyParse[Envelope | StatusMessage] = EarlyParse(parse, threshold=1024 * 1024)
    await write_following(tmp_path / "last.edxml", body, last)
    assert last.started
    assert last.withdraw()  # no thread is free: the package is parsed after the fact instead
    for early in waiting:
        assert not early.withdraw()  # these began: their result stands
        early.abort()
        with pytest.raises(Exception, match="failed before its end"):
            await early.result()
