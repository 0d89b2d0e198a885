"""GET /healthz: liveness and readiness of the database and the object store."""

from __future__ import annotations

import logging
import os
from typing import Any

from aiohttp import web

from server import __version__
from server.http.appkeys import CONFIG, DATABASE, OBJECTS
from server.http.jsonresponse import json_response
from server.http.openapi_parts import json_body, ref

routes = web.RouteTableDef()
log = logging.getLogger("lienthong.health")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 ``{"status": "ok"}`` when the database answers and the stores are usable, else 503."""
    config = request.app[CONFIG]
    checks: dict[str, str] = {}
    try:
        await request.app[DATABASE].ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
        log.warning("health: database check failed", extra={"error": type(exc).__name__})
        checks["database"] = "failing"
    try:
        # A lookup exercises the store's code path; the directories must also be writable
        # (uploads land in the spool and are moved into the objects directory).
        await request.app[OBJECTS].ping()
        writable = all(
            os.access(d, os.W_OK | os.X_OK) for d in (config.objects_dir, config.spool_dir)
        )
        checks["objects"] = "ok" if writable else "failing"
    except Exception as exc:
        log.warning("health: object store check failed", extra={"error": type(exc).__name__})
        checks["objects"] = "failing"
    ok = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ok else "failing", "version": __version__, "checks": checks},
        status=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI description of ``/healthz`` (merged by server/http/openapi.py)."""
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness and readiness (database, object store)",
                "security": [],
                "responses": {
                    "200": json_body("Ready", ref("Health")),
                    "503": json_body("Not ready", ref("Health")),
                },
            }
        },
    }
