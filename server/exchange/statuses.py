"""Accepting status messages: who may report which code, to whom it is routed, and the
de-duplication of the same status bytes sent again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from edxml import StatusCode, StatusMessage
from server.exchange.core import ExchangeCore
from server.exchange.errors import StatusNotAllowed, UnknownDocument, WrongKind
from server.exchange.meta import edxml_document_id, summarize
from server.exchange.results import AcceptedStatus, Receipt
from server.runtime import audit
from server.runtime.logs import annotate
from server.runtime.spool import SpooledPackage, received_package
from server.runtime.staging import StagedPackage
from storage.errors import Conflict
from storage.ids import new_id, utcnow
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.routes import StatusReceiptRepo
from storage.repos.statuses import Status, StatusRepo

log = logging.getLogger("lienthong.exchange")

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


class StatusIntake(ExchangeCore):
    """Accepting status messages about documents sent or received here."""

    # -- statuses ----------------------------------------------------------------------------

    async def accept_status(self, caller: str, package: SpooledPackage) -> Receipt:
        """Accept a status message from ``caller`` and route it to the other party.

        Recipients of a document may report 01-06, 15 and 16 (routed to its sender); only its
        sender may send 13 (routed to every recipient).
        """
        async with received_package(package):
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
            staged = await self._store(package)
            now = utcnow()
            try:
                return await self._insert_status(
                    caller, obj, doc, targets, staged, meta, now, dedup_key, via
                )
            except Conflict:
                await self.database.committed()  # the first one may be in the same group commit
                again = await self._status_again(caller, dedup_key)
                if again is None:
                    raise
                return again

    def _announce_status(self, accepted: AcceptedStatus) -> None:
        """Call every status hook; run what each returns in the background."""
        self._call_hooks(self.on_status, accepted, accepted.package.id, "status")

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
        staged: StagedPackage,
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
            await staged.save(tx)
            status_doc = Document(
                id=new_id(),
                sender=caller,
                document_id=rf.document_id,
                kind="status",
                sha256=staged.ref.sha256,
                size=staged.ref.size,
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
            for delivery in await DeliveryRepo(tx).insert_many(status_doc.id, targets, "status"):
                await self._route(tx, delivery)
            await StatusReceiptRepo(tx).record(caller, dedup_key, status_doc.id)
            if via is not None:
                await self._register_sender(tx, obj.from_)
            await audit.record_status(tx, status_doc, targets, code.value)
        self._wake()
        self._announce_status(AcceptedStatus(status_doc, doc, obj, list(targets)))
        if not annotate(id=status_doc.id, code=code.value):  # else the access line has them
            log.info("status accepted", extra={"id": status_doc.id, "code": code.value})
        return Receipt(status_doc, list(targets), created=True)
