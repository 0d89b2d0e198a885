"""``lienthong serve --workers N``: N server processes on one listening socket.

One Python process runs the axis on one core (the event loop and the GIL); a machine with more
cores serves more packages with more processes. The parent binds the socket (so a busy port is
one clear error), does the once-per-start jobs, then spawns N workers that each accept on their
own socket of one SO_REUSEPORT group (the kernel spreads connections over them) and each open
their own database connections and object store. SQLite serialises the writers of all the
processes: ``BEGIN IMMEDIATE`` waits up to ``busy_timeout`` for another process's group commit
(storage/db.py).

What runs where (:class:`WorkerRole`):
- before any worker accepts, in the parent, once: migrations, clearing the spool directory of
  uploads interrupted by the last stop, the orphan-object sweep, sealing plaintext route
  secrets (server/exchange/delivery.py). A worker must never clear the spool: another worker may be
  receiving into it.
- in the worker holding the job's lease (any worker, or another node on the same database):
  each once-only job, such as the periodic audit anchoring and the directory sync (twice would
  be wasted TSA tokens and requests; server/runtime/leases.py, docs/scaling.md).
- in every worker: the delivery worker (deliveries are claimed under a lease in a write
  transaction, so two claimers never push the same delivery at once; a worker that just
  accepted a send wakes its own), and the verifier pool, whose size, public and upload slots
  are the configured totals shared between the workers, as is the cap of connections per
  client address (server/app/connections.py; the kernel spreads an address's connections).
  The soft open-file limit is raised in the parent (the workers inherit it) and again in
  each worker.
- after every worker has stopped, in the parent: the audit head is anchored once (a worker
  that stops first would miss the others' last entries).

Metrics: the workers run prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
set by the parent before they start), so ``/metrics`` sums every worker's counters whichever
worker answers (server/runtime/metrics.py).

SIGTERM or SIGINT to the parent stops the workers gracefully (each stops accepting, finishes
its requests in flight, closes); a worker that dies on its own stops the others, and the parent
exits non-zero so that the service manager restarts the whole axis.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from server.app.eventloop import loop_name, run_with_loop
from server.app.roles import WorkerRole

if TYPE_CHECKING:
    from server.runtime.config import Config

log = logging.getLogger("lienthong")

# Pending connections the kernel queues for all the workers together.
LISTEN_BACKLOG = 1024
# How long the parent waits for the workers after asking them to stop: their own graceful
# stop (requests in flight, up to 60 s) plus closing.
STOP_WAIT_SECONDS = 75.0


def share_of(total: int, workers: int) -> int:
    """Each worker's part of a per-axis total (at least 1)."""
    return max(1, math.ceil(total / workers))


def worker_config(config: Config, workers: int) -> Config:
    """``config`` for one of ``workers`` processes: the verifier pool, the verify upload slots
    and the cap of connections per client address are shares of the configured totals, not N
    times them (the kernel spreads one address's connections over the workers)."""
    if workers == 1:
        return config
    verification = dataclasses.replace(
        config.verification,
        workers=share_of(config.verification.workers, workers),
        public_slots=share_of(config.verification.public_slots, workers),
        upload_slots=share_of(config.verification.upload_slots, workers),
    )
    cap = config.server.max_connections_per_address
    server = dataclasses.replace(
        config.server, max_connections_per_address=cap and share_of(cap, workers)
    )
    return dataclasses.replace(config, server=server, verification=verification)


def _bound(family: int, address: Any, *, shared: bool) -> socket.socket:
    """A socket bound to ``address`` (from getaddrinfo), in the SO_REUSEPORT group if ``shared``."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def listen(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port``, one per worker, in one SO_REUSEPORT group:
    the kernel spreads new connections over them. (One shared socket would not do: a worker's
    event loop accepts every connection waiting when it wakes, so a burst of keep-alive
    connections would all land on one worker.)

    A port some other server listens on is refused first with a plain bind (SO_REUSEPORT alone
    would let a second axis of the same user share the port silently).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    if port != 0:
        _bound(family, address, shared=False).close()  # OSError (EADDRINUSE) if taken
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _bound(family, address, shared=True)
            sockets.append(sock)
            address = sock.getsockname()  # port 0: the others join the port the first got
            sock.listen(LISTEN_BACKLOG)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def _before_workers(config: Config) -> None:
    """The once-per-start jobs, with resources opened and closed here (see the module doc)."""
    from server.app.application import prepare_directories
    from server.exchange.delivery import startup_jobs
    from server.runtime.database import open_config_database
    from server.runtime.objectstore import close_object_store, open_object_store

    prepare_directories(config, clear_spool=True)
    database = await open_config_database(config)  # applies the migrations, once
    try:
        objects = await open_object_store(config, database=database)
        try:
            await startup_jobs(config, database, objects)
        finally:
            await close_object_store(objects)
    finally:
        await database.close()


async def _after_workers(config: Config) -> None:
    """Anchor the audit head once every worker has stopped (when a TSA is configured)."""
    if not config.tsa.url:
        return
    from server.runtime import audit
    from server.runtime.database import open_config_database
    from signing import SigningServices

    services = SigningServices(tsa_url=config.tsa.url, timeout=float(config.tsa.timeout))
    try:
        database = await open_config_database(config)
        try:
            await audit.anchor_head(database, services.timestamper(), config.tsa.url)
        except audit.AnchorError as exc:
            log.error("audit head not anchored at shutdown", extra={"error": str(exc)})
        finally:
            await database.close()
    finally:
        await services.aclose()


def _worker_main(config: Config, role: WorkerRole, sock: socket.socket, parent: int) -> None:
    """A spawned worker of the process ``parent``: serve on the inherited socket until
    SIGTERM/SIGINT (serve_app raises its soft open-file limit, which it inherited raised already
    from the parent). ``parent`` is the parent's own pid, not ``os.getppid()`` read here: a
    worker still importing when its parent was killed would read init's pid and never stop."""
    from server.app.application import serve_app
    from server.runtime.logs import setup_logging

    setup_logging(json_lines=config.server.log_json)

    async def main() -> None:
        watch = asyncio.create_task(_stop_when_orphaned(parent))
        try:
            await serve_app(worker_config(config, role.workers), sock=sock, role=role)
        finally:
            watch.cancel()

    try:
        run_with_loop(config, main())
    except KeyboardInterrupt:  # a Ctrl+C before the loop's handler was installed
        pass


