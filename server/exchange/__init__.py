"""The exchange rules of the axis (trục liên thông): accept, route, acknowledge, answer.

Handlers stay thin; everything a package must satisfy to be accepted, who may see what, and
what rows one accepted package produces lives here.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import mimetypes
import shutil
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import edxml
from edxml import BusinessDocType, DiscardSink, Envelope, StatusCode, StatusMessage
from edxml.attachments import AttachmentMeta, Writable, unzip
from server.exchange.errors import DocumentNotFound as DocumentNotFound
from server.exchange.errors import DuplicateDocument as DuplicateDocument
from server.exchange.errors import EmptyPackage as EmptyPackage
from server.exchange.errors import ExchangeError as ExchangeError
from server.exchange.errors import InvalidPackage as InvalidPackage
from server.exchange.errors import NotOriginalSender as NotOriginalSender
from server.exchange.errors import NotRoutable as NotRoutable
from server.exchange.errors import OriginalNotFound as OriginalNotFound
from server.exchange.errors import RoutingLoop as RoutingLoop
from server.exchange.errors import SenderMismatch as SenderMismatch
from server.exchange.errors import StatusNotAllowed as StatusNotAllowed
from server.exchange.errors import TraceNotPlaced as TraceNotPlaced
from server.exchange.errors import UnknownDocument as UnknownDocument
from server.exchange.errors import UnknownRecipients as UnknownRecipients
from server.exchange.errors import WrongKind as WrongKind
from server.exchange.federation import Router
from server.runtime import audit
from server.runtime.config import Config
from server.runtime.logs import annotate
from server.runtime.spool import SpooledPackage, format_trace_time, receive, spool_file, temp_path
from storage.db import Database, Tx
from storage.errors import Conflict, StorageError, StorageFull
from storage.ids import new_id, utcnow
from storage.objects.base import ObjectRef, ObjectStore
from storage.objects.local import fetch_to_file
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import Delivery, DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.pending_objects import PendingObjectRepo
from storage.repos.routes import PushRepo, StatusReceiptRepo
from storage.repos.statuses import Status, StatusRepo

log = logging.getLogger("lienthong.exchange")


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """The answer to an accepted package: its row, its recipients, and whether it is new."""

    document: Document
    recipients: list[str]
    created: bool


@dataclass(frozen=True)
class AcceptedDocument:
    """A document package just committed (rows, objects, audit entry): what arrival hooks get.

    ``meta`` is the stored JSON summary (``attachments`` with index, name, type, sha256).
    """

    document: Document
    recipients: list[str]
    meta: dict[str, Any]


# A post-acceptance hook (``Exchange.on_accepted``). It is CALLED synchronously once the
# document's transaction has committed, just before the sender's receipt is returned, so it
# can note what it is about to do; the awaitable it returns runs as a background task whose
# failure is logged and never reaches the sender: the 201 is neither delayed nor failed.
ArrivalHook = Callable[[AcceptedDocument], Awaitable[None]]


@dataclass(frozen=True)
class SentEntry:
    """One of the caller's sent documents with each recipient's delivery and latest status."""

    document: Document
    deliveries: list[Delivery]
    latest: dict[str, Status]


@dataclass(frozen=True)
class DecodedAttachment:
    """An attachment decoded (and unzipped) into a spool file the caller must remove."""

    path: Path
    name: str | None
    content_type: str
    size: int


# --- the rules -----------------------------------------------------------------------------

# The codes a recipient reports; 13 (yêu cầu lấy lại — recall request) is the sender's.
_RECIPIENT_CODES = frozenset(
    {
        StatusCode.RECEIVED,
        StatusCode.REJECTED,
        StatusCode.ACCEPTED,
        StatusCode.ASSIGNED,
        StatusCode.PROCESSING,
        StatusCode.COMPLETED,
        StatusCode.RECALL_ACCEPTED,
        StatusCode.RECALL_REFUSED,
    }
)
_SENDER_CODES = frozenset({StatusCode.RECALL_REQUESTED})

# Room for the TraceHeader the axis splices in, on top of the accepted body size.
_SPLICE_ROOM = 4096
# Packages up to this size are parsed on the event loop (see Exchange._parse).
INLINE_PARSE_BYTES = 64 * 1024


def _dedup_key(document_id: str, business: BusinessDocType, original: Document | None) -> str:
    """The key a sender's DocumentId is unique under.

    A revocation keeps the original's DocumentId in its MessageHeader (EDXML.md); so do some
    updates. Such a package is keyed ``<DocumentId>|<revoke|update|replace>`` so that it is
    neither mistaken for a resend of the original (same DocumentId, other bytes: 409) nor
    blocks it; the real DocumentId stays in the package and in ``meta``.
    """
    if original is not None and document_id == original.document_id:
        return f"{document_id}|{business.name.lower()}"
    return document_id


def _unique(ids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for organ_id in ids:
        seen.setdefault(organ_id, None)
    return list(seen)


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _org(org: edxml.Organization) -> dict[str, Any]:
    return {"organ_id": org.organ_id, "name": org.organ_name or org.organization_in_charge}


def _response_for(rf: edxml.ResponseFor) -> dict[str, Any]:
    return {
        "organ_id": rf.organ_id,
        "code": rf.code,
        "promulgation_date": _iso(rf.promulgation_date),
        "document_id": rf.document_id,
    }


def _business(business: edxml.Business | None) -> dict[str, Any]:
    if business is None:
        return {"type": 0, "label": BusinessDocType.NEW.label}
    info = business.document_info
    return {
        "type": int(business.doc_type),
        "label": business.doc_type.label,
        "reason": business.reason,
        "document_id": business.document_id,
        "paper": business.paper,
        "document_info": None
        if info is None
        else {
            "document_info": info.document_info,
            "document_receiver": info.document_receiver,
            "receivers": [
                {"organ_id": r.organ_id, "receiver_type": r.receiver_type} for r in info.receivers
            ],
        },
        "replacements": [
            {"document_id": r.document_id, "organ_ids": list(r.organ_ids)}
            for r in business.replacements
        ],
    }


def _traces(traces: Iterable[edxml.TraceHeader]) -> list[dict[str, Any]]:
    return [{"organ_id": t.organ_id, "timestamp": _iso(t.timestamp)} for t in traces]


def summarize(
    obj: Envelope | StatusMessage,
    package: SpooledPackage,
    warnings: Sequence[edxml.Problem],
) -> dict[str, Any]:
    """The JSON summary stored with a package (``meta_json``): what clerks and systems list.

    Holds the edXML fields, the attachments (no content), the trace, and the hash of the bytes
    as received (the stored package differs by the axis's TraceHeader).
    """
    meta: dict[str, Any] = {
        "received_sha256": package.received_sha256,
        "received_size": package.received_size,
        "trace_headers": _traces(obj.trace_headers),
        "business": _business(obj.business),
        "signed": obj.signature is not None,
        "warnings": [{"path": w.path, "message": w.message} for w in warnings],
    }
    if isinstance(obj, StatusMessage):
        meta.update(
            {
                "edxml_document_id": obj.response_for.document_id,
                "from": _org(obj.from_),
                "status": {
                    "code": obj.status_code.value,
                    "label": obj.status_code.label,
                    "description": obj.description,
                    "staff": None if obj.staff_info is None else obj.staff_info.staff,
                    "department": None if obj.staff_info is None else obj.staff_info.department,
                    "timestamp": _iso(obj.timestamp),
                },
                "response_for": [_response_for(obj.response_for)],
                "attachments": [],
            }
        )
        return meta
    header = obj.header
    other = header.other_info
    meta.update(
        {
            "edxml_document_id": header.document_id,
            "from": _org(header.from_),
            "to": [_org(o) for o in header.to],
            "subject": header.subject,
            "content": header.content,
            "code": None
            if header.code is None
            else {"number": header.code.number, "notation": header.code.notation},
            "promulgation": None
            if header.promulgation_info is None
            else {
                "place": header.promulgation_info.place,
                "date": _iso(header.promulgation_info.date),
            },
            "document_type": None
            if header.document_type is None
            else {
                "type": header.document_type.type,
                "type_detail": header.document_type.type_detail,
                "type_name": header.document_type.type_name,
            },
            "signer": None
            if header.signer_info is None
            else {
                "competence": header.signer_info.competence,
                "position": header.signer_info.position,
                "full_name": header.signer_info.full_name,
            },
            "due_date": _iso(header.due_date),
            "priority": None if other is None or other.priority is None else int(other.priority),
            "steering_type": header.steering_type,
            "response_for": [_response_for(rf) for rf in header.response_for],
            "attachments": [
                {
                    "index": i,
                    "content_id": a.content_id,
                    "name": a.name,
                    "content_type": a.content_type,
                    "description": a.description,
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for i, a in enumerate(obj.attachments)
            ],
        }
    )
    return meta


def document_meta(doc: Document) -> dict[str, Any]:
    """The stored JSON summary of a package (an empty dict if the stored text is unreadable)."""
    try:
        meta = json.loads(doc.meta_json)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def edxml_document_id(doc: Document) -> str:
    """The DocumentId written in the package (the row's key may carry a business suffix)."""
    value = document_meta(doc).get("edxml_document_id")
    return value if isinstance(value, str) else doc.document_id


class _OneAttachmentSink:
    """Writes attachment ``index`` to a spool file and drops every other attachment's bytes."""

    def __init__(self, index: int, path: Path) -> None:
        self.index = index
        self.path = path
        self.written = False
        self._discard = DiscardSink()

    def open(self, meta: AttachmentMeta) -> Writable:
        if meta.index != self.index:
            return self._discard.open(meta)
        self.written = True
        return self.path.open("wb")

    def close(self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str) -> None:
        if meta.index == self.index:
            writer.close()  # type: ignore[attr-defined]

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        if meta.index == self.index:
            writer.close()  # type: ignore[attr-defined]
            self.path.unlink(missing_ok=True)


class Exchange:
    """The exchange rules bound to one axis's configuration, database and object store."""

    def __init__(self, config: Config, database: Database, objects: ObjectStore) -> None:
        self.config = config
        self.database = database
        self.objects = objects
        self.limits = edxml.Limits(max_size=config.server.max_body_bytes + _SPLICE_ROOM)
        # Federation and push (server/exchange/federation.py, server/exchange/delivery.py): where
        # each recipient's
        # packages go; the delivery worker sets on_scheduled to be woken by new pushes.
        self.router = Router(config)
        self.on_scheduled: Callable[[], None] | None = None
        # Post-acceptance hooks (e.g. signature verification, server/signatures/verification.py);
        # their
        # background tasks are kept here so that shutdown and tests can wait for them (settle).
        self.on_accepted: list[ArrivalHook] = []
        self._hook_tasks: set[asyncio.Task[None]] = set()

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self, chunks: AsyncIterable[bytes]) -> SpooledPackage:
        """Spool a request body with the axis TraceHeader (see :mod:`server.runtime.spool`).

        A full disk is :class:`StorageFull` (503 with Retry-After), not an unexpected error.
        """
        try:
            return await receive(
                chunks,
                self.config.spool_dir,
                limit=self.config.server.max_body_bytes,
                organ_id=self.config.server.axis_id,
                moment=utcnow(),
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
        warnings: list[edxml.Problem] = []
        obj = edxml.parse(
            package.path, sink=DiscardSink(), limits=self.limits, on_warning=warnings.append
        )
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
        return await asyncio.to_thread(self._parse_blocking, package)

    async def _store(self, package: SpooledPackage) -> ObjectRef:
        """Move the spooled package into the object store, after committing an intent record.

        The object is stored before the document row commits; if the send dies in between, the
        record (older than ``orphan_grace``, no document naming the digest) is what lets the
        start-up sweep delete the object. Objects without a record are never swept. The row
        insert drops the record (``DocumentRepo.insert``).
        """
        async with self.database.transaction() as tx:
            await PendingObjectRepo(tx).record(package.sha256, utcnow())
        return await self.objects.put_file(package.path, sha256=package.sha256)

    # -- documents ---------------------------------------------------------------------------

    async def accept_document(self, caller: str, package: SpooledPackage) -> Receipt:
        """Accept a document package from ``caller``: validate, store, route to its recipients.

        A resend of the same bytes under the same DocumentId answers the first receipt
        (``created=False``) and routes nothing again; other bytes under a used DocumentId are a
        :class:`DuplicateDocument`. Revoke/update/replace packages are linked to the original
        (which only its sender may touch) and routed to its recipients too.
        """
        with spool_file(package):
            obj, warnings = await self._parse(package)
            if not isinstance(obj, Envelope):
                raise WrongKind("This is a status message; send it to /api/v1/statuses instead.")
            header = obj.header
            via = await self._on_behalf(caller, header.from_.organ_id)
            caller = header.from_.organ_id
            if not header.document_id:
                raise InvalidPackage(
                    [edxml.Problem("MessageHeader/DocumentId", "DocumentId is required")]
                )
            business = obj.business.doc_type if obj.business else BusinessDocType.NEW
            to_ids = await self._not_back(via, _unique(o.organ_id for o in header.to))
            async with self.database.reader() as tx:
                unknown = set(to_ids) - await AgencyRepo(tx).known(to_ids)
                if unknown:
                    raise UnknownRecipients(unknown)
                original = None
                recipients = to_ids
                if business != BusinessDocType.NEW:
                    original = await self._original(tx, caller, obj)
                    recipients = _unique([*await DeliveryRepo(tx).recipients(original.id), *to_ids])
                key = _dedup_key(header.document_id, business, original)
                existing = await self._resend(tx, caller, key, package)
            if existing is not None:
                return existing
            meta = summarize(obj, package, warnings)
            if original is not None:
                meta["original"] = {
                    "id": original.id,
                    "edxml_document_id": edxml_document_id(original),
                }
            ref = await self._store(package)
            priority = header.other_info.priority if header.other_info else None
            try:
                async with self.database.transaction() as tx:
                    doc = Document(
                        id=new_id(),
                        sender=caller,
                        document_id=key,
                        kind="document",
                        sha256=ref.sha256,
                        size=ref.size,
                        subject=header.subject,
                        code=str(header.code) if header.code else None,
                        priority=None if priority is None else int(priority),
                        business_type=int(business),
                        related_id=None if original is None else original.id,
                        received_at=utcnow(),
                        meta_json=json.dumps(meta, ensure_ascii=False),
                    )
                    await DocumentRepo(tx).insert(doc)
                    deliveries = DeliveryRepo(tx)
                    for recipient in recipients:
                        delivery = await deliveries.insert(doc.id, recipient, "document")
                        await self._route(tx, delivery)
                    if via is not None:
                        await self._register_sender(tx, header.from_)
                    await audit.record_send(tx, doc, recipients)
            except Conflict:
                # Another request with the same DocumentId came first (perhaps in the same
                # group commit, not yet visible to readers: wait for it).
                await self.database.committed()
                async with self.database.reader() as tx:
                    existing = await self._resend(tx, caller, key, package)
                if existing is None:
                    raise
                return existing
            self._wake()
            fields = {"id": doc.id, "size": ref.size, "recipients": len(recipients)}
            if not annotate(**fields):  # in a request: its access line carries them
                log.info("document accepted", extra=fields)
            self._announce(AcceptedDocument(doc, recipients, meta))
            return Receipt(doc, recipients, created=True)

    def _announce(self, accepted: AcceptedDocument) -> None:
        """Call every post-acceptance hook; run what each returns in the background."""
        for hook in self.on_accepted:
            try:
                work = hook(accepted)
            except Exception:  # a hook's bug must not fail an accepted, committed send
                log.exception("arrival hook failed", extra={"id": accepted.document.id})
                continue
            task = asyncio.ensure_future(self._run_hook(work, accepted.document.id))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_tasks.discard)

    @staticmethod
    async def _run_hook(work: Awaitable[None], doc_id: str) -> None:
        try:
            await work
        except Exception:
            log.exception("arrival hook failed", extra={"id": doc_id})

    async def settle(self) -> None:
        """Wait until the background work of post-acceptance hooks is done (tests, shutdown)."""
        while self._hook_tasks:
            await asyncio.gather(*list(self._hook_tasks), return_exceptions=True)

    async def _resend(
        self, tx: Tx, caller: str, key: str, package: SpooledPackage
    ) -> Receipt | None:
        """The first receipt if this DocumentId was used already (same bytes), else None."""
        existing = await DocumentRepo(tx).find_by_sender_docid(caller, key)
        if existing is None:
            return None
        if document_meta(existing).get("received_sha256") != package.received_sha256:
            raise DuplicateDocument(
                f"DocumentId {existing.document_id} was already used by {caller} for a "
                f"different package (id {existing.id}); give the new package a new DocumentId."
            )
        recipients = await DeliveryRepo(tx).recipients(existing.id)
        return Receipt(existing, recipients, created=False)

    async def _original(self, tx: Tx, caller: str, obj: Envelope) -> Document:
        """The document a revoke/update/replace concerns, which must be the caller's own.

        Looked up by, in order: Bussiness/DocumentId, ReplacementInfo/DocumentId, ResponseFor
        (DocumentId, with its OrganId as the original sender), and for a revocation the
        MessageHeader DocumentId itself (a revocation keeps the original's DocumentId).
        """
        business = obj.business
        assert business is not None
        candidates: list[tuple[str | None, str]] = []
        if business.document_id:
            candidates.append((None, business.document_id))
        candidates += [(None, r.document_id) for r in business.replacements if r.document_id]
        candidates += [
            (rf.organ_id, rf.document_id) for rf in obj.header.response_for if rf.document_id
        ]
        if obj.header.document_id:
            candidates.append((None, obj.header.document_id))
        repo = DocumentRepo(tx)
        foreign = False
        for organ_id, document_id in candidates:
            own = await repo.find_by_sender_docid(caller, document_id)
            if own is not None:
                return own
            if organ_id and organ_id != caller:
                if await repo.find_by_sender_docid(organ_id, document_id) is not None:
                    foreign = True
        label = business.doc_type.label.lower()
        if foreign:
            raise NotOriginalSender(
                f"Only the original sender may send a package of type {label} for this document."
            )
        names = ", ".join(sorted({d for _, d in candidates})) or "(none given)"
        raise OriginalNotFound(
            f"The package ({label}) names no document {caller} sent through this axis: {names}."
        )

    # -- statuses ----------------------------------------------------------------------------

    async def accept_status(self, caller: str, package: SpooledPackage) -> Receipt:
        """Accept a status message from ``caller`` and route it to the other party.

        Recipients of a document may report 01-06, 15 and 16 (routed to its sender); only its
        sender may send 13 (routed to every recipient).
        """
        with spool_file(package):
            obj, warnings = await self._parse(package)
            if not isinstance(obj, StatusMessage):
                raise WrongKind("This is a document package; send it to /api/v1/documents.")
            via = await self._on_behalf(caller, obj.from_.organ_id)
            caller = obj.from_.organ_id
            rf = obj.response_for
            code = obj.status_code
            unknown = UnknownDocument(
                "ResponseFor names no document that "
                f"{caller} sent or received here ({rf.organ_id}, {rf.document_id})."
            )
            if not rf.document_id:
                raise unknown
            owner = rf.organ_id or (caller if code in _SENDER_CODES else None)
            if owner is None:
                raise unknown
            async with self.database.reader() as tx:
                doc = await DocumentRepo(tx).find_by_sender_docid(owner, rf.document_id)
                if doc is None:
                    raise unknown
                recipients = await DeliveryRepo(tx).recipients(doc.id)
            is_sender = doc.sender == caller
            is_recipient = caller in recipients
            if not (is_sender or is_recipient):
                raise unknown
            if code in _SENDER_CODES:
                if not is_sender:
                    raise StatusNotAllowed(
                        f"Only the sender of the document ({doc.sender}) may send status {code}."
                    )
                targets = recipients
            elif code in _RECIPIENT_CODES:
                if not is_recipient:
                    raise StatusNotAllowed(
                        f"Status {code} is reported by a recipient of the document; "
                        f"{caller} is its sender."
                    )
                targets = [doc.sender]
            else:  # pragma: no cover - every StatusCode is in one of the two sets
                raise StatusNotAllowed(f"Status {code} cannot be sent through this axis.")
            targets = await self._not_back(via, targets)
            # The same status bytes again (an axis forwarding at least once, a client retrying)
            # answer the first receipt: one status in the inbox.
            dedup_key = f"{rf.document_id}|{package.received_sha256}"
            again = await self._status_again(caller, dedup_key)
            if again is not None:
                return again
            meta = summarize(obj, package, warnings)
            meta["about"] = {"id": doc.id, "edxml_document_id": edxml_document_id(doc)}
            ref = await self._store(package)
            now = utcnow()
            try:
                return await self._insert_status(
                    caller, obj, doc, targets, ref.sha256, ref.size, meta, now, dedup_key, via
                )
            except Conflict:
                await self.database.committed()  # the first one may be in the same group commit
                again = await self._status_again(caller, dedup_key)
                if again is None:
                    raise
                return again

    async def _status_again(self, caller: str, dedup_key: str) -> Receipt | None:
        """The receipt of a status package already accepted under ``dedup_key``, or None."""
        async with self.database.reader() as tx:
            package_id = await StatusReceiptRepo(tx).find(caller, dedup_key)
            if package_id is None:
                return None
            existing = await DocumentRepo(tx).get(package_id)
            recipients = await DeliveryRepo(tx).recipients(package_id)
        if existing is None:
            return None
        return Receipt(existing, recipients, created=False)

    async def _insert_status(
        self,
        caller: str,
        obj: StatusMessage,
        doc: Document,
        targets: Sequence[str],
        sha256: str,
        size: int,
        meta: dict[str, Any],
        now: datetime,
        dedup_key: str,
        via: str | None,
    ) -> Receipt:
        """Insert the status package, its status rows and deliveries in one transaction."""
        code = obj.status_code
        rf = obj.response_for
        assert rf.document_id is not None  # accept_status refused a status without one
        async with self.database.transaction() as tx:
            status_doc = Document(
                id=new_id(),
                sender=caller,
                document_id=rf.document_id,
                kind="status",
                sha256=sha256,
                size=size,
                subject=doc.subject,
                code=doc.code,
                priority=None,
                business_type=0,
                related_id=doc.id,
                received_at=now,
                meta_json=json.dumps(meta, ensure_ascii=False),
            )
            await DocumentRepo(tx).insert(status_doc)
            statuses = StatusRepo(tx)
            deliveries = DeliveryRepo(tx)
            for target in targets:
                await statuses.insert(
                    Status(
                        id=new_id(),
                        document_id=doc.id,
                        sender=caller,
                        recipient=target,
                        code=code.value,
                        description=obj.description,
                        staff=None if obj.staff_info is None else obj.staff_info.staff,
                        timestamp=obj.timestamp,
                        package_id=status_doc.id,
                        received_at=now,
                    )
                )
                await self._route(tx, await deliveries.insert(status_doc.id, target, "status"))
            await StatusReceiptRepo(tx).record(caller, dedup_key, status_doc.id)
            if via is not None:
                await self._register_sender(tx, obj.from_)
            await audit.record_status(tx, status_doc, targets, code.value)
        self._wake()
        if not annotate(id=status_doc.id, code=code.value):  # else the access line has them
            log.info("status accepted", extra={"id": status_doc.id, "code": code.value})
        return Receipt(status_doc, list(targets), created=True)

    # -- reading -----------------------------------------------------------------------------

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

    async def meta(self, caller: str, package_id: str) -> dict[str, Any]:
        """The JSON summary of a visible package, with recipients and links both ways."""
        async with self.database.reader() as tx:
            doc = await self.visible(tx, caller, package_id)
            deliveries = await DeliveryRepo(tx).for_document(doc.id)
            related_out = None
            if doc.related_id is not None:
                target = await DocumentRepo(tx).get(doc.related_id)
                if target is not None and await self._party(tx, caller, target):
                    related_out = target
            related_in = [
                d
                for d in await DocumentRepo(tx).related(doc.id)
                if d.kind == "document" and await self._party(tx, caller, d)
            ]
        meta = document_meta(doc)
        meta.update(
            {
                "id": doc.id,
                "kind": doc.kind,
                "sender": doc.sender,
                "sha256": doc.sha256,
                "size": doc.size,
                "received_at": doc.received_at.isoformat(),
                "business_type": doc.business_type,
                "recipients": [
                    {
                        "organ_id": d.recipient,
                        "state": d.state,
                        "acked_at": _iso(d.acked_at),
                    }
                    for d in deliveries
                ]
                if doc.sender == caller
                else [{"organ_id": d.recipient} for d in deliveries],
                "related": {
                    "original": None if related_out is None else _link(related_out),
                    "changes": [_link(d) for d in related_in],
                },
            }
        )
        return meta

    async def status_history(self, caller: str, package_id: str) -> list[Status]:
        """The statuses reported about a document, for its sender and recipients only."""
        async with self.database.reader() as tx:
            doc = await self.visible(tx, caller, package_id)
            if doc.kind != "document":
                raise DocumentNotFound(f"{package_id} is a status package, not a document.")
            return await StatusRepo(tx).history(doc.id)

    async def sent(self, caller: str, after: str | None, limit: int) -> list[SentEntry]:
        """The caller's documents (id order after the cursor) with deliveries and statuses."""
        async with self.database.reader() as tx:
            docs = await DocumentRepo(tx).list_sent(caller, after, limit)
            entries = []
            for doc in docs:
                entries.append(
                    SentEntry(
                        doc,
                        await DeliveryRepo(tx).for_document(doc.id),
                        await StatusRepo(tx).latest_by_recipient(doc.id),
                    )
                )
        return entries

    async def inbox(
        self, caller: str, after: str | None, limit: int, kind: str | None, state: str | None
    ) -> list[tuple[Delivery, Document]]:
        """The caller's deliveries, oldest first, after the cursor."""
        async with self.database.reader() as tx:
            return await DeliveryRepo(tx).inbox(caller, after, limit, kind=kind, state=state)

    async def ack(self, caller: str, delivery_id: str) -> Delivery:
        """Acknowledge one of the caller's deliveries (again: no change); else not found."""
        async with self.database.transaction() as tx:
            delivery = await DeliveryRepo(tx).ack(delivery_id, caller)
            await audit.record_ack(tx, caller, delivery)
        if delivery is None:
            raise DocumentNotFound(f"No delivery {delivery_id} for {caller}.")
        return delivery

    async def decode_attachment(
        self, caller: str, package_id: str, index: int
    ) -> DecodedAttachment:
        """Decode attachment ``index`` of a visible document into a spool file (unzipping what
        the national SDK zipped). The caller streams the file and must remove it."""
        doc = await self.document(caller, package_id)
        attachments = document_meta(doc).get("attachments") or []
        if doc.kind != "document" or not 0 <= index < len(attachments):
            raise DocumentNotFound(f"Document {package_id} has no attachment {index}.")
        entry = attachments[index]
        source = self.objects.local_path(doc.sha256)
        fetched: Path | None = None
        if source is None:
            # S3 keeps no local file: copy the package into the spool (hash-checked) first.
            fetched = source = await fetch_to_file(self.objects, doc.sha256, self.config.spool_dir)
        raw = temp_path(self.config.spool_dir, ".bin")
        try:
            return await asyncio.to_thread(self._decode_blocking, source, index, raw, entry)
        except BaseException:
            raw.unlink(missing_ok=True)
            raise
        finally:
            if fetched is not None:
                fetched.unlink(missing_ok=True)

    def _decode_blocking(
        self, source: Path, index: int, raw: Path, entry: dict[str, Any]
    ) -> DecodedAttachment:
        sink = _OneAttachmentSink(index, raw)
        edxml.parse(source, sink=sink, limits=self.limits)
        if not sink.written:
            raise DocumentNotFound(f"Attachment {index} is missing from the stored package.")
        name = entry.get("name")
        content_type = (entry.get("content_type") or "").split(";")[0].strip().lower()
        with raw.open("rb") as fh:
            zipped = content_type in {"application/zip", "application/x-zip-compressed"} or (
                fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
            )
        if not zipped:
            return DecodedAttachment(
                raw, name, content_type or _guess_type(name), raw.stat().st_size
            )
        inner_path = temp_path(self.config.spool_dir, ".bin")
        try:
            with raw.open("rb") as fh:
                inner = unzip(fh)
                with inner.stream, inner_path.open("wb") as out:
                    shutil.copyfileobj(inner.stream, out, 1024 * 1024)
        except BaseException:
            inner_path.unlink(missing_ok=True)
            raise
        finally:
            raw.unlink(missing_ok=True)
        # The SDK's zip member is a UUID plus the extension; AttachmentName is the real name.
        name = name or inner.name
        inner_type = content_type if content_type not in _ZIP_TYPES else ""
        return DecodedAttachment(
            inner_path, name, inner_type or _guess_type(name), inner_path.stat().st_size
        )


_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})


def _guess_type(name: str | None) -> str:
    guessed = mimetypes.guess_type(name or "")[0]
    return guessed or "application/octet-stream"


def _link(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "edxml_document_id": edxml_document_id(doc),
        "business_type": doc.business_type,
        "sender": doc.sender,
        "received_at": doc.received_at.isoformat(),
    }
