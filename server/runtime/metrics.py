"""Prometheus metrics of the axis (served at ``GET /metrics`` by server/http/metrics.py).

What is measured (docs/operations.md lists the names and what to alert on):

- every HTTP request: a counter by method, route template and status, and a latency histogram
  by method and route (the route *template*, e.g. ``/api/v1/documents/{id}``, never the path:
  ids in label values would make one time series per document);
- signing (an officer's session finished with the token's signature, an agency seal) and
  signature verification (each run of the verifier pool): latency histograms;
- connections closed on hostile or broken clients (over the cap of their address, idle, a
  request head or body that stalls), a counter by reason (server/app/connections.py);
- object integrity alarms: S3 keys whose latest version is not the axis's own (a counter by
  kind, storage/objects/s3.py);
- the delivery queue, read from the database at scrape time: deliveries by state, those
  waiting for a push, and the age of the oldest delivery not yet delivered (push and pull).

Several processes (``lienthong serve --workers N``): a scrape reaches one worker (the kernel
picks the socket), so per-worker counters would jump between scrapes. The workers therefore run
in prometheus-client's multiprocess mode: ``server/app/workers.py`` points
``PROMETHEUS_MULTIPROC_DIR`` at an emptied directory before it spawns them, each worker writes its
counters to its own memory-mapped files there, and whichever worker answers a scrape sums every
worker's files. The queue gauges come from the shared database, so they are the same whoever
answers. A single process keeps its metrics in memory, one registry per application (tests run
several apps side by side).

Access (``[metrics]``): ``enabled`` (default true) serves the endpoint; ``public`` (default
false) decides who may read it. Metrics leak volumes (how many documents, how many failing
deliveries), never contents or ids; still, by default only a bearer token with the ``admin``
role may scrape (Prometheus: ``authorization: {credentials_file: ...}``), and anyone else gets
404 like any resource they may not see. ``public = true`` serves it to anyone, for a scraper on a
network that is already closed to the outside.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prometheus_client import values as prometheus_values
from prometheus_client.core import (
    CollectorRegistry,
    Counter,
    GaugeMetricFamily,
    Histogram,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from storage.db import Database
from storage.ids import from_db_time, utcnow
from storage.private import make_dir

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_NAME = "metrics"  # <data_dir>/metrics: the workers' files (serve --workers N)
# The queue figures are read at most this often (several scrapers, or a scrape storm, cost one
# query set); older than a scrape interval would be misleading, so a few seconds only.
SNAPSHOT_SECONDS = 5.0

# Request latency buckets (seconds): from a cached read to a large upload.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Signing and verification do cryptography, PDF parsing, token calls and network fetches
# (OCSP/CRL/TSA): slower.
_CRYPTO_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def multiprocess_mode() -> bool:
    """True when metric values go to files shared between processes: prometheus-client picks
    its value class when it is imported, from ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))


def prepare_multiprocess_dir(data_dir: Path, env: dict[str, str] | None = None) -> Path:
    """Before ``serve --workers N`` spawns its workers: empty the directory the workers will
    write their metric files to and export it as ``PROMETHEUS_MULTIPROC_DIR`` (the spawned
    workers inherit the environment). A directory the operator set is used, else
    ``<data_dir>/metrics``. Files of an earlier run must go: a dead process's counters would
    otherwise be added to the new ones forever."""
    environ = os.environ if env is None else env
    directory = Path(environ.get(MULTIPROC_ENV) or data_dir / METRICS_DIR_NAME)
    if directory.is_dir():
        for leftover in directory.glob("*.db"):
            leftover.unlink(missing_ok=True)
    make_dir(directory)  # 0700: what the workers count is the axis's own
    environ[MULTIPROC_ENV] = str(directory)
    return directory


