"""The jobs that must run on one node at a time, each run only while this process holds its
lease in the database (storage/repos/leases.py, docs/scaling.md "Once-only jobs").

Several ``lienthong serve`` processes may share one database: the workers of ``serve --workers
N``, or nodes on several machines. Every process starts every once-only job it is configured
for through :class:`Jobs`; each job's :class:`LeasedJob` tries to take the job's lease every
``lease_seconds / 3`` and runs the job only while it holds it:

- it renews the lease every ``lease_seconds / 3``; when a renewal finds the lease taken over
  (a newer token), or when no renewal succeeded for ``2/3 lease_seconds`` (the database out of
  reach), it cancels the job at once, before the lease can expire for the others;
- another process takes the lease over once it has expired: at most ``lease_seconds`` after
  the holder's last renewal, plus one polling interval (``lease_seconds / 3``), plus the clock
  skew between the nodes; a holder that stops cleanly releases the lease, and the others take
  it over at their next poll;
- fencing: the job is given a :class:`FencedDatabase`, whose every write transaction starts
  with the lease's check (``LeaseRepo.fence``), in the same transaction as the job's writes.
  A node that lost its lease without noticing (paused, cut off, its clock wrong) therefore
  cannot commit anything once another node took the job over, nor once the lease expired:
  the job's writes check the token, not the job's belief. What a job does outside the database
  (a TSA request, a push to DVCQG) is not fenced: it is bounded by the cancellation above, and
  each such job is safe to repeat (docs/scaling.md lists them).

A job is an ``async`` function of the (fenced) database that runs until cancelled; if it
returns, it is done in this process and its lease is released; if it raises, the failure is
logged, the lease released and the job tried again after one polling interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from enum import Enum
from typing import Any

from storage.db import Database, Tx
from storage.errors import StorageError
from storage.ids import utcnow
from storage.repos.leases import Lease, LeaseLost, LeaseRepo

log = logging.getLogger("lienthong.jobs")

JobBody = Callable[[Database], Coroutine[Any, Any, None]]
"""A once-only job: runs on the database it is given (fenced) until cancelled."""


def new_holder() -> str:
    """A name for one lease holder, unique among the processes and apps sharing a database:
    ``host:pid:random`` (the random part tells apart two apps of one process, as in tests, and a
    process that reuses a dead one's pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class FencedDatabase(Database):
    """The database as a leased job sees it: reads as usual; every write transaction first
    checks that ``lease`` is still held with its token (``LeaseRepo.fence``) and is refused
    with :class:`LeaseLost` otherwise, before any of the job's writes. It does not own the
    database: closing it closes nothing."""

    def __init__(self, database: Database, lease: Lease) -> None:
        # No Database.__init__: nothing is opened here, every call goes to ``database``.
        self._inner = database
        self.lease = lease

    def __getattr__(self, name: str) -> Any:
        """Any other attribute (``path``, ``dialect``...) is the wrapped database's."""
        if name == "_inner":  # not set yet (a copy being made): no endless recursion
            raise AttributeError(name)
        return getattr(self._inner, name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction of ``database`` that first checks the lease (see the class)."""
        async with self._inner.transaction() as tx:
            await LeaseRepo(tx).fence(self.lease, utcnow())
            yield tx

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[Tx]:
        """A read transaction of ``database`` (reads need no lease)."""
        async with self._inner.reader() as tx:
            yield tx

    async def committed(self) -> None:
        """See :meth:`Database.committed`."""
        await self._inner.committed()

    async def ping(self) -> None:
        """See :meth:`Database.ping`."""
        await self._inner.ping()

    async def applied_migrations(self) -> list[tuple[int, str, str]]:
        """See :meth:`Database.applied_migrations`."""
        return await self._inner.applied_migrations()

    async def close(self) -> None:
        """Nothing: the database belongs to the app."""


class Outcome(Enum):
    """Why a job stopped running under its lease."""

    FINISHED = "finished"  # the job returned: done in this process
    FAILED = "failed"  # the job raised
    LOST = "lost"  # another holder has the lease (a renewal or a fenced write found out)
    EXPIRED = "expired"  # no renewal succeeded for 2/3 of the lease: given up before it lapses
    STOPPED = "stopped"  # this process stops (the app shuts down): the lease is released


class LeasedJob:
    """One once-only job of this process, run while it holds the job's lease (module doc)."""

    def __init__(
        self, name: str, body: JobBody, database: Database, holder: str, lease_seconds: float
    ) -> None:
        self.name = name
        self.body = body
        self.database = database
        self.holder = holder
        self.ttl = timedelta(seconds=lease_seconds)
        self.every = lease_seconds / 3  # renewal and polling interval
        self.give_up = lease_seconds - self.every  # stop the job after this long unrenewed
        self.lease: Lease | None = None  # while this process holds it and the job runs
        self.runs = 0  # how many times the job was started here
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start trying to take the lease (and run the job once taken)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lienthong-lease-{self.name}")

    async def stop(self) -> None:
        """Stop the job if it runs and release its lease, so another process takes it over at
        its next try instead of after the lease expires."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            asked = time.monotonic()
            acquiring = asyncio.ensure_future(self._acquire())
            try:
                lease = await asyncio.shield(acquiring)
            except asyncio.CancelledError:
                # Stopped while taking it: a lease taken all the same is let go at once.
                taken = await acquiring
                if taken is not None:
                    await self._release(taken)
                raise
            if lease is None:
                await asyncio.sleep(self.every)
                continue
            self.lease = lease
            try:
                outcome = await self._hold(lease, asked)
            finally:
                try:
                    # Also when stopped (cancelled): the others need not wait for the expiry.
                    await asyncio.shield(self._release(lease))
                finally:
                    self.lease = None  # once released: held() says what the table says
            if outcome is Outcome.FINISHED:
                return
            await asyncio.sleep(self.every)

    async def _acquire(self) -> Lease | None:
        try:
            # A look first: the processes waiting for a held lease take no write lock.
            async with self.database.reader() as tx:
                row = await LeaseRepo(tx).get(self.name)
            if row is not None and row.holder != self.holder and row.held_at(utcnow()):
                return None
            async with self.database.transaction() as tx:
                lease = await LeaseRepo(tx).acquire(self.name, self.holder, self.ttl, utcnow())
        except StorageError as exc:
            log.warning("job lease not taken", extra={"job": self.name, "error": str(exc)})
            return None
        return lease

    async def _release(self, lease: Lease) -> None:
        with contextlib.suppress(StorageError):  # it expires by itself anyway
            async with self.database.transaction() as tx:
                await LeaseRepo(tx).release(lease, utcnow())

    async def _renew(self, lease: Lease, within: float) -> bool | None:
        """True when renewed, False when taken over, None when the database did not answer
        within ``within`` seconds."""
        error = "no answer from the database in time (or this process was paused)"
        if within > 0:
            try:
                async with asyncio.timeout(within):
                    async with self.database.transaction() as tx:
                        return await LeaseRepo(tx).renew(lease, self.ttl, utcnow())
            except StorageError as exc:
                error = str(exc)
            except TimeoutError:
                pass
        log.warning("job lease not renewed", extra={"job": self.name, "error": error})
        return None

    async def _hold(self, lease: Lease, acquired: float) -> Outcome:
        """Run the job under ``lease`` (taken at monotonic time ``acquired``) until it ends or
        the lease is lost or about to expire; the job is stopped when this returns."""
        where = {"job": self.name, "holder": self.holder, "token": lease.token}
        log.info("job lease taken; job started", extra=where)
        self.runs += 1
        task = asyncio.create_task(
            self.body(FencedDatabase(self.database, lease)), name=f"lienthong-job-{self.name}"
        )
        outcome = Outcome.STOPPED  # unless the loop below ends otherwise: cancelled
        try:
            renewed = acquired
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.every)
                if done:
                    outcome = self._ended(task)
                    return outcome
                asked = time.monotonic()
                ok = await self._renew(lease, renewed + self.give_up - asked)
                if ok is False:
                    outcome = Outcome.LOST
                    return outcome
                if ok:
                    renewed = asked
                elif time.monotonic() - renewed >= self.give_up:
                    outcome = Outcome.EXPIRED
                    return outcome
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
            log.info("job stopped", extra={**where, "reason": outcome.value})

    def _ended(self, task: asyncio.Task[None]) -> Outcome:
        if task.cancelled():  # by the job itself: not a normal end
            log.error("job cancelled itself", extra={"job": self.name})
            return Outcome.FAILED
        exc = task.exception()
        if exc is None:
            return Outcome.FINISHED
        if isinstance(exc, LeaseLost):
            return Outcome.LOST
        log.error("job failed", extra={"job": self.name}, exc_info=exc)
        return Outcome.FAILED


class Jobs:
    """The once-only jobs of one app (one process of the axis), each under its lease."""

    def __init__(
        self, database: Database, *, lease_seconds: float, holder: str | None = None
    ) -> None:
        self.database = database
        self.lease_seconds = lease_seconds
        self.holder = holder or new_holder()
        self.jobs: dict[str, LeasedJob] = {}

    def start(self, name: str, body: JobBody) -> LeasedJob:
        """Run ``body`` as the job ``name`` whenever this process holds its lease."""
        if name in self.jobs:
            raise ValueError(f"job {name!r} is started already")
        job = LeasedJob(name, body, self.database, self.holder, self.lease_seconds)
        self.jobs[name] = job
        job.start()
        return job

    async def stop(self, name: str) -> None:
        """Stop the job ``name`` (if started) and release its lease."""
        job = self.jobs.pop(name, None)
        if job is not None:
            await job.stop()

    @contextlib.asynccontextmanager
    async def running(self, name: str, body: JobBody) -> AsyncIterator[LeasedJob]:
        """``start`` for the block, ``stop`` at its end (an app context's lifetime)."""
        job = self.start(name, body)
        try:
            yield job
        finally:
            await self.stop(name)

    async def close(self) -> None:
        """Stop every job still running and release their leases."""
        for name in list(self.jobs):
            await self.stop(name)

    def held(self) -> dict[str, int]:
        """The jobs this process holds the lease of, with their tokens."""
        return {name: job.lease.token for name, job in self.jobs.items() if job.lease}
