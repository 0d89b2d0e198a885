"""The object store interface: immutable blobs addressed by the SHA-256 of their bytes."""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from storage.db import Tx
from storage.errors import ObjectMissing, StorageError

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
CHUNK_SIZE = 1024 * 1024  # 1 MiB: large enough to amortise a thread hop, small enough for RAM


@dataclass(frozen=True)
class ObjectRef:
    """A stored object: the lowercase hex SHA-256 of its bytes, its size in bytes, and the
    version of its key that holds those bytes (S3: the version the axis wrote and reads; None
    on the filesystem store, which has no versions)."""

    sha256: str
    size: int
    version_id: str | None = None


def is_sha256(value: str) -> bool:
    """True if `value` is a lowercase 64-hex-digit SHA-256 (the only form object names take)."""
    return SHA256_HEX.fullmatch(value) is not None


class ObjectStore(abc.ABC):
    """Where package bytes live. Objects never change once stored; storing the same bytes
    again stores nothing new and returns the same ObjectRef."""

    @abc.abstractmethod
    async def put(self, chunks: AsyncIterable[bytes]) -> ObjectRef:
        """Store the bytes the iterator yields; durable when this returns.

        Raises StorageFull (nothing partial left behind) when the disk is full.
        """

    @abc.abstractmethod
    async def put_file(self, path: Path, *, sha256: str | None = None) -> ObjectRef:
        """Move a finished spool file into the store (hashing it unless `sha256` is given).

        The file at `path` is consumed: moved in, or deleted when the object already exists.
        `sha256` is trusted when given: pass only a digest computed over exactly these bytes.
        """

    @abc.abstractmethod
    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Return an async iterator over bytes [start, end) of the object (end exclusive,
        None = to the end; an end past the size is clipped). Raises NotFound at once if the
        object is absent and ValueError for a negative start or end < start."""

    @abc.abstractmethod
    async def stat(self, sha256: str) -> ObjectRef | None:
        """Return the object's ref, or None if it is not stored."""

    async def require(self, sha256: str) -> ObjectRef:
        """The object's ref, or ObjectMissing when a row names an object the store does not
        serve: call it before promising a 200, so that a missing object is a clean error
        answer and never a status line followed by a cut body."""
        ref = await self.stat(sha256)
        if ref is None:
            raise ObjectMissing(f"object {sha256} is missing from the object store")
        return ref

    @abc.abstractmethod
    async def exists(self, sha256: str) -> bool:
        """True if the object is stored."""

    @abc.abstractmethod
    def local_path(self, sha256: str) -> Path | None:
        """The object's file on the local filesystem (for sendfile), or None when the backend
        keeps objects elsewhere (S3) or the object is absent."""

    async def ping(self) -> None:  # noqa: B027 (optional hook with a working default)
        """Raise StorageError unless the store is usable (for /healthz). Default: no check."""

    # -- objects written with their row (storage/objects/inline.py) --------------------------

    @property
    def inline_max_bytes(self) -> int:
        """Objects up to this size may be written with :meth:`put_in`, in the transaction of
        the row that names them (0: none; the store keeps every object elsewhere)."""
        return 0

    async def put_in(self, tx: Tx, data: bytes, *, sha256: str) -> ObjectRef:
        """Write ``data`` (at most :attr:`inline_max_bytes`, hashing to ``sha256``: trusted,
        pass only a digest computed over exactly these bytes) in the write transaction ``tx``:
        durable when ``tx`` commits, gone if it rolls back. Only stores with a non-zero
        :attr:`inline_max_bytes` do."""
        raise StorageError(f"{type(self).__name__} keeps no object in the database")

    # -- the orphan sweep (server/exchange/delivery.py) --------------------------------------

    @property
    def sweepable(self) -> bool:
        """Whether the orphan sweep may delete objects here (not under S3 Object Lock)."""
        return False

    async def delete_orphan(self, tx: Tx, sha256: str) -> bool:
        """Delete an object no row names, inside the sweep's write transaction ``tx``; True if
        it existed. Only sweepable stores do."""
        raise StorageError(f"{type(self).__name__} deletes no object")

    def streaming_upload(self) -> StreamingUpload | None:
        """An upload that sends a spool file to the store while it is still being written
        (S3), or None when the store takes finished files only (the default: the filesystem
        store's ``put_file`` is a rename)."""
        return None

    async def sweep_incoming(self, before: datetime) -> int:
        """Remove what streaming uploads begun before ``before`` left behind (a process that
        died mid-upload); return how many were removed. Default: nothing to sweep."""
        return 0


class StreamingUpload(abc.ABC):
    """A spool file sent to the store while it grows, before its SHA-256 (its name) is known.

    The writer calls :meth:`written` each time more bytes of the file are on disk;
    :meth:`finish` stores the finished file under its name (the bytes already sent are not sent
    again), :meth:`abort` leaves nothing behind. Exactly one of the two ends every upload;
    :meth:`abort` after :meth:`finish` (or twice) does nothing.
    """

    @abc.abstractmethod
    async def written(self, path: Path, size: int, *, last: bool = False) -> None:
        """The first ``size`` bytes of ``path`` are written (and flushed): send what fills
        whole parts, and the rest too when ``last`` (the file is complete: its tail uploads
        while the package is checked). Waits while too much is in flight (memory stays
        bounded)."""

    @abc.abstractmethod
    async def finish(self, path: Path, sha256: str) -> ObjectRef:
        """Store the finished file (``sha256`` trusted, as in ``put_file``); consumes it."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Drop whatever was sent (never raises; a failure is logged and left to the sweep)."""


class VersionBook(abc.ABC):
    """Where a versioned store (S3) records the versions it wrote, to read those and no other:
    the metadata database in the axis (storage/objects/versions.py, migration 0010)."""

    @abc.abstractmethod
    async def versions(self, sha256: str) -> list[ObjectRef]:
        """The versions recorded for ``sha256``, the one to read first (empty: none)."""

    @abc.abstractmethod
    async def record(self, ref: ObjectRef) -> None:
        """Record ``ref.version_id`` as holding exactly the bytes ``ref.sha256`` names."""


class MemoryVersionBook(VersionBook):
    """A book kept in memory for the life of the process: for a store used without the
    database (tests, one-off tools). The axis itself records in the database."""

    def __init__(self) -> None:
        self._refs: dict[str, list[ObjectRef]] = {}

    async def versions(self, sha256: str) -> list[ObjectRef]:
        """The versions recorded in this process."""
        return list(self._refs.get(sha256, ()))

    async def record(self, ref: ObjectRef) -> None:
        """Remember ``ref`` (once)."""
        known = self._refs.setdefault(ref.sha256, [])
        if all(r.version_id != ref.version_id for r in known):
            known.append(ref)
