"""Accepting document packages: validate, de-duplicate, link to the original, store, route.

:class:`DocumentIntake` owns :meth:`~DocumentIntake.accept_document` (new documents, resends,
revoke/update/replace packages and their original) and the post-acceptance hooks it announces
to (:meth:`~DocumentIntake.settle` waits for them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable

import edxml
from edxml import BusinessDocType, Envelope
from server.exchange.core import ExchangeCore
from server.exchange.errors import (
    DuplicateDocument,
    InvalidPackage,
    NotOriginalSender,
    OriginalNotFound,
    UnknownRecipients,
    WrongKind,
)
from server.exchange.meta import document_meta, edxml_document_id, summarize
from server.exchange.results import AcceptedDocument, Receipt
from server.runtime import audit
from server.runtime.logs import annotate
from server.runtime.spool import SpooledPackage, received_package
from storage.db import Tx
from storage.errors import Conflict
from storage.ids import new_id, utcnow
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo

log = logging.getLogger("lienthong.exchange")


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


class DocumentIntake(ExchangeCore):
    """Accepting document packages (and announcing them to post-acceptance hooks)."""

    # -- documents ---------------------------------------------------------------------------

    async def accept_document(self, caller: str, package: SpooledPackage) -> Receipt:
        """Accept a document package from ``caller``: validate, store, route to its recipients.

        A resend of the same bytes under the same DocumentId answers the first receipt
        (``created=False``) and routes nothing again; other bytes under a used DocumentId are a
        :class:`DuplicateDocument`. Revoke/update/replace packages are linked to the original
        (which only its sender may touch) and routed to its recipients too.
        """
        async with received_package(package):
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
            staged = await self._store(package)
            ref = staged.ref
            priority = header.other_info.priority if header.other_info else None
            try:
                async with self.database.transaction() as tx:
                    await staged.save(tx)
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
                    doc = await DocumentRepo(tx).insert(doc)  # its id may move up
                    for delivery in await DeliveryRepo(tx).insert_many(
                        doc.id, recipients, "document"
                    ):
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
        self._call_hooks(self.on_accepted, accepted, accepted.document.id, "arrival")

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
