"""The delivery worker (push): sends leased deliveries to webhooks and to other axes.

Promise: at least once on the wire, never two workers on one delivery at once, and a clear end.

- A delivery to push has ``next_attempt_at`` set (the exchange schedules it when its recipient
  resolves to a webhook, a linked axis or the parent: server/exchange/federation.py).
- The worker *leases* due deliveries in a write transaction (storage/repos/routes.py); a lease
  names its owner and expires, so a worker that dies (SIGKILL) delays its deliveries by the lease
  time at most, and two workers (even two processes on one database) never send the same
  delivery while a lease runs.
- A push counts as delivered when the other side answers 2xx: the delivery becomes ``acked``
  with ``pushed_at``. A failure retries with exponential back-off and jitter
  (``base_delay_ms * 2**(n-1)``, capped at ``max_delay``, then a random 50-100% of it) until
  ``max_age`` seconds have passed since the round began; then, or at once for an answer that
  retrying cannot change (400, 404, 405, 409, 410, 413, 415, 422), the delivery goes to the
  dead-letter state ``dead``, which its sender sees in /api/v1/sent and the admin in
  ``lienthong deliveries list``; ``lienthong deliveries retry`` starts a new round.
- Exactly once in the inbox is the receiving side's part: a webhook receiver de-duplicates on
  (sender, DocumentId, Idempotency-Key); another axis on (sender, DocumentId) for documents and
  on the received bytes for statuses (server/exchange/statuses.py).

Also here: the start-up sweep of stored objects that no row references (an upload whose
transaction failed or was killed after its object was stored), and the app's cleanup context
that runs the worker and the directory sync with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp

import server.exchange.webhooks as webhooks
from server.exchange.federation import Route, Router
from server.exchange.meta import edxml_document_id
from server.runtime.config import Config
from storage.db import Database, Tx
from storage.errors import StorageError
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.documents import Document
from storage.repos.pending_objects import PendingObjectRepo
from storage.repos.routes import PushItem, PushRepo, RouteRepo, SecretCipher
from storage.repos.signing_sessions import SigningSessionRepo

log = logging.getLogger("lienthong.delivery")

# Answers that a retry cannot change: the delivery goes to the dead-letter state at once.
PERMANENT_STATUSES = frozenset({400, 404, 405, 409, 410, 413, 415, 422})
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Outcome:
    """How one push attempt ended: ok, or an error and whether retrying may help."""

    ok: bool
    error: str = ""
    permanent: bool = False


def backoff(attempt: int, base_ms: int, max_seconds: int, rng: random.Random) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, with jitter.

    ``attempt`` counts the attempts made (1 after the first failure). The jitter (50-100% of
    the delay) spreads retries of many deliveries that failed together.
    """
    delay = min(float(max_seconds), base_ms / 1000 * 2 ** max(0, attempt - 1))
    return float(delay / 2 + rng.uniform(0, delay / 2))


