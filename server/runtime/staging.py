"""Storing received files in the object store so that an intake dying half-way leaves nothing.

Intent records first (committed), then the objects (:func:`store_objects`); the transaction that
names the objects settles the records (:func:`settle_objects`). An intake that dies before its
transaction leaves objects the orphan sweep removes (docs/storage.md). Used by the dossiers'
intake and moves and by citizen feedback's photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from storage.db import Database, Tx
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.pending_objects import PendingObjectRepo


class Staged(Protocol):
    """A file on disk, hashed, not yet in the object store."""

    @property
    def path(self) -> Path: ...

    @property
    def sha256(self) -> str: ...


async def store_objects(database: Database, objects: ObjectStore, files: Sequence[Staged]) -> None:
    """Intent records first (committed), then the objects: an intake that dies before its
    transaction leaves objects the orphan sweep removes."""
    if not files:
        return
    now = utcnow()
    async with database.transaction() as tx:
        pending = PendingObjectRepo(tx)
        for staged in files:
            await pending.record(staged.sha256, now)
    for staged in files:
        await objects.put_file(staged.path, sha256=staged.sha256)


async def settle_objects(tx: Tx, files: Sequence[Staged]) -> None:
    """In the transaction naming the objects: their intent records are done."""
    pending = PendingObjectRepo(tx)
    for staged in files:
        await pending.settle(staged.sha256)
