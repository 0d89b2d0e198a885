"""Storing received files in the object store so that an intake dying half-way leaves nothing.

Intent records first (committed), then the objects (:func:`store_objects`); the transaction that
names the objects settles the records (:func:`settle_objects`). An intake that dies before its
transaction leaves objects the orphan sweep removes (docs/storage.md). Used by the dossiers'
intake and moves and by citizen feedback's photos.

A package small enough for the database (``[storage] inline_max_bytes``) skips all that:
:func:`stage_package` only reads its bytes, and :meth:`StagedPackage.save` writes them in the
transaction that inserts the package's row, so one group-committed COMMIT makes both durable
and a send dying before it leaves nothing to sweep (storage/objects/inline.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from storage.db import Database, Tx
from storage.errors import NotFound
from storage.ids import utcnow
from storage.objects.base import ObjectRef, ObjectStore
from storage.repos.pending_objects import PendingObjectRepo

_READ_INLINE_BYTES = 64 * 1024


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


@dataclass(frozen=True)
class StagedPackage:
    """A package on its way into the object store: ``ref`` names it; ``data`` is None when
    the object store holds it already, else the bytes :meth:`save` writes with the row."""

    objects: ObjectStore
    ref: ObjectRef
    data: bytes | None

    async def save(self, tx: Tx) -> None:
        """In the transaction that inserts the package's row: write the bytes kept with it."""
        if self.data is not None:
            await self.objects.put_in(tx, self.data, sha256=self.ref.sha256)


async def stage_package(
    database: Database,
    objects: ObjectStore,
    path: Path,
    sha256: str,
    *,
    finish: Callable[[], Awaitable[ObjectRef]] | None = None,
) -> StagedPackage:
    """Take the spooled package at ``path`` (hashing to ``sha256``) towards the object store.

    Small enough for the database: its bytes are read, nothing is written yet (the caller's
    transaction does, :meth:`StagedPackage.save`). Otherwise an intent record is committed,
    then the file is moved into the store (durable on return): if the send dies before its
    row commits, the record is what lets the start-up sweep delete the object
    (docs/delivery.md, "Orphan objects"; the row insert drops the record). ``finish``: an
    upload already begun (S3), finished instead of ``put_file``; such a package goes behind.
    """
    limit = objects.inline_max_bytes
    if limit > 0 and finish is None:
        # A small file is read on the event loop (from the page cache: microseconds, less than
        # the hop to a thread), a larger one in a thread.
        data = _read_if_within(path, min(limit, _READ_INLINE_BYTES))
        if data is None and limit > _READ_INLINE_BYTES:
            data = await asyncio.to_thread(_read_if_within, path, limit)
        if data is not None:
            return StagedPackage(objects, ObjectRef(sha256, len(data)), data)
    async with database.transaction() as tx:
        await PendingObjectRepo(tx).record(sha256, utcnow())
    ref = await (finish() if finish is not None else objects.put_file(path, sha256=sha256))
    return StagedPackage(objects, ref, None)


def _read_if_within(path: Path, limit: int) -> bytes | None:
    """Blocking: the file's bytes if it holds at most ``limit`` of them, else None."""
    try:
        with open(path, "rb") as src:
            if os.fstat(src.fileno()).st_size > limit:
                return None
            return src.read()
    except FileNotFoundError as exc:
        raise NotFound(f"spool file {path} does not exist") from exc
