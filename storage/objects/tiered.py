"""An object store in front of an older one: new writes go to the new store, reads fall back.

Used while (and after) objects move from the filesystem store to S3 (``lienthong storage
migrate --to s3``): once the server runs on S3, an object not yet copied is still served from
the filesystem, so switching the backend never makes a document unreachable. Nothing is ever
written to the fallback.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path

from storage.errors import ObjectMissing
from storage.objects.base import ObjectRef, ObjectStore, StreamingUpload


class FallbackObjectStore(ObjectStore):
    """``primary`` for everything; ``fallback`` only to read objects the primary lacks."""

    def __init__(self, primary: ObjectStore, fallback: ObjectStore) -> None:
        self.primary = primary
        self.fallback = fallback

    def __repr__(self) -> str:
        return f"FallbackObjectStore({self.primary!r}, fallback={self.fallback!r})"

    async def put(self, chunks: AsyncIterable[bytes]) -> ObjectRef:
        """Store in the primary (see ObjectStore.put)."""
        return await self.primary.put(chunks)

    async def put_file(self, path: Path, *, sha256: str | None = None) -> ObjectRef:
        """Store a spool file in the primary (see ObjectStore.put_file)."""
        return await self.primary.put_file(path, sha256=sha256)

    def streaming_upload(self) -> StreamingUpload | None:
        """The primary's (see ObjectStore.streaming_upload)."""
        return self.primary.streaming_upload()

    async def sweep_incoming(self, before: datetime) -> int:
        """The primary's leftovers (nothing is ever written to the fallback)."""
        return await self.primary.sweep_incoming(before)

    async def stat(self, sha256: str) -> ObjectRef | None:
        """The ref from the primary, else from the fallback, else None."""
        ref = await self.primary.stat(sha256)
        return ref if ref is not None else await self.fallback.stat(sha256)

    async def exists(self, sha256: str) -> bool:
        """True if either store holds the object."""
        return await self.stat(sha256) is not None

    def local_path(self, sha256: str) -> Path | None:
        """A local file for the object, if one store keeps it locally."""
        return self.primary.local_path(sha256) or self.fallback.local_path(sha256)

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream from the store that holds the object (the primary first)."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range: start={start}, end={end}")
        return self._read(sha256, start, end)

    async def _read(self, sha256: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        if await self.primary.stat(sha256) is not None:
            source = self.primary
        elif await self.fallback.stat(sha256) is not None:
            source = self.fallback
        else:
            raise ObjectMissing(f"object {sha256} is not stored")
        async for chunk in source.open(sha256, start, end):
            yield chunk

    async def ping(self) -> None:
        """The primary must be usable (the fallback only serves old reads)."""
        await self.primary.ping()
