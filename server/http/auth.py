"""Bearer-token authentication of agency systems (the tokens themselves: server/runtime/tokens.py),
and client certificates beside them (server/http/client_certs.py).

A token is ``lt_`` + 32 random bytes (URL-safe base64); only its SHA-256 hex is stored, so a
leaked database does not leak usable tokens. Tokens are never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from server.http import client_certs
from server.http.appkeys import DATABASE, PRINCIPAL
from server.http.errors import HttpProblem
from server.runtime.tokens import bearer_token, hash_token
from storage.repos.tokens import Principal, TokenRepo

# --- the HTTP side: who is calling -------------------------------------------------------

# Paths anyone may read: the home page, health, problem descriptions, the API description.
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/healthz",
        "/api/v1/openapi.json",
        "/favicon.ico",
        # signature verification for anyone: the page, and its bounded upload that stores
        # nothing (server/http/verify.py, docs/verification.md)
        "/xac-minh",
        "/api/v1/public/verify",
        # the public lookup of a dossier by its code, rate-limited per client address
        # (server/http/public_dossiers.py, docs/dossiers.md "Public lookup")
        "/tra-cuu",
        # the citizens' feedback form (server/http/feedback_pages.py, docs/open311.md)
        "/phan-anh",
        # the dashboard page holds no data: it sends the token typed into it to the stats API
        # (server/http/dashboard_page.py, docs/dashboard-page.md)
        "/bang-dieu-khien",
        # Prometheus: checks its own access ([metrics] public, else an admin token) and
        # answers 404, not 401, to others (server/runtime/metrics.py)
        "/metrics",
    }
)
# /vdxp/ authenticates itself (system id + HMAC signature, server/http/vdxp.py); so do the VGCA
# plugin's signing files (a short-lived JWT of the session, server/http/signing.py).
PUBLIC_PREFIXES = (
    "/problems/",
    "/vdxp/",
    "/api/v1/signing-files/",
    "/api/v1/public/dossiers/",
    # Open311 checks its apps' api_key itself; the feedback pages are for citizens (the private
    # page checks its token) (server/http/open311.py, feedback_pages.py, docs/open311.md)
    "/open311/",
    "/phan-anh/",
    # citizen feedback: published items, the sender's private link (token in the query) and
    # rating, the categories (server/http/public_feedback.py, docs/feedback.md)
    "/api/v1/public/feedback",
    # the pages' static files: vendored ECharts, the dashboard's script (dashboard_page.py)
    "/static/",
)
# Paths anyone may call *without* a token, that take one when given: citizens send feedback
# anonymously (rate-limited per client address), receiving officers with their token
# (server/http/feedback.py).
OPTIONAL_TOKEN = frozenset({("POST", "/api/v1/feedback")})


def is_public(path: str) -> bool:
    """True for paths served without a token."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Resolve the bearer token to its agency (request["principal"]) or refuse with 401."""
    if is_public(request.path):
        return await handler(request)
    optional = (request.method, request.path) in OPTIONAL_TOKEN
    if optional and "Authorization" not in request.headers:
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and client_certs.presented_certificate(request) is None:
        raise HttpProblem("unauthorized", "This API needs `Authorization: Bearer <token>`.")
    async with request.app[DATABASE].reader() as tx:
        principal = None if token is None else await TokenRepo(tx).find(hash_token(token))
        if principal is None and token is not None:
            raise HttpProblem("unauthorized", "The bearer token is unknown or was revoked.")
        # A client certificate (mTLS) speaks for its bound agency (server/http/client_certs.py).
        principal = await client_certs.authenticate(tx, request, principal)
    if principal is None:
        raise HttpProblem("unauthorized", "This API needs `Authorization: Bearer <token>`.")
    refusal = role_refusal(principal, request.method, request.path)
    if refusal is not None:
        raise HttpProblem("role-not-allowed", refusal)
    request[PRINCIPAL] = principal
    return await handler(request)


# Roles are separate: only an "agency" token acts as its agency (reads the inbox, sends, sets
# the webhook...). Archivists (role "archivist", granted by `lienthong agency grant ORGANID
# archivist`) read their agency's documents and archive; they never send or acknowledge. An
# admin token (`lienthong token create ORGANID --role admin`, the Prometheus scrape token of
# docs/operations.md) reads the audit log (and /metrics, which checks its own access) and the
# admin pages to come, nothing of the agency's (issue 18, finding 4).
_ARCHIVIST_PREFIXES = ("/api/v1/archive/", "/api/v1/documents/")
_ADMIN_PATHS = frozenset({"/api/v1/audit"})
_ADMIN_PREFIXES = ("/api/v1/admin/",)
_STATS_PREFIX = "/api/v1/stats/"


def role_refusal(principal: Principal, method: str, path: str) -> str | None:
    """Why the token's roles do not reach ``method path`` (the problem's detail), or None."""
    roles = principal.roles
    if "agency" in roles:
        return None
    if "archivist" in roles and method in {"GET", "HEAD"} and path.startswith(_ARCHIVIST_PREFIXES):
        return None
    if "admin" in roles and (path in _ADMIN_PATHS or path.startswith(_ADMIN_PREFIXES)):
        return None
    # the dashboard's figures: an admin reads every agency's (issue 19, docs/dashboard.md)
    if "admin" in roles and method in {"GET", "HEAD"} and path.startswith(_STATS_PREFIX):
        return None
    reasons = []
    if "archivist" in roles:
        reasons.append(
            "An archivist token may only read: GET /api/v1/archive/... and /api/v1/documents/..."
        )
    if "admin" in roles:
        reasons.append("An admin token may only read /metrics, /api/v1/audit and /api/v1/stats/...")
    return " ".join(reasons) or "This token has no role that acts as its agency."


def principal_of(request: web.Request) -> Principal:
    """The authenticated agency of a request that passed :func:`auth_middleware`."""
    return request[PRINCIPAL]
