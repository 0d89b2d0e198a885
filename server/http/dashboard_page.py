"""The dashboard page (bảng điều khiển, issue 19) and the static files it loads.

* ``GET /bang-dieu-khien``: the Vietnamese page (``pages/dashboard.html``), public like
  ``/tra-cuu``: it holds no data. The officer types the agency's token into it; the page keeps it
  in ``sessionStorage`` and sends it as a bearer header to ``/api/v1/stats/...`` (never in a
  URL), which decides what that agency may see (docs/dashboard-page.md).
* ``GET /static/vendor/echarts/echarts.min.js``: Apache ECharts as vendored
  (``static/vendor/echarts/README.md``), and ``GET /static/dashboard.js``: the page's own
  script. Both served by the axis itself (closed networks: no CDN) with a year's
  ``Cache-Control``; the page asks for them with ``?v=`` and their version or digest, so an
  upgrade is fetched at once.

The page's scripts carry the request's CSP nonce like every page of the axis
(server/http/headers.py); the external ones get it here, as ``with_nonces`` marks only bare
``<script>`` and ``<style>`` tags.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from pathlib import Path

from aiohttp import web

from server.http.headers import page_nonce, with_nonces

ECHARTS_VERSION = "6.1.0"
ECHARTS_SHA256 = "b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0"

PAGE = "/bang-dieu-khien"
_HERE = Path(__file__).resolve().parent
PAGE_PATH = _HERE / "pages" / "dashboard.html"
ECHARTS_PATH = _HERE / "static" / "vendor" / "echarts" / "echarts.min.js"
SCRIPT_PATH = _HERE / "pages" / "dashboard.js"
ECHARTS_URL = "/static/vendor/echarts/echarts.min.js"
SCRIPT_URL = "/static/dashboard.js"
# Only these files are served under /static/: a URL names a file, never a path to look up.
STATIC_FILES = {ECHARTS_URL: ECHARTS_PATH, SCRIPT_URL: SCRIPT_PATH}
_LONG_CACHE = "public, max-age=31536000, immutable"

routes = web.RouteTableDef()


@functools.cache
def _script_digest() -> str:
    """The first 16 hex digits of the page script's SHA-256 (its ``?v=``), read once."""
    return hashlib.sha256(SCRIPT_PATH.read_bytes()).hexdigest()[:16]


def _page_html(template: str, nonce: str) -> str:
    """The page with the static files' versioned URLs, its scripts and styles with ``nonce``."""
    html = template.replace("@ECHARTS_URL@", f"{ECHARTS_URL}?v={ECHARTS_VERSION}")
    html = html.replace("@SCRIPT_URL@", f"{SCRIPT_URL}?v={_script_digest()}")
    return html.replace("<script src=", f'<script nonce="{nonce}" src=')


@routes.get(PAGE)
async def dashboard_page(request: web.Request) -> web.Response:
    """The Vietnamese dashboard page (HTML; its data comes from the stats API with a token)."""
    template = await asyncio.to_thread(PAGE_PATH.read_text, encoding="utf-8")
    await asyncio.to_thread(_script_digest)
    html = _page_html(with_nonces(request, template), page_nonce(request))
    return web.Response(
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def _static_file(request: web.Request) -> web.FileResponse:
    """One of ``STATIC_FILES``, as JavaScript, cached for a year (the URL carries its version)."""
    return web.FileResponse(
        STATIC_FILES[request.path],
        headers={"Cache-Control": _LONG_CACHE, "Content-Type": "text/javascript; charset=utf-8"},
    )


for _url in STATIC_FILES:
    routes.get(_url)(_static_file)
