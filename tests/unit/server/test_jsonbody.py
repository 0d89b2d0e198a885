"""The one reader of JSON bodies (server/http/jsonbody.py, issue 18 finding 9)."""

from __future__ import annotations

import pytest

from server.http.jsonbody import MAX_DEPTH, JsonBodyError, depth, loads


def nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def test_nesting_up_to_the_bound_is_read() -> None:
    assert depth(loads(nested(MAX_DEPTH))) == MAX_DEPTH
    assert loads(b'{"url": "https://x", "secret": "s"}') == {"url": "https://x", "secret": "s"}
    assert loads("[1, [2, [3]]]") == [1, [2, [3]]]


@pytest.mark.parametrize(
    "body",
    [nested(MAX_DEPTH + 1), b"[" * 50_000 + b"]" * 50_000, b"[" * 900 + b"]" * 900],
    ids=["one-too-deep", "past-the-recursion-limit", "under-it"],
)
def test_deeper_nesting_is_refused_in_plain_words(body: bytes) -> None:
    with pytest.raises(JsonBodyError, match="nested deeper than 32 levels"):
        loads(body)


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe{", b"{'a': 1}", b"NaN]"])
def test_what_is_not_json_is_a_json_body_error(body: bytes) -> None:
    with pytest.raises(JsonBodyError, match="not valid JSON"):
        loads(body)


def test_depth_is_measured_without_recursion() -> None:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    assert depth(value) == 100_001
    assert depth([1] * 100_000) == 1 and depth("x") == 0 and depth({}) == 1
