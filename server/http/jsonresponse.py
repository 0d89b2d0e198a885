"""JSON answers of the API, with Vietnamese kept readable (UTF-8, not ``\\uXXXX`` escapes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from aiohttp import web

# ensure_ascii=False: "Văn phòng Chính phủ" stays as written; the body is UTF-8 (the charset
# aiohttp declares for application/json), so nothing is lost and the answer stays readable.
dumps = partial(json.dumps, ensure_ascii=False)


def json_response(
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An ``application/json`` answer of ``data``, UTF-8 encoded, non-ASCII left as is."""
    return web.json_response(data, status=status, headers=headers, dumps=dumps)
