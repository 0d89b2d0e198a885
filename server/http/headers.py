"""Security headers on every answer (issue 18, finding 8).

Added when a response is prepared (``on_response_prepare``), so streamed answers, problem+json
errors and aiohttp's own answers get them too:

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` everywhere;
- a ``Content-Security-Policy`` that fits the answer: a file served for download (it carries a
  ``Content-Disposition``: attachments, their versions, archive packages, slips) gets
  ``sandbox``, so a sender's ``text/html`` or ``image/svg+xml`` opened in a browser runs no
  script and has no origin; a page (``text/html``) may run only its own scripts and styles,
  those that carry the request's nonce (:func:`page_nonce`), talk to this origin only and be
  framed by nobody; anything else (JSON, PDF reports) loads nothing and is framed by nobody.
"""

from __future__ import annotations

import re
import secrets

from aiohttp import web

CSP_NONCE: web.RequestKey[str] = web.RequestKey("csp_nonce")

_DOWNLOAD_POLICY = "sandbox"
_DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_PAGE_POLICY = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_OPENING_TAG = re.compile(r"<(script|style)>")


def page_nonce(request: web.Request) -> str:
    """The nonce the page answering ``request`` puts on its ``<script>`` and ``<style>``."""
    nonce = request.get(CSP_NONCE)
    if nonce is None:
        nonce = request[CSP_NONCE] = secrets.token_urlsafe(16)
    return nonce


def with_nonces(request: web.Request, template: str) -> str:
    """``template`` (the axis's own page, before any data is put in) with the request's nonce
    on each bare ``<script>`` and ``<style>`` tag."""
    nonce = page_nonce(request)
    return _OPENING_TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}">', template)


def html_page(request: web.Request, template: str) -> web.Response:
    """A static page of the axis (``server/http/pages/*.html``) with its nonces."""
    return web.Response(
        text=with_nonces(request, template), content_type="text/html", charset="utf-8"
    )


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers of the module docstring (a handler's own win)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if "Content-Disposition" in headers:
        policy = _DOWNLOAD_POLICY
    elif response.content_type == "text/html":
        policy = _PAGE_POLICY.format(nonce=page_nonce(request))
    else:
        policy = _DATA_POLICY
    headers.setdefault("Content-Security-Policy", policy)
