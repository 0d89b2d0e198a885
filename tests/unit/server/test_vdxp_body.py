"""The sendEdoc body stream: trailing CRLF removed once hash-file matches, whatever the chunking."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.vdxp.errors import ErrorCode, RequestError
from server.vdxp.protocol import hash_file
from server.vdxp.service import HashCheckedBody

PACKAGE = b"<edXML>" + bytes(range(256)) * 3 + b"</edXML>\r\n"  # a file that ends in CRLF itself


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
    yield b""  # empty chunks happen and must not disturb the held-back tail


async def _read(body: HashCheckedBody) -> bytes:
    return b"".join([chunk async for chunk in body])


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
async def test_sdk_body_loses_exactly_its_trailing_crlf(size: int) -> None:
    body = HashCheckedBody(_chunks(PACKAGE + b"\r\n", size), hash_file(PACKAGE))
    assert await _read(body) == PACKAGE


@pytest.mark.parametrize("size", [1, 5, 10_000])
async def test_body_without_crlf_is_kept_whole(size: int) -> None:
    body = HashCheckedBody(_chunks(PACKAGE, size), hash_file(PACKAGE).upper())
    assert await _read(body) == PACKAGE
    short = b"x"
    assert await _read(HashCheckedBody(_chunks(short, 1), hash_file(short))) == short


@pytest.mark.parametrize(
    "expected", [hash_file(PACKAGE + b"\r\n\r\n"), hash_file(b""), "", "not hex"]
)
async def test_mismatch_raises_inside_the_stream(expected: str) -> None:
    with pytest.raises(RequestError) as info:
        await _read(HashCheckedBody(_chunks(PACKAGE + b"\r\n", 100), expected))
    assert info.value.code == ErrorCode.HASH_FILE_MISMATCH


async def test_empty_body_with_hash_of_nothing() -> None:
    assert await _read(HashCheckedBody(_chunks(b"\r\n", 1), hash_file(b""))) == b""
