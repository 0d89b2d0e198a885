"""Query parameters shared by the list resources: the ``after`` cursor and ``limit``.

Only ASCII digits make a number here: ``str.isdigit()`` is also true of ``¹`` or ``٣``, which
``int()`` then refuses or reads (issue 18, finding 9). A sequence number is at most 18 digits,
so it always fits SQLite's 64-bit integers. ``limit=`` (empty) is refused like any other value
that is not a whole number, as the OpenAPI document's ``integer`` says.
"""

from __future__ import annotations

import re

from aiohttp import web

from server.http.errors import HttpProblem

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_CURSOR = re.compile(r"[0-9a-f]{1,64}")
_LIMIT = re.compile(r"[0-9]{1,3}")
_SEQ = re.compile(r"[0-9]{1,18}")


def page_params(request: web.Request) -> tuple[str | None, int]:
    """``(after, limit)`` from the query; ``invalid-query`` (400) for unusable values."""
    after = request.query.get("after") or None
    if after is not None and not _CURSOR.fullmatch(after):
        raise HttpProblem("invalid-query", "`after` must be a cursor returned as `next`.")
    raw = request.query.get("limit")
    if raw is None:
        return after, DEFAULT_LIMIT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise HttpProblem("invalid-query", f"`limit` must be a whole number from 1 to {MAX_LIMIT}.")
    return after, int(raw)


def seq_number(text: str | None, what: str) -> int | None:
    """A sequence number (a ``next`` seq, a row id) from the query or the path: None when
    absent or empty; ``invalid-query`` (400) unless it is 1 to 18 ASCII digits."""
    if not text:
        return None
    if not _SEQ.fullmatch(text):
        raise HttpProblem("invalid-query", f"`{what}` must be a number returned as `next`.")
    return int(text)


def choice(request: web.Request, name: str, allowed: frozenset[str]) -> str | None:
    """An optional enumerated query parameter; ``invalid-query`` when not one of ``allowed``."""
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        options = ", ".join(sorted(allowed))
        raise HttpProblem("invalid-query", f"`{name}` must be one of: {options}.")
    return value


def text_cursor(after: str | None) -> str | None:
    """The text key (a code) a ``next`` cursor of :func:`next_text_cursor` names, or None;
    ``invalid-query`` when it is not one."""
    if after is None:
        return None
    try:
        return bytes.fromhex(after).decode("ascii")
    except ValueError:
        raise HttpProblem("invalid-query", "`after` must be a cursor returned as `next`.") from None


def next_text_cursor(key: str) -> str:
    """The ``next`` cursor after the text key ``key`` (hex of its ASCII: cursors are hex)."""
    return key.encode("ascii").hex()
