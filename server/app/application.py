"""Build the aiohttp Application of the axis from a :class:`Config`, and run it.

Resources (database, object store) are opened in a ``cleanup_ctx`` and reached through typed
``web.AppKey`` keys (see :mod:`server.http.appkeys`): no module globals, so tests can run several
apps side by side on different data directories.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from server.app.connections import ConnectionLimits, GuardedAppRunner, raise_open_files_limit
from server.app.lifetimes import (
    calendar_context,
    delivery_context,
    dvcqg_context,
    evidence_context,
    jobs_context,
    renewal_context,
    stats_context,
)
from server.app.roles import ROLE, WorkerRole, role_of
from server.exchange import Exchange
from server.http import agencies, documents, health, inbox, me, openapi, pages, sent, statuses, vdxp
from server.http import archive as archive_http
from server.http import audit as audit_http
from server.http import dashboard_page as dashboard_page_http
from server.http import dossier_transfers as transfers_http
from server.http import dossiers as dossiers_http
from server.http import feedback as feedback_http
from server.http import feedback_pages as feedback_pages_http
from server.http import metrics as metrics_http
from server.http import open311 as open311_http
from server.http import procedures as procedures_http
from server.http import public_dossiers as public_dossiers_http
from server.http import public_feedback as public_feedback_http
from server.http import routes_admin as webhook_http
from server.http import seals as seals_http
from server.http import signing as signing_http
from server.http import stats as stats_http
from server.http import stats_report as stats_report_http
from server.http import verify as verify_http
from server.http.appkeys import CONFIG, DATABASE, EXCHANGE, OBJECTS, PRINCIPAL, REQUEST_ID
from server.http.auth import auth_middleware
from server.http.errors import problem_middleware
from server.http.headers import add_security_headers
from server.http.open311_feedback import FeedbackBackend
from server.runtime.config import Config
from server.runtime.database import open_config_database
from server.runtime.datadir import prepare_data_dir
from server.runtime.logs import request_fields_var, request_id_var
from server.runtime.objectstore import close_object_store, open_object_store
from server.runtime.tls import server_context
from storage.ids import utcnow

log = logging.getLogger("lienthong.access")

ROUTE_MODULES = (
    pages,
    dashboard_page_http,  # /bang-dieu-khien and its static files (issue 19)
    health,
    agencies,
    procedures_http,
    dossiers_http,
    me,
    documents,
    inbox,
    statuses,
    sent,
    openapi,
    audit_http,
    archive_http,
    webhook_http,
    stats_report_http,  # the monthly workbook: before stats_http's /api/v1/stats/{figure}
    stats_http,  # the dashboard's figures (issue 19)
    seals_http,  # agency seals, attachment versions: on signing_http's desk (set up below)
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


IN_FLIGHT: web.AppKey[list[int]] = web.AppKey("in_flight", list)


@web.middleware
async def request_context_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give the request an id (X-Request-Id, taken from the client when sane), count it in
    flight (a graceful stop waits for it) and log it once.

    The log line carries method, path (never the query: it holds no secrets today, but the
    Authorization header is never logged), status, duration, the calling agency, the worker
    process and what the handler added with :func:`server.runtime.logs.annotate` (e.g. the id of an
    accepted document): one line per request.
    """
    counter = request.app[IN_FLIGHT]
    counter[0] += 1
    # Which of the `serve --workers N` processes answered: sent back and logged.
    worker = request.app[ROLE].label
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()
    request[REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    fields: dict[str, Any] = {}
    fields_token = request_fields_var.set(fields)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        response.headers["X-Lienthong-Worker"] = worker
        return response
    finally:
        counter[0] -= 1
        elapsed = time.perf_counter() - started
        principal = request.get(PRINCIPAL)
        recorder = metrics_http.metrics_of(request.app)
        if recorder is not None:
            # The route template, never the path: ids in labels would be one series each.
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            recorder.observe_request(request.method, route, status, elapsed)
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "ms": round(elapsed * 1000, 1),
                "agency": principal.organ_id if principal is not None else None,
                "worker": worker,
                **fields,
            },
        )
        request_fields_var.reset(fields_token)
        request_id_var.reset(token)


def prepare_directories(config: Config, *, clear_spool: bool) -> None:
    """Create the data, object and spool directories (0700); with ``clear_spool`` (the process
    that runs the start-up jobs), make what is already there private (server/runtime/datadir.py)
    and remove the spool files (uploads in flight when the server last stopped: after a
    restart none is)."""
    prepare_data_dir(config, tighten_existing=clear_spool)
    if clear_spool:
        for leftover in config.spool_dir.iterdir():
            if leftover.is_file():
                leftover.unlink()


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Open the database and object store for the app's lifetime; close them on shutdown."""
    config = app[CONFIG]
    # With several workers the parent clears the spool before they start (server/app/workers.py).
    role = role_of(app)
    prepare_directories(config, clear_spool=role.startup_jobs)
    # Several workers write the same database: hand SQLite's write lock over fairly.
    database = await open_config_database(config, writer_lock=not role.single)
    try:
        # storage.backend: the filesystem, or S3 (bucket made at start-up) with the filesystem
        # as read fallback for objects not yet migrated (server/runtime/objectstore.py).
        objects = await open_object_store(
            config, database=database, metrics=metrics_http.metrics_of(app)
        )
        try:
            app[DATABASE] = database
            app[OBJECTS] = objects
            app[EXCHANGE] = Exchange(config, database, objects)
            yield
        finally:
            await close_object_store(objects)
    finally:
        await database.close()


