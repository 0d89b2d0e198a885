"""``GET /metrics``: the axis's Prometheus metrics (server/runtime/metrics.py) in the text
exposition format, for whoever ``[metrics] public`` allows (see that module's docstring)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from server.http.appkeys import CONFIG, DATABASE
from server.http.errors import HttpProblem
from server.runtime.metrics import Metrics
from server.runtime.tokens import bearer_token, hash_token
from storage.repos.tokens import TokenRepo

PATH = "/metrics"
ADMIN_ROLE = "admin"


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def metrics_of(app: web.Application) -> Metrics | None:
    """The app's metrics, or None when ``[metrics] enabled`` is false."""
    return app.get(METRICS)


async def _may_scrape(request: web.Request) -> bool:
    """Whether the caller may read the metrics: anyone when public, else an admin token."""
    if request.app[CONFIG].metrics.public:
        return True
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return False
    async with request.app[DATABASE].reader() as tx:
        principal = await TokenRepo(tx).find(hash_token(token))
    return principal is not None and ADMIN_ROLE in principal.roles


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: the text exposition (see the module docstring for who may read it)."""
    metrics = request.app[METRICS]
    if not await _may_scrape(request):
        # As for any resource a caller may not see: not found (nothing tells it exists).
        raise HttpProblem("not-found", "No such resource for this token.")
    queue = await metrics.queue(request.app[DATABASE])
    body = metrics.exposition(queue)
    return web.Response(
        body=body,
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )


def setup(app: web.Application) -> None:
    """Record metrics for ``app`` and serve ``/metrics`` when ``[metrics] enabled``."""
    if not app[CONFIG].metrics.enabled:
        return
    app[METRICS] = Metrics()
    app.router.add_get(PATH, metrics_handler)
