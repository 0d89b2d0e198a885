"""What the parties of a document read: its summary and links, its status history, the
caller's sent documents and inbox, and acknowledging a delivery.

Who may see a package at all (:meth:`~server.exchange.core.ExchangeCore.visible`) is on the
shared core, since attachments use it too.
"""

from __future__ import annotations

from typing import Any

from server.exchange.core import ExchangeCore
from server.exchange.errors import DocumentNotFound
from server.exchange.meta import _iso, document_meta, edxml_document_id
from server.exchange.results import SentEntry
from server.runtime import audit
from storage.repos.deliveries import Delivery, DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.statuses import Status, StatusRepo


class Reading(ExchangeCore):
    """What the sender and recipients of a package may read, and acknowledging."""

    # -- reading -----------------------------------------------------------------------------

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


def _link(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "edxml_document_id": edxml_document_id(doc),
        "business_type": doc.business_type,
        "sender": doc.sender,
        "received_at": doc.received_at.isoformat(),
    }