class Metrics:
    """The metrics one application records (see the module docstring)."""

    def __init__(self) -> None:
        multi = multiprocess_mode()
        # In multiprocess mode the values live in files and are collected from there at scrape
        # time; the metric objects register nowhere (one process may build several apps).
        self.registry = CollectorRegistry(auto_describe=True)
        where = None if multi else self.registry
        self.multiprocess = multi
        self.requests = Counter(
            "lienthong_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=where,
        )
        self.request_seconds = Histogram(
            "lienthong_http_request_duration_seconds",
            "Time from the request to the end of its answer, by method and route template.",
            ("method", "route"),
            buckets=_REQUEST_BUCKETS,
            registry=where,
        )
        self.signing_seconds = Histogram(
            "lienthong_signing_duration_seconds",
            "Time of the signing work on the axis, by operation (session_prepare: the PDF "
            "with its signature field and the digest an officer's token signs; "
            "session_finish: that signature put into the PDF; seal: an agency seal on the HSM).",
            ("operation",),
            buckets=_CRYPTO_BUCKETS,
            registry=where,
        )
        self.verification_seconds = Histogram(
            "lienthong_verification_duration_seconds",
            "Time of one run of the signature verifier (one PDF, in a process of the "
            "isolated pool, once one is free).",
            buckets=_CRYPTO_BUCKETS,
            registry=where,
        )
        self.object_alarms = Counter(
            "lienthong_object_integrity_alarms",
            "S3 keys whose latest version is not the one the axis wrote, by kind (overwritten, "
            "delete-marker, missing, forged): someone with the bucket's credentials put or "
            "deleted there. The axis keeps reading its own version; alert on any increase.",
            ("kind",),
            registry=where,
        )
        self.connections_closed = Counter(
            "lienthong_connections_closed",
            "Connections the axis closed on a hostile or broken client, by reason: "
            "per-address-limit (over server.max_connections_per_address, answered 503), "
            "idle-timeout (no request within server.keepalive_timeout), header-timeout (a "
            "request head not finished within server.header_timeout), body-idle-timeout (no "
            "byte of an awaited body within server.body_idle_timeout, answered 408).",
            ("reason",),
            registry=where,
        )
        self._snapshot: QueueSnapshot | None = None
        self.snapshot_seconds = SNAPSHOT_SECONDS

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    @contextlib.contextmanager
    def time_signing(self, operation: str) -> Iterator[None]:
        """Observe the time of the block as one signing ``operation`` (failures too: a slow
        failing token is what an operator looks for)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.signing_seconds.labels(operation).observe(time.perf_counter() - started)

    @contextlib.contextmanager
    def time_verification(self) -> Iterator[None]:
        """Observe the time of the block as one verifier run."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.verification_seconds.observe(time.perf_counter() - started)

    async def queue(self, database: Database) -> QueueSnapshot:
        """The delivery-queue figures, read again when older than ``snapshot_seconds``."""
        now = time.monotonic()
        if self._snapshot is None or now - self._snapshot.taken >= self.snapshot_seconds:
            self._snapshot = await QueueSnapshot.read(database, now)
        return self._snapshot

    def exposition(self, queue: QueueSnapshot) -> bytes:
        """The text exposition of everything: this process's (or every worker's) metrics and
        the queue figures."""
        registry = CollectorRegistry(auto_describe=False)
        sources: list[_Source] = []
        if self.multiprocess:
            sources.append(MultiProcessCollector(None))  # type: ignore[no-untyped-call]
        else:
            sources.append(self.registry)
        registry.register(_Scrape(sources, queue))
        return generate_latest(registry)


class _Source(Protocol):
    """Anything with ``collect()`` (a registry, the multiprocess collector)."""

    def collect(self) -> Iterable[Metric]:
        """The metric families to expose."""
        ...


class _Scrape:
    """One scrape: the recorded metrics plus the queue gauges read for it."""

    def __init__(self, sources: list[_Source], queue: QueueSnapshot) -> None:
        self.sources = sources
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()
        yield from self.queue.families()


DELIVERY_STATES = ("new", "acked", "dead")


@dataclass(frozen=True)
class QueueSnapshot:
    """Delivery figures read from the database (see :meth:`read` for what each costs)."""

    taken: float
    by_state: dict[str, int]
    push_pending: int
    oldest_push: float | None  # seconds since the oldest undelivered push delivery was made
    oldest_pull: float | None  # the same for deliveries waiting in an inbox (pulled)

    @classmethod
    async def read(cls, database: Database, taken: float) -> QueueSnapshot:
        """Read the figures in one read transaction.

        Costs: the count by state walks the ``deliveries_state`` index (state, id), which only
        grows with the acknowledged deliveries (a few ms per 100,000; a statement longer than
        about 1 ms moves off the event loop by itself, storage/db.py); the push figures walk the
        partial index of undelivered pushes (the backlog, small when healthy); the oldest pulled
        delivery is the first entry of the index for state 'new' whose push is not scheduled.
        """
        async with database.reader() as tx:
            rows = await tx.fetchall("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            push = await tx.fetchone(
                "SELECT COUNT(*), MIN(created_at) FROM deliveries"
                " WHERE state = 'new' AND next_attempt_at IS NOT NULL"
            )
            pull = await tx.fetchone(
                "SELECT created_at FROM deliveries WHERE state = 'new'"
                " AND next_attempt_at IS NULL ORDER BY id LIMIT 1"
            )
        by_state = dict.fromkeys(DELIVERY_STATES, 0)
        by_state.update({str(r[0]): int(r[1]) for r in rows})
        return cls(
            taken=taken,
            by_state=by_state,
            push_pending=int(push[0]) if push is not None else 0,
            oldest_push=_age(push[1] if push is not None else None),
            oldest_pull=_age(pull[0] if pull is not None else None),
        )

    def families(self) -> Iterator[Metric]:
        """The gauges of this snapshot."""
        states = GaugeMetricFamily(
            "lienthong_deliveries",
            "Deliveries (one per package and recipient) by state: new (not yet delivered), "
            "acked (acknowledged by the recipient or pushed), dead (push given up).",
            labels=("state",),
        )
        for state, count in sorted(self.by_state.items()):
            states.add_metric((state,), count)
        yield states
        yield GaugeMetricFamily(
            "lienthong_deliveries_push_pending",
            "Deliveries waiting to be pushed to a webhook or another axis (state new).",
            value=self.push_pending,
        )
        oldest = GaugeMetricFamily(
            "lienthong_delivery_oldest_pending_age_seconds",
            "Age of the oldest delivery not yet delivered (0 when there is none): mode push "
            "(the worker pushes it), pull (it waits in its recipient's inbox).",
            labels=("mode",),
        )
        oldest.add_metric(("push",), self.oldest_push or 0.0)
        oldest.add_metric(("pull",), self.oldest_pull or 0.0)
        yield oldest


def _age(stamp: str | None) -> float | None:
    if stamp is None:
        return None
    return max(0.0, (utcnow() - from_db_time(stamp)).total_seconds())
