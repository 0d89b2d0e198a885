"""What runs for an application's lifetime besides serving requests, as aiohttp ``cleanup_ctx``:
the once-only jobs' leases, the evidence (the seal, sealed receipts, audit anchors), the
delivery worker with the directory sync and the start-up jobs, and the periodic renewal of the
archive. Each starts after the database and object store are open and stops before they close.

Which process runs what (docs/scaling.md, "Once-only jobs"):
- once-only jobs, run by whichever process holds the job's lease (server/runtime/leases.py),
  on the fenced database the lease gives them: ``audit-anchor`` (the periodic anchoring of the
  audit head), ``archive-renewal``, ``directory-sync``, ``dvcqg-sync``, ``stats-fold``, and the
  outboxes' retries started by server/http/feedback.py (``feedback-outbox``) and
  server/http/dossier_transfers.py (``dossier-reports``);
- per process: the delivery worker (each delivery is claimed under its own lease row), the
  calendar's refresh, the anchoring at shutdown (each node's: an anchor of a head anchored
  already is skipped), and the start-up jobs of ``role_of(app)`` (server/app/roles.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import AsyncIterator
from typing import TypeVar

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
from server.http.appkeys import CALENDAR, CONFIG, DATABASE, EXCHANGE, JOBS, OBJECTS, SLIP_SEALER
from server.http.audit import RECEIPTS
from server.runtime import audit
from server.runtime.config import Config
from server.runtime.leases import Jobs
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


async def jobs_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: ``app[JOBS]``, where the other contexts start their once-only jobs; at
    the end, any job still running is stopped and its lease released. Registered right after
    the resources context (the database), before every context that starts a job."""
    jobs = Jobs(app[DATABASE], lease_seconds=float(app[CONFIG].jobs.lease_seconds))
    app[JOBS] = jobs
    try:
        yield
    finally:
        await jobs.close()


_Worker = TypeVar("_Worker")


def on_database(worker: _Worker, database: Database) -> _Worker:
    """A shallow copy of ``worker`` (an object keeping its database in ``.database``: a
    :class:`Renewer`, a :class:`DvcqgSync`) that works on ``database`` (a leased job's fenced
    one) and shares everything else: its sessions, and its lock, so a pass asked for by hand
    never overlaps the job's."""
    clone = copy.copy(worker)
    clone.database = database  # type: ignore[attr-defined]
    return clone


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
    # The process holding the lease anchors periodically; a single process anchors at its end,
    # `serve --workers N` in the parent once all its workers have stopped.
    role = role_of(app)
    anchoring: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
    if services is not None and config.audit.anchor_minutes > 0:
        timestamper, every = services.timestamper(), config.audit.anchor_minutes * 60

        async def anchor(fenced: Database) -> None:
            await audit.anchor_loop(fenced, timestamper, config.tsa.url, every)

        anchoring = app[JOBS].running("audit-anchor", anchor)
    try:
        async with anchoring:
            yield
    finally:
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
        # The delivery worker runs in each process (each delivery has its lease row); the
        # directory sync in the one holding its lease.
        syncing: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
        if exchange.router.has_parent:

            async def sync(fenced: Database) -> None:
                async with directory_sync(config, fenced, exchange.router, session) as task:
                    if task is not None:
                        await task

            syncing = app[JOBS].running("directory-sync", sync)
        async with syncing:
            yield
    finally:
        exchange.on_scheduled = None
        await worker.stop()
        await session.close()


RENEWER: web.AppKey[Renewer] = web.AppKey("renewer", Renewer)


async def renewal_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: a :class:`Renewer` for the app, and the periodic renewal when
    ``[archive] renew_interval_hours`` > 0, in the process holding its lease."""
    config: Config = app[CONFIG]
    renewer = Renewer(config, app[DATABASE], app[OBJECTS], app[EXCHANGE])
    app[RENEWER] = renewer
    renewing: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
    hours = config.archive.renew_interval_hours
    if hours > 0:

        async def renew(fenced: Database) -> None:
            within = config.archive.renew_within_days
            await renew_loop(on_database(renewer, fenced), within, hours * 3600.0)

        renewing = app[JOBS].running("archive-renewal", renew)
    try:
        async with renewing:
            yield
    finally:
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
    the process holding its lease; ``app[DVCQG]`` is its :class:`DvcqgSync` (a pass asked for by
    hand runs in any process, never at the same time as this process's job)."""
    config: Config = app[CONFIG]
    if config.dvcqg.url is None:
        yield
        return
    session = aiohttp.ClientSession()
    sync = DvcqgSync(config.dvcqg, app[DATABASE], session)
    app[DVCQG] = sync

    async def push(fenced: Database) -> None:
        await on_database(sync, fenced).run()

    try:
        async with app[JOBS].running("dvcqg-sync", push):
            yield
    finally:
        await session.close()


STATS_FOLD_SECONDS = 2.0
"""How often the queued rollup cells are folded (docs/dashboard.md, "Rollups")."""


async def stats_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: fold the dashboard's queued rollup cells every STATS_FOLD_SECONDS, in
    the process holding its lease (the others' changes are queued by the same triggers)."""
    async with app[JOBS].running("stats-fold", _fold_loop):
        yield


async def _fold_loop(database: Database) -> None:
    while True:
        try:
            await fold(database)
        except StorageError:
            log.exception("stats fold failed; retrying")
        await asyncio.sleep(STATS_FOLD_SECONDS)
