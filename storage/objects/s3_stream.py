"""A package sent to S3 while its body is still arriving (issue 21).

The S3 store names an object by the SHA-256 of its bytes, known only once the last byte has
arrived; until this module, the axis received the whole body to its spool file, parsed it, and
only then uploaded it: a 1 GB package took the receipt *plus* the upload. Here the upload runs
beside the receipt:

1. While the body is written to the spool file, every whole part of it (``part_size``) is
   uploaded from that file as soon as it is on disk, into a multipart upload under a temporary
   key ``<prefix>incoming/<random>``, at most ``parallel_parts`` parts at once (read from the
   file by the uploading thread: the memory used is those parts, whatever the body's size; the
   body waits for a free slot, so a slow store slows the sender rather than filling RAM).
   Nothing happens before a whole part is written: a small package is uploaded as before.
2. When the package is accepted (parsed, validated, not a resend), :meth:`finish` uploads the
   last part, completes the upload, and gives the object its name by one server-side copy to
   ``<prefix>ab/cd/<sha256>`` (RGW copies an object of the same bucket by reference to its
   RADOS tail, not byte by byte: bench/s3_bench.py measures it), then locks and records that
   version exactly like any other upload (storage/objects/s3.py) and deletes the temporary
   version (never locked).
3. Refused (bad XML, a cut body, a duplicate, S3 failing): :meth:`abort` aborts the multipart
   upload (S3 drops its parts) or deletes the temporary object; nothing is left.
4. A process that dies in the middle leaves an unfinished multipart upload or a temporary
   object under ``incoming/``: the start-up sweep (``S3ObjectStore.sweep_incoming``, called by
   the orphan sweep) removes those older than ``orphan_grace``.

Why a copy and not a pointer row (the temporary key kept for good, a table mapping the SHA-256
to it): the key stays the content address, so the bucket alone says what each object is
(``storage migrate``, an operator, a restore read it without the database), and every reader,
adoption, alarm and retention path of s3.py stays as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.datatypes import Part
from minio.error import S3Error

from storage.errors import StorageError, StorageUnavailable
from storage.objects.base import ObjectRef, StreamingUpload

log = logging.getLogger("lienthong.storage")
T = TypeVar("T")


class _Settings(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def part_size(self) -> int: ...
    @property
    def parallel_parts(self) -> int: ...


class UploadTarget(Protocol):
    """What an upload needs of its store (``S3ObjectStore``, which imports this module)."""

    @property
    def settings(self) -> _Settings: ...
    @property
    def client(self) -> Minio: ...

    @property
    def part_pool(self) -> Executor: ...
    @property
    def incoming_prefix(self) -> str: ...

    async def call_s3(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...
    async def ensure_bucket(self) -> None: ...
    async def put_file(self, path: Path, *, sha256: str | None = None) -> ObjectRef: ...
    async def recorded(self, sha256: str) -> ObjectRef | None: ...
    def object_key(self, sha256: str) -> str: ...
    async def settle_upload(
        self, key: str, version_id: str | None, sha256: str, size: int
    ) -> ObjectRef: ...


class S3StreamingUpload(StreamingUpload):
    """One spool file sent to S3 part by part as it grows (see the module docstring)."""

    def __init__(self, store: UploadTarget) -> None:
        self.store = store
        self.key = f"{store.incoming_prefix}{uuid.uuid4().hex}"
        self.upload_id: str | None = None
        self.sent = 0  # bytes of the file handed to part uploads
        self._etags: dict[int, str] = {}
        self._in_flight: deque[tuple[int, asyncio.Future[str]]] = deque()
        self._temp_version: str | None = None  # once the upload is completed
        self._closed = False  # no more parts: finishing, finished or aborted
        self._finished = False

    # -- while the body arrives --------------------------------------------------------------

    async def written(self, path: Path, size: int, *, last: bool = False) -> None:
        """Upload every whole part of the first ``size`` bytes not sent yet; when ``last``,
        the tail too (if the upload began: a file smaller than a part waits for finish)."""
        part_size = self.store.settings.part_size
        while size - self.sent >= part_size:
            await self._send(path, self.sent, part_size)
        if last and self.upload_id is not None and size > self.sent:
            await self._send(path, self.sent, size - self.sent)

    async def _send(self, path: Path, start: int, length: int) -> None:
        if self._closed:
            raise StorageError("this upload is over")
        if self.upload_id is None:
            await self.store.ensure_bucket()
            self.upload_id = await self.store.call_s3(
                self.store.client._create_multipart_upload,
                self.store.settings.bucket,
                self.key,
                {"Content-Type": "application/octet-stream"},
            )
        while len(self._in_flight) >= self.store.settings.parallel_parts:
            await self._collect_oldest()
        number = len(self._etags) + len(self._in_flight) + 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self.store.part_pool, self._upload_part, path, number, start, length
        )
        self._in_flight.append((number, future))
        self.sent = start + length

    def _upload_part(self, path: Path, number: int, start: int, length: int) -> str:
        """Blocking (a part thread): read one part from the spool file and upload it."""
        with open(path, "rb") as src:
            src.seek(start)
            data = src.read(length)
        if len(data) != length:
            raise StorageError(f"spool file {path.name} is shorter than expected")
        assert self.upload_id is not None
        bucket = self.store.settings.bucket
        etag: str = self.store.client._upload_part(
            bucket, self.key, data, None, self.upload_id, number
        )
        return etag

    async def _collect_oldest(self) -> None:
        number, future = self._in_flight.popleft()
        try:
            self._etags[number] = await future
        except S3Error as exc:
            raise StorageError(f"S3 refused a part of an upload: {exc.code}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(
                f"the S3 store at {self.store.settings.endpoint} cannot be reached: {exc}"
            ) from exc

    # -- the end -----------------------------------------------------------------------------

    async def finish(self, path: Path, sha256: str) -> ObjectRef:
        """Send the rest, complete, copy to the content address, lock and record (see the
        module docstring); a file never streamed (smaller than a part) is uploaded whole."""
        if self.upload_id is None:
            self._closed = self._finished = True
            return await self.store.put_file(path, sha256=sha256)
        try:
            existing = await self.store.recorded(sha256)
            if existing is not None:  # these bytes are stored already: nothing new to keep
                await self.abort()
                return existing
            size = (await asyncio.to_thread(path.stat)).st_size
            part_size = self.store.settings.part_size
            while self.sent < size:
                await self._send(path, self.sent, min(part_size, size - self.sent))
            while self._in_flight:
                await self._collect_oldest()
            self._closed = True
            parts = [Part(n, self._etags[n]) for n in sorted(self._etags)]
            try:
                result = await self.store.call_s3(
                    self.store.client._complete_multipart_upload,
                    self.store.settings.bucket,
                    self.key,
                    self.upload_id,
                    parts,
                )
            except S3Error as exc:
                raise StorageError(f"S3 refused to complete an upload: {exc.code}") from exc
            self._temp_version = result.version_id or "null"
            version_id = await self._name(sha256)
            key = self.store.object_key(sha256)
            ref = await self.store.settle_upload(key, version_id, sha256, size)
        except BaseException:
            await self.abort()
            raise
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        self._finished = True
        await self._drop_temporary()
        return ref

    async def _name(self, sha256: str) -> str | None:
        """Copy the completed temporary object to its content address; the new version id."""
        bucket = self.store.settings.bucket
        source = CopySource(bucket, self.key, version_id=self._temp_version)
        metadata: dict[str, Any] = {
            "Content-Type": "application/octet-stream",
            "x-amz-meta-sha256": sha256,
        }
        try:
            result = await self.store.call_s3(
                self.store.client.copy_object,
                bucket,
                self.store.object_key(sha256),
                source,
                metadata=metadata,
                metadata_directive=REPLACE,
            )
        except S3Error as exc:
            raise StorageError(f"S3 refused to copy {sha256} to its name: {exc.code}") from exc
        if result.version_id:
            return str(result.version_id)
        return await self._copied_version(sha256, result.etag)

    async def _copied_version(self, sha256: str, etag: str | None) -> str | None:
        """The version the copy made, when S3 did not say (Ceph RGW answers a copy without
        ``x-amz-version-id``): of the key's versions, the newest with the copy's ETag (our
        upload's multipart ETag, the MD5 of its parts' MD5s: not something another writer of
        the key can match without these very bytes). A bare HEAD would do, but could name a
        version someone else put on top in the meantime."""
        if not etag:
            raise StorageError(f"S3 gave no ETag for the copy of {sha256}")
        bucket, key = self.store.settings.bucket, self.store.object_key(sha256)
        wanted = etag.strip('"')

        def versions() -> list[Any]:
            found = self.store.client.list_objects(bucket, prefix=key, include_version=True)
            return [
                o
                for o in found
                if o.object_name == key
                and not o.is_delete_marker
                and (o.etag or "").strip('"') == wanted
            ]

        try:
            mine = await self.store.call_s3(versions)
        except S3Error as exc:
            raise StorageError(f"S3 listing of {sha256} failed: {exc.code}") from exc
        if not mine:
            raise StorageError(f"the copy of {sha256} is not among its key's versions")
        newest = max(mine, key=lambda o: o.last_modified or datetime.min.replace(tzinfo=UTC))
        return str(newest.version_id)

    async def abort(self) -> None:
        """Drop the parts (or the temporary object); never raises."""
        if self._finished:
            return
        self._closed = True
        while self._in_flight:  # a part thread may still be reading the file or sending
            _, future = self._in_flight.popleft()
            with contextlib.suppress(BaseException):
                await future
        if self._temp_version is not None:
            await self._drop_temporary()
            return
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        try:
            await self.store.call_s3(
                self.store.client._abort_multipart_upload,
                self.store.settings.bucket,
                self.key,
                upload_id,
            )
        except Exception:  # the sweep aborts it after orphan_grace
            log.warning("could not abort an S3 upload", extra={"key": self.key}, exc_info=True)

    async def _drop_temporary(self) -> None:
        version, self._temp_version = self._temp_version, None
        if version is None:
            return
        try:
            await self.store.call_s3(
                self.store.client.remove_object,
                self.store.settings.bucket,
                self.key,
                version_id=None if version == "null" else version,
            )
        except Exception:  # the sweep removes it after orphan_grace
            log.warning(
                "could not delete a temporary S3 object", extra={"key": self.key}, exc_info=True
            )