class DeliveryWorker:
    """Pushes due deliveries; ``start()`` runs it in the background, ``stop()`` ends it."""

    def __init__(
        self,
        config: Config,
        database: Database,
        objects: ObjectStore,
        router: Router,
        session: aiohttp.ClientSession,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.settings = config.delivery
        self.database = database
        self.objects = objects
        self.router = router
        self.session = session
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.pushed = 0
        self.failed = 0
        # Webhooks go through their own session, which refuses loopback, link-local and the
        # axis's own port (webhooks.webhook_session); other axes through ``session``.
        self._webhook_session: aiohttp.ClientSession | None = None

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Run the worker loop in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lienthong-delivery-{self.owner}")

    def wake(self) -> None:
        """Look at the queue now (a delivery was just scheduled)."""
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let pushes in flight finish for ``grace`` seconds, then cancel them
        (their leases expire and another worker sends them again: at least once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._webhook_session is not None:
            await self._webhook_session.close()
            self._webhook_session = None

    async def _run(self) -> None:
        poll = self.settings.poll_ms / 1000
        while True:
            try:
                await self.run_once()
            except StorageError as exc:
                log.warning("delivery queue unavailable", extra={"error": str(exc)})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)

    async def run_once(self) -> int:
        """Claim what is due (up to the free concurrency) and start pushing it; return how many
        deliveries were claimed."""
        free = self.settings.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        now = utcnow()
        async with self.database.reader() as tx:
            due = await PushRepo(tx).oldest_due()
        if due is None or due > now:
            return 0
        lease_until = now + timedelta(seconds=self.settings.lease)
        async with self.database.transaction() as tx:
            items = await PushRepo(tx).claim(self.owner, now, lease_until, free)
        for item in items:
            task = asyncio.create_task(self._deliver(item))
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(items)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def drain(self, within: float = 30.0) -> None:
        """Push until nothing is due or in flight (for tests and the CLI); TimeoutError after
        ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            claimed = await self.run_once()
            if self._inflight:
                await asyncio.wait(set(self._inflight), return_when=asyncio.FIRST_COMPLETED)
            elif not claimed:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("deliveries still pending")

    # -- one delivery ------------------------------------------------------------------------

    async def _deliver(self, item: PushItem) -> None:
        async with self.database.reader() as tx:
            route = await self.router.resolve(tx, item.recipient)
        if not route.pushes:
            # The agency removed its webhook since: it pulls the package from its inbox.
            async with self.database.transaction() as tx:
                await PushRepo(tx).release(item.delivery_id, self.owner)
            return
        try:
            outcome = await self.push(item, route)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or an unreadable object: retried like a failure
            log.error("push failed unexpectedly", exc_info=exc)
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        await self._settle(item, outcome)

    async def _settle(self, item: PushItem, outcome: Outcome) -> None:
        now = utcnow()
        async with self.database.transaction() as tx:
            repo = PushRepo(tx)
            if outcome.ok:
                kept = await repo.succeed(item.delivery_id, self.owner, now)
                self.pushed += 1
            elif outcome.permanent or (now - item.push_since).total_seconds() >= (
                self.settings.max_age
            ):
                kept = await repo.bury(item.delivery_id, self.owner, outcome.error)
                self.failed += 1
            else:
                delay = backoff(
                    item.attempts + 1,
                    self.settings.base_delay_ms,
                    self.settings.max_delay,
                    self.rng,
                )
                at = now + timedelta(seconds=delay)
                kept = await repo.retry_later(item.delivery_id, self.owner, at, outcome.error)
                self.failed += 1
        if not kept:
            log.warning("lease lost before settling", extra={"delivery": item.delivery_id})
        log.info(
            "push",
            extra={
                "delivery": item.delivery_id,
                "recipient": item.recipient,
                "ok": outcome.ok,
                "attempt": item.attempts + 1,
                "error": outcome.error or None,
            },
        )

    async def push(self, item: PushItem, route: Route) -> Outcome:
        """Send one delivery along ``route`` once; never raises for network failures."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        headers = {
            "Content-Type": "application/xml",
            "Content-Length": str(item.size),
            webhooks.IDEMPOTENCY_HEADER: item.delivery_id,
        }
        session = self.session
        if route.kind == "local":
            assert route.webhook_url is not None and route.webhook_secret is not None
            url = route.webhook_url
            if self._webhook_session is None:
                self._webhook_session = webhooks.webhook_session(self.config)
            session = self._webhook_session
            timestamp = int(time.time())
            mac = webhooks.signer(route.webhook_secret, timestamp)
            async for chunk in self.objects.open(item.sha256):
                mac.update(chunk)
            doc_id = edxml_document_id(_as_document(item))
            headers.update(
                {
                    webhooks.TIMESTAMP_HEADER: str(timestamp),
                    webhooks.SIGNATURE_HEADER: f"{webhooks.SCHEME}={mac.hexdigest()}",
                    webhooks.DELIVERY_HEADER: item.delivery_id,
                    webhooks.PACKAGE_HEADER: item.package_id,
                    webhooks.KIND_HEADER: item.kind,
                    webhooks.SENDER_HEADER: item.sender,
                    webhooks.RECIPIENT_HEADER: item.recipient,
                    webhooks.DOCUMENT_ID_HEADER: webhooks.encode_document_id(doc_id),
                }
            )
        else:
            # Another axis: the same API as any agency system, as this axis's account there.
            path = "/api/v1/documents" if item.kind == "document" else "/api/v1/statuses"
            url = f"{route.url}{path}"
            if route.token:
                headers["Authorization"] = f"Bearer {route.token}"
        # To another axis: this axis's client certificate (mTLS) when configured.
        tls = True if route.kind == "local" else self.router.client_ssl
        try:
            # No redirect is followed: a 3xx is a failed push, never a request elsewhere.
            async with session.post(
                url,
                data=self._body(item),
                headers=headers,
                timeout=timeout,
                ssl=tls,
                allow_redirects=False,
            ) as resp:
                text = (await resp.content.read(2000)).decode("utf-8", "replace")
                if 200 <= resp.status < 300:
                    return Outcome(True)
                return Outcome(
                    False,
                    f"HTTP {resp.status}: {text[:300]}",
                    permanent=resp.status in PERMANENT_STATUSES,
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}"[:300])

    async def _body(self, item: PushItem) -> AsyncIterator[bytes]:
        async for chunk in self.objects.open(item.sha256):
            yield chunk