async def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM this worker (a graceful stop) if its parent dies without stopping it (killed
    with SIGKILL): no worker keeps serving a port its parent no longer answers for."""
    while os.getppid() == parent:  # noqa: ASYNC110 (polling the parent, nothing to wait on)
        await asyncio.sleep(1.0)
    log.error("the parent process is gone; stopping", extra={"parent": parent})
    os.kill(os.getpid(), signal.SIGTERM)


def serve(config: Config) -> int:
    """Run ``config.server.workers`` worker processes until SIGTERM/SIGINT; return the exit
    status (0 after a requested stop, 1 when a worker died on its own)."""
    count = config.server.workers
    sockets = listen(config.server.host, config.server.port, count)
    asyncio.run(_before_workers(config))
    if config.metrics.enabled:
        # Every worker writes its metrics to files there and a scrape, whichever worker
        # answers it, sums them all (server/runtime/metrics.py); the spawned workers inherit it.
        from server.runtime.metrics import prepare_multiprocess_dir

        prepare_multiprocess_dir(config.storage.data_dir)
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    processes = [
        context.Process(
            target=_worker_main,
            args=(config, WorkerRole(index, count), sockets[index], os.getpid()),
            name=f"lienthong-worker-{index}",
        )
        for index in range(count)
    ]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            log.info("stopping workers", extra={"signal": signal.Signals(signum).name})
        stopping = True
        for process in processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        for process in processes:
            process.start()
        # The workers hold the sockets now; once they all stop listening the port closes, and
        # new connections are refused instead of waiting in a queue no one reads.
        for sock in sockets:
            sock.close()
        log.info("workers started", extra={"pids": [p.pid for p in processes]})
        deadline: float | None = None
        while any(p.exitcode is None for p in processes):
            running = [p.sentinel for p in processes if p.exitcode is None]
            multiprocessing.connection.wait(running, timeout=1.0)
            for process in processes:
                if process.exitcode not in (None, 0) and not stopping:
                    log.error(
                        "worker died; stopping the others",
                        extra={"worker": process.name, "exitcode": process.exitcode},
                    )
                    status = 1
                    stop(signal.SIGTERM, None)
                elif process.exitcode == 0 and not stopping:  # it was told to stop (Ctrl+C)
                    stop(signal.SIGTERM, None)
            if stopping:
                deadline = deadline or time.monotonic() + STOP_WAIT_SECONDS
                if time.monotonic() > deadline:
                    for process in processes:
                        if process.exitcode is None:
                            log.error("worker did not stop; killed", extra={"pid": process.pid})
                            process.kill()
                    deadline = math.inf
    finally:
        for sock in sockets:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in processes:
            if process.pid is not None:
                process.join()
    asyncio.run(_after_workers(config))
    log.info("stopped", extra={"workers": count})
    sys.stderr.flush()
    return status


def run(config: Config) -> None:
    """Serve the axis until interrupted (``lienthong serve``)."""
    from server.app.connections import raise_open_files_limit
    from server.runtime.logs import setup_logging

    setup_logging(json_lines=config.server.log_json)
    # Before the workers are spawned: they inherit it (and raise their own again).
    open_files = raise_open_files_limit()
    logging.getLogger("lienthong").info(
        "starting",
        extra={
            "host": config.server.host,
            "port": config.server.port,
            "data_dir": str(config.storage.data_dir),
            "open_files": open_files,
            "event_loop": loop_name(config.server.event_loop),
        },
    )
    # [server.tls] and [federation]'s client certificate checked before anything starts: a
    # missing file or a wrong key password is one line here, not a traceback in each worker.
    from server.runtime.tls import client_context, server_context

    server_context(config)
    client_context(config.federation)
    if config.server.workers > 1:
        status = serve(config)
        if status:
            raise SystemExit(status)
        return
    from server.app.application import serve_app

    run_with_loop(config, serve_app(config))
