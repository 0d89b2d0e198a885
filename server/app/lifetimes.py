"""What runs for an application's lifetime besides serving requests, as aiohttp ``cleanup_ctx``:
the evidence (the seal, sealed receipts, audit anchors), the delivery worker with the
directory sync and the start-up jobs, and the periodic renewal of the archive. Each starts after
the database and object store are open and stops before they close; ``role_of(app)`` says which
of them this process runs (server/app/roles.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from server.app.roles import role_of
from server.calendar.hours import WorkingHours
from server.calendar.store import CalendarSource
from server.dossiers.dvcqg import DvcqgSync
from server.dossiers.slips import SlipSealer
from server.exchange.delivery import DeliveryWorker, startup_jobs
from server.exchange.federation import directory_sync
from server.exchange.receipts import ReceiptError, Receipts, load_seal
from server.http.appkeys import CALENDAR, CONFIG, DATABASE, EXCHANGE, OBJECTS, SLIP_SEALER
from server.http.audit import RECEIPTS
from server.runtime import audit
from server.runtime.config import Config
from server.signatures.renewal import Renewer, renew_loop
from server.stats.rollups import fold
from storage.db import Database
from storage.errors import StorageError

# The audit logger, as when this context lived beside the audit routes.
log = logging.getLogger("lienthong.audit")


async def _cancel(task: asyncio.Task[None] | None) -> None:
    """Stop a periodic task (if one was started) and wait until it has."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def evidence_context(app: web.Application) -> AsyncIterator[None]:
    """Load the seal and the TSA client; anchor the audit head periodically and at shutdown.

    Registered after the resources context, so the database is open for the whole lifetime.
    """
    from signing import SigningServices

    config = app[CONFIG]
    database = app[DATABASE]
    services = (
        SigningServices(tsa_url=config.tsa.url, timeout=float(config.tsa.timeout))
        if config.tsa.url
        else None
    )
    seal = await asyncio.to_thread(load_seal, config)
    if seal is not None and services is None:
        seal.close()
        raise ReceiptError("a seal is configured but no TSA ([tsa] url): receipts need one")
    app[RECEIPTS] = Receipts(config, database, seal, services)
    app[SLIP_SEALER] = SlipSealer(seal, services)
    task: asyncio.Task[None] | None = None
    # One worker of `serve --workers N` anchors periodically; the parent anchors at the end.
    role = role_of(app)
    if services is not None and config.audit.anchor_minutes > 0 and role.periodic_jobs:
        task = asyncio.create_task(
            audit.anchor_loop(
                database, services.timestamper(), config.tsa.url, config.audit.anchor_minutes * 60
            )
        )
    try:
        yield
    finally:
        await _cancel(task)
        if services is not None:
            if role.shutdown_anchor:
                try:
                    await audit.anchor_head(database, services.timestamper(), config.tsa.url)
                except audit.AnchorError as exc:
                    log.error("audit head not anchored at shutdown", extra={"error": str(exc)})
            await services.aclose()
        if seal is not None:
            await asyncio.to_thread(seal.close)


WORKER: web.AppKey[DeliveryWorker] = web.AppKey("delivery_worker")


async def delivery_context(app: web.Application) -> AsyncIterator[None]:
    """Sweep orphan objects and seal plaintext route secrets, then run the delivery worker and
    the directory sync for the app's lifetime (after the database and object store are open;
    stopped before they close)."""
    config: Config = app[CONFIG]
    database = app[DATABASE]
    objects = app[OBJECTS]
    exchange = app[EXCHANGE]
    role = role_of(app)
    if role.startup_jobs:  # else the parent of `serve --workers N` ran them (server/app/workers.py)
        await startup_jobs(config, database, objects, exchange.router.secrets)
    session = aiohttp.ClientSession()
    worker = DeliveryWorker(config, database, objects, exchange.router, session)
    app[WORKER] = worker
    try:
        if config.delivery.enabled:
            worker.start()
            exchange.on_scheduled = worker.wake
        # The directory sync runs in one worker only; the delivery worker in each (leases).
        sync = (
            directory_sync(config, database, exchange.router, session)
            if role.periodic_jobs
            else contextlib.nullcontext()
        )
        async with sync:
            yield
    finally:
        exchange.on_scheduled = None
        await worker.stop()
        await session.close()


RENEWER: web.AppKey[Renewer] = web.AppKey("renewer", Renewer)


async def renewal_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: a :class:`Renewer` for the app, and the periodic renewal when
    ``[archive] renew_interval_hours`` > 0, in worker 0 only (one process renews)."""
    config: Config = app[CONFIG]
    renewer = Renewer(config, app[DATABASE], app[OBJECTS], app[EXCHANGE])
    app[RENEWER] = renewer
    task: asyncio.Task[None] | None = None
    hours = config.archive.renew_interval_hours
    if hours > 0 and role_of(app).periodic_jobs:  # worker 0, or the only process
        task = asyncio.create_task(
            renew_loop(renewer, config.archive.renew_within_days, hours * 3600.0)
        )
    try:
        yield
    finally:
        await _cancel(task)
        await renewer.aclose()


# How often a process looks whether the calendar's override table changed (an edit by the CLI).
CALENDAR_REFRESH_SECONDS = 60.0


async def _refresh_calendar(source: CalendarSource, database: Database) -> None:
    while True:
        await asyncio.sleep(CALENDAR_REFRESH_SECONDS)
        try:
            await source.refresh(database)
        except StorageError as exc:  # the next turn tries again
            log.warning("calendar not refreshed", extra={"error": str(exc)})


async def calendar_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the working-day calendar due dates count (loaded once, then reloaded
    when its override table changes: each process looks every minute)."""
    config: Config = app[CONFIG]
    database = app[DATABASE]
    source = await CalendarSource.load(database, WorkingHours.from_settings(config.dossiers))
    app[CALENDAR] = source
    task = asyncio.create_task(_refresh_calendar(source, database))
    try:
        yield
    finally:
        await _cancel(task)


DVCQG: web.AppKey[DvcqgSync] = web.AppKey("dvcqg_sync", DvcqgSync)


async def dvcqg_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the DVCQG sync (docs/dossiers.md), when ``[dvcqg] url`` is set, in
    worker 0 only (one process pushes); ``app[DVCQG]`` is its :class:`DvcqgSync`."""
    config: Config = app[CONFIG]
    if config.dvcqg.url is None or not role_of(app).periodic_jobs:
        yield
        return
    session = aiohttp.ClientSession()
    sync = DvcqgSync(config.dvcqg, app[DATABASE], session)
    app[DVCQG] = sync
    task = asyncio.create_task(sync.run())
    try:
        yield
    finally:
        await _cancel(task)
        await session.close()


STATS_FOLD_SECONDS = 2.0
"""How often the queued rollup cells are folded (docs/dashboard.md, "Rollups")."""


async def stats_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: fold the dashboard's queued rollup cells every STATS_FOLD_SECONDS, in
    worker 0 only (one process folds; the others' changes are queued by the same triggers)."""
    if not role_of(app).periodic_jobs:
        yield
        return
    task = asyncio.create_task(_fold_loop(app[DATABASE]))
    try:
        yield
    finally:
        await _cancel(task)


async def _fold_loop(database: Database) -> None:
    while True:
        try:
            await fold(database)
        except StorageError:
            log.exception("stats fold failed; retrying")
        await asyncio.sleep(STATS_FOLD_SECONDS)
