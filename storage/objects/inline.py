"""Small objects kept in the metadata database, larger ones in the store behind (issue 21).

Why: on the filesystem a stored object costs an fsync of its file, a rename and an fsync of its
directory, on top of the database's COMMIT; a small package is mostly those fsyncs. Kept in the
database (table ``inline_objects``, migration 0044) and written in the same transaction as the
row that names it (:meth:`InlineObjectStore.put_in`), it is made durable by the COMMIT that the
group commit shares among every transaction of the batch (storage/db.py): one WAL fsync for many
packages, and no intent record (the object and its row commit together or not at all).

Everything else goes to the store behind (``backing``: the filesystem store, or S3 with its
filesystem fallback), and the interface hides where the bytes live: ``stat``, ``open`` (ranges
included), ``require``, ``exists`` look in the database first (a primary-key lookup), then
behind. ``local_path`` is None for an object kept here: callers that need a file (attachments,
signing, verification) copy it through ``open`` (storage/objects/local.py), as they do on S3.

``put`` and ``put_file`` go behind, whatever the size: they are durable on return without a
transaction of their own, so a caller may use them inside one (a nested transaction would wait
for itself on the write lock), and what other features store (dossier files, signed PDFs,
reports) stays where it was.

Whole reads are checked against the SHA-256 (IntegrityError on a mismatch); ranges are served
from the row as stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path

from storage.db import Database, Tx
from storage.errors import IntegrityError
from storage.ids import utcnow
from storage.objects.base import (
    CHUNK_SIZE,
    ObjectRef,
    ObjectStore,
    StreamingUpload,
    is_sha256,
)
from storage.repos.inline_objects import InlineObjectRepo


class InlineObjectStore(ObjectStore):
    """Objects up to ``max_bytes`` in ``database``; the others in ``backing``."""

    def __init__(self, backing: ObjectStore, database: Database, max_bytes: int) -> None:
        self.backing = backing
        self.database = database
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"InlineObjectStore({self.backing!r}, max_bytes={self.max_bytes})"

    @property
    def inline_max_bytes(self) -> int:
        """Objects up to this size are kept in the database."""
        return self.max_bytes

    # -- writing -----------------------------------------------------------------------------

    async def put_in(self, tx: Tx, data: bytes, *, sha256: str) -> ObjectRef:
        """Keep ``data`` in the database within ``tx`` (see ObjectStore.put_in)."""
        if len(data) > self.max_bytes:
            raise ValueError(f"{len(data)} bytes is more than inline_max_bytes {self.max_bytes}")
        if not is_sha256(sha256):
            raise ValueError(f"not a lowercase SHA-256 hex digest: {sha256!r}")
        await InlineObjectRepo(tx).put(sha256, data, utcnow())
        return ObjectRef(sha256, len(data))

    async def put(self, chunks: AsyncIterable[bytes]) -> ObjectRef:
        """Store the streamed bytes behind (see the module docstring: only :meth:`put_in`
        keeps objects in the database)."""
        return await self.backing.put(chunks)

    async def put_file(self, path: Path, *, sha256: str | None = None) -> ObjectRef:
        """Move a spool file into the store behind (see ObjectStore.put_file)."""
        return await self.backing.put_file(path, sha256=sha256)

    # -- reading -----------------------------------------------------------------------------

    async def _size(self, sha256: str) -> int | None:
        if not is_sha256(sha256):
            return None
        async with self.database.reader() as tx:
            return await InlineObjectRepo(tx).size(sha256)

    async def stat(self, sha256: str) -> ObjectRef | None:
        """The ref from the database, else from the store behind, else None."""
        size = await self._size(sha256)
        return ObjectRef(sha256, size) if size is not None else await self.backing.stat(sha256)

    async def exists(self, sha256: str) -> bool:
        """True if the object is kept in the database or behind."""
        return await self.stat(sha256) is not None

    def local_path(self, sha256: str) -> Path | None:
        """The file behind, if the store behind keeps one (None for an object kept here)."""
        return self.backing.local_path(sha256)

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) from where the object is (the database first)."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range: start={start}, end={end}")
        return self._read(sha256, start, end)

    async def _read(self, sha256: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        data = None
        if is_sha256(sha256):
            async with self.database.reader() as tx:
                data = await InlineObjectRepo(tx).read(sha256, start, end)
        if data is None:
            async for chunk in self.backing.open(sha256, start, end):
                yield chunk
            return
        if start == 0 and end is None and hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"object {sha256} in the database holds other bytes")
        for at in range(0, len(data), CHUNK_SIZE):
            yield data[at : at + CHUNK_SIZE]

    async def ping(self) -> None:
        """The store behind must be usable (the database has its own check)."""
        await self.backing.ping()

    def streaming_upload(self) -> StreamingUpload | None:
        """The store behind's (S3: a large package uploads while it arrives)."""
        return self.backing.streaming_upload()

    async def sweep_incoming(self, before: datetime) -> int:
        """The store behind's unfinished uploads."""
        return await self.backing.sweep_incoming(before)

    # -- the orphan sweep --------------------------------------------------------------------

    @property
    def sweepable(self) -> bool:
        """Rows here can always be swept (objects behind only if the store behind allows)."""
        return True

    async def delete_orphan(self, tx: Tx, sha256: str) -> bool:
        """Delete the object's row, and its copy behind when that store is sweepable."""
        deleted = await InlineObjectRepo(tx).delete(sha256)
        if self.backing.sweepable:
            deleted = await self.backing.delete_orphan(tx, sha256) or deleted
        return deleted


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for chunk in rest:
        yield chunk
