"""Intent records of package objects (migration 0006): what the orphan sweep may delete.

A send stores its package object *before* the transaction that inserts the document row, so a
send that dies in between leaves an object nothing names. Instead of guessing which stored
objects are such leftovers (other features keep objects no document names: signed PDFs,
attachment versions, verification reports), the exchange writes an intent record first:

1. :meth:`PendingObjectRepo.record` in its own committed transaction;
2. the object is stored;
3. the transaction inserting the document row removes the record (:meth:`settle`, called by
   ``DocumentRepo.insert``).

A record older than the grace period is a send that never finished. The sweep deletes its
object only if no document names the digest (a retry of the same bytes may have committed),
then the record. An object without a record is never a candidate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.ids import from_db_time, to_db_time


@dataclass(frozen=True)
class PendingObject:
    """An object a send meant to store, and when it said so (the latest time, on repeats)."""

    sha256: str
    created_at: datetime


class PendingObjectRepo:
    """Intent records of package objects, through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def record(self, sha256: str, now: datetime) -> None:
        """Note that an object with this digest is about to be stored. A record that exists
        is renewed to ``now``: the grace period counts from the newest send of these bytes."""
        await self.tx.execute(
            "INSERT INTO pending_objects (sha256, created_at) VALUES (?, ?)"
            " ON CONFLICT (sha256) DO UPDATE SET created_at = excluded.created_at",
            (sha256, to_db_time(now)),
        )

    async def settle(self, sha256: str) -> None:
        """Drop the record (a document row now names the object; there may be no record)."""
        await self.tx.execute("DELETE FROM pending_objects WHERE sha256 = ?", (sha256,))

    async def get(self, sha256: str) -> PendingObject | None:
        """The record of this digest, or None."""
        row = await self.tx.fetchone(
            "SELECT sha256, created_at FROM pending_objects WHERE sha256 = ?", (sha256,)
        )
        return None if row is None else PendingObject(row[0], from_db_time(row[1]))

    async def older_than(self, moment: datetime, limit: int = 1000) -> list[PendingObject]:
        """Records last renewed before ``moment``, oldest first (at most ``limit``)."""
        rows = await self.tx.fetchall(
            "SELECT sha256, created_at FROM pending_objects WHERE created_at < ?"
            " ORDER BY created_at LIMIT ?",
            (to_db_time(moment), limit),
        )
        return [PendingObject(r[0], from_db_time(r[1])) for r in rows]

    async def unreferenced(self, digests: Iterable[str]) -> set[str]:
        """Which of these digests no document row, no dossier file and no feedback photo
        names."""
        wanted = sorted(set(digests))
        named: set[str] = set()
        for start in range(0, len(wanted), 400):
            part = wanted[start : start + 400]
            marks = ", ".join("?" for _ in part)
            rows = await self.tx.fetchall(
                f"SELECT sha256 FROM documents WHERE sha256 IN ({marks})"  # noqa: S608
                f" UNION SELECT sha256 FROM dossier_files WHERE sha256 IN ({marks})"
                f" UNION SELECT sha256 FROM feedback_photos WHERE sha256 IN ({marks})",
                part + part + part,
            )
            named.update(r[0] for r in rows)
        return set(wanted) - named

    async def forget(self, sha256: str, created_at: datetime) -> bool:
        """Drop the record if it was not renewed since ``created_at``; True if dropped (a send
        of the same bytes that renewed it is in flight, and its object must stay)."""
        return (
            await self.tx.execute(
                "DELETE FROM pending_objects WHERE sha256 = ? AND created_at = ?",
                (sha256, to_db_time(created_at)),
            )
            > 0
        )
