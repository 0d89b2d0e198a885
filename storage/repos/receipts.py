"""Signed receipts (biên nhận) of accepted documents: one CMS object per document."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, to_db_time, utcnow


@dataclass(frozen=True)
class StoredReceipt:
    """The DER of a receipt (a CMS ContentInfo) and when the axis issued it."""

    document_id: str
    cms_der: bytes
    issued_at: datetime


class ReceiptRepo:
    """Reads and writes the receipts table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def get(self, document_id: str) -> StoredReceipt | None:
        """The receipt of ``document_id`` (our id), or None if none was issued yet."""
        row = await self.tx.fetchone(
            "SELECT document_id, cms, issued_at FROM receipts WHERE document_id = ? LIMIT 1",
            (document_id,),
        )
        if row is None:
            return None
        return StoredReceipt(str(row[0]), base64.b64decode(row[1]), from_db_time(str(row[2])))

    async def put(self, document_id: str, cms_der: bytes) -> StoredReceipt:
        """Store the receipt of a document; if one is stored already, keep and return that one
        (two requests racing to issue it must answer the same receipt)."""
        issued = utcnow()
        try:
            async with self.tx.attempt():  # the transaction goes on after a Conflict
                await self.tx.execute(
                    "INSERT INTO receipts (document_id, cms, issued_at) VALUES (?, ?, ?)",
                    (document_id, base64.b64encode(cms_der).decode("ascii"), to_db_time(issued)),
                )
        except Conflict:
            existing = await self.get(document_id)
            if existing is None:  # pragma: no cover - a conflict means the row exists
                raise
            return existing
        return StoredReceipt(document_id, cms_der, issued)
