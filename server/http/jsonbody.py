"""JSON request bodies, read in ONE place with a bound on nesting (issue 18, finding 9).

``json.loads`` recurses once per ``[`` or ``{``: a small body of 50,000 brackets raises
``RecursionError``, which no handler expected, and the client got a 500. Every JSON body of the
API (and of VDXP's registerAgency) is read here instead: nesting deeper than
:data:`MAX_DEPTH` is refused as bad input, like any other malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server.http.errors import HttpProblem

# No body the API reads nests beyond 3 or 4 levels; 32 leaves room and is far from the
# interpreter's recursion limit (1,000).
MAX_DEPTH = 32


class JsonBodyError(ValueError):
    """A body that is not JSON this API reads; its message says why in plain words."""


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar is 0), without
    recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in item)
    return deepest


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON body (UTF-8 bytes or text); :class:`JsonBodyError` when it is not JSON,
    or nests arrays and objects deeper than ``max_depth``.

    The parser itself stops at the interpreter's recursion limit (``RecursionError``, caught
    here); what it returns is then measured without recursion, so no caller ever walks a value
    deeper than ``max_depth``. Linear in the size of the body.
    """
    too_deep = JsonBodyError(f"the JSON is nested deeper than {max_depth} levels")
    try:
        value = json.loads(data)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise JsonBodyError(f"the body is not valid JSON ({exc})") from None
    if depth(value) > max_depth:
        raise too_deep
    return value


async def read_json(request: web.Request) -> Any:
    """The request's JSON body (any JSON value); :class:`JsonBodyError` when unreadable."""
    return loads(await request.read())


async def read_json_object(request: web.Request, example: str = "") -> dict[str, Any]:
    """The request's body as a JSON object; ``bad-request`` (400) otherwise, saying why."""
    try:
        body = await read_json(request)
    except JsonBodyError as exc:
        raise HttpProblem("bad-request", f"The body cannot be read: {exc}.") from None
    if not isinstance(body, dict):
        hint = f" Send {example} as JSON." if example else ""
        raise HttpProblem("bad-request", "The body must be a JSON object." + hint)
    return body
