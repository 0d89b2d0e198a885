"""Client certificates bound to agencies (migration 0025): a TLS client certificate
authenticates the agency its SHA-256 fingerprint is bound to; some agencies (another axis's
account) must always come with one."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, to_db_time, utcnow


@dataclass(frozen=True)
class BoundCertificate:
    """One binding: the certificate's fingerprint, its agency, and what it says."""

    fingerprint: str
    organ_id: str
    subject: str
    not_after: datetime
    label: str | None
    created_at: datetime


_COLUMNS = "fingerprint, organ_id, subject, not_after, label, created_at"


def _bound(row: sqlite3.Row) -> BoundCertificate:
    return BoundCertificate(
        fingerprint=row["fingerprint"],
        organ_id=row["organ_id"],
        subject=row["subject"],
        not_after=from_db_time(row["not_after"]),
        label=row["label"],
        created_at=from_db_time(row["created_at"]),
    )


class CertificateRepo:
    """Reads and writes the certificate bindings through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def bind(
        self,
        fingerprint: str,
        organ_id: str,
        subject: str,
        not_after: datetime,
        label: str | None = None,
    ) -> BoundCertificate:
        """Bind a certificate to ``organ_id``. Conflict when it is bound already (to any
        agency: one certificate speaks for one agency); MissingReference if the agency is
        unknown."""
        now = utcnow()
        try:
            async with self.tx.attempt():  # the owner is read after a Conflict
                await self.tx.execute(
                    f"INSERT INTO agency_certificates ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (fingerprint, organ_id, subject, to_db_time(not_after), label, to_db_time(now)),
                )
        except Conflict:
            bound = await self.find(fingerprint)
            owner = bound.organ_id if bound is not None else "an agency"
            raise Conflict(f"this certificate is already bound to {owner}") from None
        return BoundCertificate(fingerprint, organ_id, subject, not_after, label, now)

    async def find(self, fingerprint: str) -> BoundCertificate | None:
        """The binding of a certificate by its fingerprint, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM agency_certificates WHERE fingerprint = ?",  # noqa: S608
            (fingerprint,),
        )
        return None if row is None else _bound(row)

    async def list(self, organ_id: str) -> list[BoundCertificate]:
        """The certificates bound to ``organ_id``, oldest first."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM agency_certificates WHERE organ_id = ?"  # noqa: S608
            " ORDER BY created_at, fingerprint",
            (organ_id,),
        )
        return [_bound(r) for r in rows]

    async def unbind(self, organ_id: str, fingerprint: str) -> bool:
        """Remove one of ``organ_id``'s bindings; True if there was one."""
        changed = await self.tx.execute(
            "DELETE FROM agency_certificates WHERE organ_id = ? AND fingerprint = ?",
            (organ_id, fingerprint),
        )
        return changed > 0

    async def set_required(self, organ_id: str, required: bool) -> None:
        """Whether ``organ_id``'s requests must come with one of its certificates."""
        if required:
            await self.tx.execute(
                "INSERT INTO agency_certificate_required (organ_id, created_at) VALUES (?, ?)"
                " ON CONFLICT (organ_id) DO NOTHING",
                (organ_id, to_db_time(utcnow())),
            )
        else:
            await self.tx.execute(
                "DELETE FROM agency_certificate_required WHERE organ_id = ?", (organ_id,)
            )

    async def required(self, organ_id: str) -> bool:
        """True when ``organ_id`` may only call with one of its bound certificates."""
        row = await self.tx.fetchone(
            "SELECT 1 FROM agency_certificate_required WHERE organ_id = ?", (organ_id,)
        )
        return row is not None