def build_app(config: Config, *, role: WorkerRole | None = None) -> web.Application:
    """The complete axis application for ``config`` (resources open when the app starts);
    ``role``: which worker of ``lienthong serve --workers N`` it is (default: the only one)."""
    app = web.Application(
        middlewares=[
            request_context_middleware,
            problem_middleware,
            auth_middleware,
        ],
        # Package bodies are streamed by their handlers and bounded by server.max_body_bytes;
        # this bounds only bodies read whole (small JSON), which the API does not take today.
        client_max_size=1024 * 1024,
    )
    app[CONFIG] = config
    app[IN_FLIGHT] = [0]
    app.on_response_prepare.append(add_security_headers)  # CSP, nosniff... (http/headers.py)
    app[ROLE] = role or WorkerRole()
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(jobs_context)  # once-only jobs under their leases (issue 20)
    app.cleanup_ctx.append(evidence_context)  # seal, receipts, audit anchors (issue 9)
    app.cleanup_ctx.append(delivery_context)  # push worker, directory sync, orphan sweep (issue 9)
    app.cleanup_ctx.append(renewal_context)  # B-LTA renewal of the archive (issue 8)
    app.cleanup_ctx.append(calendar_context)  # the working-day calendar of dossiers (issue 16)
    app.cleanup_ctx.append(dvcqg_context)  # the DVCQG sync of dossiers (issue 16)
    app.cleanup_ctx.append(stats_context)  # the dashboard's rollups folded (issue 19)
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    vdxp.setup(app)  # /vdxp/{operation}: the national axis protocol (issue 5)
    signing_http.setup(app)  # signing sessions, VGCA plugin files, the desk of seals (issue 6)
    verify_http.setup(app)  # /api/v1/verify, /xac-minh
    public_dossiers_http.setup(app, workers=app[ROLE].workers)  # /tra-cuu and its API (issue 16)
    transfers_http.setup(app)  # dossiers across agencies: routes, exchange hooks (issue 16)
    # citizen feedback: intake, officers' routes, forwarding hooks; the public side (issue 17)
    feedback_http.setup(app, workers=app[ROLE].workers)
    public_feedback_http.setup(app, workers=app[ROLE].workers)
    # Open311 GeoReport v2 over the feedback domain, and the citizens' pages (issue 17)
    backend = FeedbackBackend(lambda: feedback_http.services_of(app), utcnow())
    open311_http.setup(app, backend, workers=app[ROLE].workers)
    feedback_pages_http.setup(app)
    metrics_http.setup(app)  # /metrics (Prometheus); the contexts above find it at start-up
    return app


async def serve_app(
    config: Config,
    shutdown_timeout: float = 60.0,
    *,
    sock: socket.socket | None = None,
    role: WorkerRole | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully: the listening socket closes, requests
    in flight finish (up to ``shutdown_timeout`` seconds), then resources close.

    Not ``web.run_app``: it cancels its main task on a signal, and its cleanup then cancels
    the handlers still running instead of letting them finish.

    Connections are served under the ``[server]`` timeouts and cap per client address
    (server/app/connections.py), with the soft open-file limit raised to the hard one.
    """
    # [server.tls]: HTTPS (and client certificates) on the standard library's ssl.
    ssl_context = server_context(config)
    raise_open_files_limit()
    app = build_app(config, role=role)
    runner = GuardedAppRunner(
        app,
        limits=ConnectionLimits.of(config.server),
        metrics=metrics_http.metrics_of(app),
        access_log=None,  # request_context_middleware logs one structured line per request
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    try:
        # A worker of `serve --workers N` accepts on the socket its parent bound.
        site: web.BaseSite = (
            web.TCPSite(runner, config.server.host, config.server.port, ssl_context=ssl_context)
            if sock is None
            else web.SockSite(runner, sock, ssl_context=ssl_context)
        )
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logging.getLogger("lienthong").info("stopping: finishing requests in flight")
        # Stop listening, then wait for requests in flight: aiohttp's own shutdown stops
        # reading request bodies still arriving, so an upload in progress would never end.
        await site.stop()
        in_flight = runner.app[IN_FLIGHT]
        deadline = loop.time() + shutdown_timeout
        while in_flight[0] > 0 and loop.time() < deadline:  # noqa: ASYNC110 (a shared count)
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
