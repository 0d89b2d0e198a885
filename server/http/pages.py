"""Web pages: the home page (Vietnamese + English) and one page per problem type.

Problem ``type`` URIs (``/problems/<slug>``) resolve here, so a developer who meets an error
can open its description.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from server import __version__
from server.http.appkeys import CONFIG
from server.http.errors import PROBLEM_TYPES
from server.http.headers import page_nonce

routes = web.RouteTableDef()

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;max-width:46rem;
margin:2rem auto;padding:0 1rem;line-height:1.55;color:#1b1b1b}
h1{color:#a50e0e;margin-bottom:.2rem} .en{color:#555} code{background:#f2f2f2;padding:0 .25rem}
table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}
"""


def _page(request: web.Request, title: str, body: str) -> web.Response:
    # The style carries the request's nonce: the page's CSP runs no other (server/http/headers.py).
    html = (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><style nonce="{page_nonce(request)}">{_STYLE}</style>'
        f"</head><body>{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """What Liên Thông is, its version, and where the API and its description are."""
    base = escape(request.app[CONFIG].base_url)
    body = f"""
<h1>Liên Thông</h1>
<p><strong>Trục liên thông văn bản điện tử</strong> giữa các cơ quan nhà nước: nhận, lưu và chuyển
gói tin edXML theo QCVN 102:2016/BTTTT, kèm trạng thái xử lý (đã đến, đã tiếp nhận, phân công,
hoàn thành…), thu hồi, cập nhật và thay thế văn bản.</p>
<p class="en"><em>The document-exchange axis for Vietnamese government agencies: it receives,
stores and routes edXML packages (QCVN 102:2016) with their processing statuses, revocations,
updates and replacements.</em></p>
<h2>API</h2>
<ul>
<li>Mô tả OpenAPI 3.1 / OpenAPI 3.1 description:
<a href="/api/v1/openapi.json"><code>{base}/api/v1/openapi.json</code></a></li>
<li>Tài liệu / Documentation: <code>docs/api.md</code> trong mã nguồn (in the source tree)</li>
<li>Tình trạng hệ thống / Health: <a href="/healthz"><code>/healthz</code></a></li>
</ul>
<p>Gửi văn bản / Send a package:</p>
<pre><code>curl -H "Authorization: Bearer $LIENTHONG_TOKEN" -H "Content-Type: application/xml" \\
     --data-binary @vanban.edxml {base}/api/v1/documents</code></pre>
<p class="en">Phiên bản / version {escape(__version__)}</p>
"""
    return _page(request, "Liên Thông", body)


@routes.get("/problems/{slug}")
async def problem_page(request: web.Request) -> web.Response:
    """The description of one problem type (the target of a problem's ``type`` URI)."""
    ptype = PROBLEM_TYPES.get(request.match_info["slug"])
    if ptype is None:
        raise web.HTTPNotFound(reason="No such problem type")
    body = (
        f"<h1>{escape(ptype.title)}</h1><p>HTTP {ptype.status} · <code>{escape(ptype.uri)}</code>"
        f'</p><p>{escape(ptype.description)}</p><p><a href="/">Liên Thông</a></p>'
    )
    return _page(request, ptype.title, body)
