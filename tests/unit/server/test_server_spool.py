"""server.runtime.spool.receive: the body lands in one spool file written off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.runtime import spool

HEAD = b"<edXML><edXMLHeader><MessageHeader><From/></MessageHeader></edXMLHeader>"
MOMENT = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)


async def chunks(parts: list[bytes], gate: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if gate is not None:
        await gate.wait()


async def test_small_and_large_bodies_are_spooled_whole(tmp_path: Path) -> None:
    for tail in (b"<edXMLBody/></edXML>", b"x" * (3 * 1024 * 1024 + 7)):
        body = HEAD + tail
        parts = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        got = await spool.receive(
            chunks(parts), tmp_path, limit=10**8, organ_id="000.00.00.LT0", moment=MOMENT
        )
        stored = got.path.read_bytes()
        assert got.spliced
        assert got.received_sha256 == hashlib.sha256(body).hexdigest()
        assert got.sha256 == hashlib.sha256(stored).hexdigest()
        assert stored.endswith(tail)
        assert b"<OrganId>000.00.00.LT0</OrganId>" in stored
        got.path.unlink()


async def test_empty_body_gives_an_empty_file(tmp_path: Path) -> None:
    got = await spool.receive(chunks([]), tmp_path, limit=10, organ_id="A", moment=MOMENT)
    assert got.received_size == 0
    assert got.path.read_bytes() == b""


async def test_too_large_or_cancelled_leaves_no_file(tmp_path: Path) -> None:
    big = [b"y" * (512 * 1024)] * 6  # crosses the flush size before the limit
    with pytest.raises(spool.BodyTooLarge):
        await spool.receive(
            chunks([HEAD, *big]), tmp_path, limit=2 * 1024 * 1024, organ_id="A", moment=MOMENT
        )
    assert list(tmp_path.iterdir()) == []

    gate = asyncio.Event()  # never set: the body stops arriving half-way
    task = asyncio.create_task(
        spool.receive(
            chunks([HEAD, *big], gate), tmp_path, limit=10**8, organ_id="A", moment=MOMENT
        )
    )
    for _ in range(200):
        await asyncio.sleep(0.01)
        if list(tmp_path.iterdir()):
            break
    assert list(tmp_path.iterdir()), "a flush should have created the spool file"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(tmp_path.iterdir()) == []
