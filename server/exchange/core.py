"""The state every part of the exchange shares, and the steps they share.

:class:`ExchangeCore` holds the configuration, database, object store, router and hooks, and
the steps both intakes and the readers use: spooling a request body, parsing and checking a
package (trace, loop), storing it, routing deliveries (federation and push), and who may see a
package. The intakes (:mod:`server.exchange.accept`, :mod:`server.exchange.statuses`), the
readers (:mod:`server.exchange.reading`, :mod:`server.exchange.attachments`) build on it and
:class:`server.exchange.Exchange` composes them.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

import edxml
from edxml import DiscardSink, Envelope, StatusMessage
from server.exchange.early_parse import EarlyParse
from server.exchange.errors import (
    DocumentNotFound,
    EmptyPackage,
    InvalidPackage,
    NotRoutable,
    RoutingLoop,
    SenderMismatch,
    TraceNotPlaced,
)
from server.exchange.federation import Router
from server.exchange.results import ArrivalHook, StatusHook
from server.runtime.config import Config
from server.runtime.spool import SpooledPackage, format_trace_time, receive
from server.runtime.staging import StagedPackage, stage_package
from storage.db import Database, Tx
from storage.errors import StorageError, StorageFull
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import Delivery, DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.routes import PushRepo

log = logging.getLogger("lienthong.exchange")

T = TypeVar("T")

# Room for the TraceHeader the axis splices in, on top of the accepted body size.
_SPLICE_ROOM = 4096
# Packages up to this size are parsed on the event loop (see Exchange._parse).
INLINE_PARSE_BYTES = 64 * 1024


class ExchangeCore:
    """The exchange state bound to one axis's configuration, database and object store,
    with the steps shared by accepting and reading packages."""

    def __init__(self, config: Config, database: Database, objects: ObjectStore) -> None:
        self.config = config
        self.database = database
        self.objects = objects
        self.limits = edxml.Limits(max_size=config.server.max_body_bytes + _SPLICE_ROOM)
        # Federation and push (server/exchange/federation.py, server/exchange/delivery.py): where
        # each recipient's packages go; the delivery worker sets on_scheduled to be woken by new
        # pushes.
        self.router = Router(config)
        self.on_scheduled: Callable[[], None] | None = None
        # Post-acceptance hooks (e.g. signature verification, server/signatures/verification.py);
        # their background tasks are kept here so that shutdown and tests can wait for them
        # (settle, server/exchange/accept.py).
        self.on_accepted: list[ArrivalHook] = []
        # The same for status messages (e.g. one-stop dossiers' steps at other agencies,
        # server/dossiers/transfers.py); announced by server/exchange/statuses.py.
        self.on_status: list[StatusHook] = []
        self._hook_tasks: set[asyncio.Task[None]] = set()

    def _call_hooks(
        self, hooks: Sequence[Callable[[T], Awaitable[None]]], accepted: T, doc_id: str, what: str
    ) -> None:
        """Call every hook with ``accepted``; run what each returns in the background. A hook's
        bug must not fail what was accepted and committed: it is logged."""
        for hook in hooks:
            try:
                work = hook(accepted)
            except Exception:
                log.exception("%s hook failed", what, extra={"id": doc_id})
                continue
            self._background(work, doc_id)

    def _background(self, work: Awaitable[None], doc_id: str) -> None:
        """Run a hook's work as a background task that :meth:`settle` waits for; its failure
        is logged, never raised."""
        task = asyncio.ensure_future(_run_hook(work, doc_id))
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self, chunks: AsyncIterable[bytes]) -> SpooledPackage:
        """Spool a request body with the axis TraceHeader (see :mod:`server.runtime.spool`).

        A full disk is :class:`StorageFull` (503 with Retry-After), not an unexpected error.
        """
        upload = self.objects.streaming_upload()
        # Where the upload overlaps the receipt (S3), so does the parse of a large package:
        # otherwise it would be all that is left after the last byte.
        follower = None if upload is None else EarlyParse(self._read_package)
        try:
            return await receive(
                chunks,
                self.config.spool_dir,
                limit=self.config.server.max_body_bytes,
                organ_id=self.config.server.axis_id,
                moment=utcnow(),
                upload=upload,
                follower=follower,
            )
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("the spool directory is full") from exc
            raise StorageError(f"could not spool the request body: {exc.strerror}") from exc

    def _parse_blocking(
        self, package: SpooledPackage
    ) -> tuple[Envelope | StatusMessage, list[edxml.Problem]]:
        """Parse and validate the spooled package (in a worker thread: it may be large)."""
        if package.received_size == 0:
            raise EmptyPackage("The request body is empty: send the edXML package as the body.")
        obj, warnings = self._read_package(package.path)
        return self._judge(obj, warnings, package)

    def _read_package(
        self, source: Path | BinaryIO
    ) -> tuple[Envelope | StatusMessage, list[edxml.Problem]]:
        """Parse a package (attachments decoded and dropped) with its parse warnings."""
        warnings: list[edxml.Problem] = []
        obj = edxml.parse(
            source, sink=DiscardSink(), limits=self.limits, on_warning=warnings.append
        )
        return obj, warnings

    def _judge(
        self, obj: Envelope | StatusMessage, warnings: list[edxml.Problem], package: SpooledPackage
    ) -> tuple[Envelope | StatusMessage, list[edxml.Problem]]:
        """Validate a parsed package and check the axis's trace and routing loops."""
        problems = edxml.validate(obj)
        errors = [p for p in problems if p.is_error]
        if errors:
            raise InvalidPackage(errors)
        warnings.extend(p for p in problems if not p.is_error)
        self._check_trace(obj, package)
        self._check_loop(obj)
        return obj, warnings

    def _check_loop(self, obj: Envelope | StatusMessage) -> None:
        """Refuse a package that already passed through this axis (a routing loop)."""
        own = self.config.server.axis_id
        if any(t.organ_id == own for t in obj.trace_headers[:-1]):
            hops = " -> ".join(t.organ_id or "?" for t in obj.trace_headers)
            raise RoutingLoop(
                f"The package already passed through this axis ({own}): {hops}.", trace=hops
            )

    def _check_trace(self, obj: Envelope | StatusMessage, package: SpooledPackage) -> None:
        """The last TraceHeader the parser saw must be the one the axis spliced in."""
        last = obj.trace_headers[-1] if obj.trace_headers else None
        if (
            not package.spliced
            or last is None
            or last.organ_id != package.trace_organ_id
            or last.timestamp is None
            or format_trace_time(last.timestamp) != package.trace_timestamp
        ):
            raise TraceNotPlaced(
                "The axis could not add its TraceHeader to this package's edXMLHeader "
                "(is TraceHeaderList inside a comment or CDATA?)."
            )

    async def _parse(
        self, package: SpooledPackage
    ) -> tuple[Envelope | StatusMessage, list[edxml.Problem]]:
        # A small package parses in well under a millisecond: faster than the hop to a worker
        # thread, and Python CPU work in a thread only competes for the GIL with the event loop
        # (measured: bench/api_send_bench.py). Large ones go to a thread to keep the loop free.
        if package.received_size <= INLINE_PARSE_BYTES:
            return self._parse_blocking(package)
        early = package.follower
        # Parsed while it arrived (server/exchange/early_parse.py), unless still queued.
        if isinstance(early, EarlyParse) and early.started and not early.withdraw():
            obj, warnings = await early.result()
            return await asyncio.to_thread(self._judge, obj, warnings, package)
        return await asyncio.to_thread(self._parse_blocking, package)

    async def _store(self, package: SpooledPackage) -> StagedPackage:
        """Take the spooled package towards the object store (server/runtime/staging.py): a
        small one is written with its row (``save`` in the row's transaction); a larger one is
        stored now (an S3 upload begun while the body arrived is finished), after an intent
        record that lets the start-up sweep delete it if the send dies before its row commits
        (the row insert drops the record)."""
        upload = package.upload
        return await stage_package(
            self.database,
            self.objects,
            package.path,
            package.sha256,
            finish=None
            if upload is None
            else (lambda: upload.finish(package.path, package.sha256)),
        )

    # -- routing (federation and push) -------------------------------------------------------

    async def _on_behalf(self, caller: str, from_id: str) -> str | None:
        """None when ``caller`` sends as itself; the axis id when ``caller`` is an axis account
        allowed to forward for ``from_id`` (see server/exchange/federation.py); else
        SenderMismatch."""
        if from_id == caller:
            return None
        async with self.database.reader() as tx:
            if await self.router.may_speak_for(tx, caller, from_id):
                return caller
        raise SenderMismatch(f"From/OrganId is {from_id} but the token belongs to {caller}.")

    async def _not_back(self, via: str | None, ids: Sequence[str]) -> list[str]:
        """``ids`` without those that would go back to the axis ``via`` the package came from
        (the other side routes them itself). NotRoutable if none is left."""
        if via is None:
            return list(ids)
        async with self.database.reader() as tx:
            kept = [i for i in ids if not await self.router.routed_through(tx, via, i)]
        if not kept:
            raise NotRoutable(f"None of the recipients ({', '.join(ids)}) is routed by this axis.")
        return kept

    async def _register_sender(self, tx: Tx, org: edxml.Organization) -> None:
        """Add a sender known only through another axis to the directory, so that statuses
        can be routed back to it."""
        agencies = AgencyRepo(tx)
        if await agencies.get(org.organ_id) is None:
            name = org.organ_name or org.organization_in_charge or org.organ_id
            await agencies.add(org.organ_id, name)

    async def _route(self, tx: Tx, delivery: Delivery) -> bool:
        """Schedule the delivery for the push worker when its recipient is not pulled here."""
        if not (await self.router.resolve(tx, delivery.recipient)).pushes:
            return False
        await PushRepo(tx).schedule(delivery.id, utcnow())
        return True

    def _wake(self) -> None:
        if self.on_scheduled is not None:
            self.on_scheduled()

    # -- visibility --------------------------------------------------------------------------

    async def visible(self, tx: Tx, caller: str, package_id: str) -> Document:
        """The package if ``caller`` sent it or it was delivered to them; else DocumentNotFound.

        Absent and not-yours are the same answer, so ids of other agencies' packages leak
        nothing.
        """
        doc = await DocumentRepo(tx).get(package_id)
        if doc is None or not await self._party(tx, caller, doc):
            raise DocumentNotFound(f"No document {package_id} for {caller}.")
        return doc

    async def _party(self, tx: Tx, caller: str, doc: Document) -> bool:
        return doc.sender == caller or caller in await DeliveryRepo(tx).recipients(doc.id)

    async def document(self, caller: str, package_id: str) -> Document:
        """The package row, if visible to ``caller``."""
        async with self.database.reader() as tx:
            return await self.visible(tx, caller, package_id)


async def _run_hook(work: Awaitable[None], doc_id: str) -> None:
    try:
        await work
    except Exception:
        log.exception("arrival hook failed", extra={"id": doc_id})