def _as_document(item: PushItem) -> Document:
    return Document(
        id=item.package_id,
        sender=item.sender,
        document_id=item.document_id,
        kind=item.kind,
        sha256=item.sha256,
        size=item.size,
        meta_json=item.meta_json,
    )


# --- objects no row references ---------------------------------------------------------------


# Intent records handled per write transaction (objects are deleted under the write lock).
SWEEP_BATCH = 500


async def sweep_orphans(database: Database, objects: ObjectStore, grace: float) -> int:
    """Delete the objects of sends that died half-way; return how many objects were removed.

    Only objects with an intent record (``pending_objects``, written by the exchange before it
    stores a package) older than ``grace`` seconds are candidates, and of those only the ones
    no document row names (a retry of the same bytes may have committed). Any other object --
    a signed PDF, an attachment version, a report, whatever a later feature keeps -- is never
    touched. Records of named digests are simply dropped. Only the filesystem store is swept
    (an S3 bucket under Object Lock keeps its objects by design; its records stay); on S3 the
    uploads begun while a body arrived and never finished (``incoming/``, older than
    ``grace``) are removed instead (``ObjectStore.sweep_incoming``).

    Each batch runs in one write transaction and the objects are deleted while it holds the
    write lock: a send renewing a record of the same digest waits for it, and stores its
    object again only after the deletion.
    """
    cutoff = utcnow() - timedelta(seconds=grace)
    removed = await objects.sweep_incoming(cutoff)
    if not objects.sweepable:
        if removed:
            log.warning("removed unfinished uploads", extra={"count": removed})
        return removed
    while True:
        async with database.transaction() as tx:
            repo = PendingObjectRepo(tx)
            stale = await repo.older_than(cutoff, limit=SWEEP_BATCH)
            unnamed = await repo.unreferenced(p.sha256 for p in stale)
            dropped = 0
            for pending in stale:
                if pending.sha256 in unnamed and await objects.delete_orphan(tx, pending.sha256):
                    removed += 1
                if await repo.forget(pending.sha256, pending.created_at):
                    dropped += 1
        if len(stale) < SWEEP_BATCH or not dropped:
            break
    if removed:
        log.warning("removed orphan objects", extra={"count": removed})
    return removed


async def seal_route_secrets(database: Database, cipher: SecretCipher) -> int:
    """Seal webhook secrets and axis-link tokens stored in plain text before migration 0007;
    return how many rows were sealed (0, and no key needed, when there are none)."""
    return await _seal_plaintext(database, lambda tx: RouteRepo(tx, cipher), "route secrets")


async def seal_session_secrets(database: Database, cipher: SecretCipher) -> int:
    """Seal the JWT secrets of signing sessions stored in plain text before migration 0011;
    return how many rows were sealed (0, and no key needed, when there are none)."""
    return await _seal_plaintext(
        database, lambda tx: SigningSessionRepo(tx, cipher), "signing-session secrets"
    )


async def _seal_plaintext(
    database: Database, repo: Callable[[Tx], RouteRepo | SigningSessionRepo], what: str
) -> int:
    async with database.transaction() as tx:
        sealed = await repo(tx).seal_plaintext()
    if sealed:
        log.warning(f"sealed plaintext {what}", extra={"count": sealed})
    return sealed


async def startup_jobs(
    config: Config,
    database: Database,
    objects: ObjectStore,
    cipher: SecretCipher | None = None,
) -> None:
    """What runs once at start-up, before requests are accepted: the orphan-object sweep and
    the sealing of plaintext route and signing-session secrets (``cipher``: the router's, else
    one from config)."""
    await sweep_orphans(database, objects, config.delivery.orphan_grace)
    box = cipher if cipher is not None else Router(config).secrets
    await seal_route_secrets(database, box)
    await seal_session_secrets(database, box)
