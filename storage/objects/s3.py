"""The S3 backend of the object store, on the ``minio`` client.

Objects are content-addressed like the filesystem store: key ``<prefix>ab/cd/<sha256>``. The
bucket is created with Object Lock (which turns versioning on) and every object is written with
COMPLIANCE retention for ``retention_years``: the version the axis wrote can be neither
deleted nor changed before that date, and this module never tries.

Object Lock protects a *version*, not a key: anyone holding the bucket's write credentials can
still put other bytes under the key (a new latest version) or a delete marker over it. So the
store reads by version, never by key alone:

- every upload's version id is recorded in a :class:`~storage.objects.base.VersionBook` (the
  metadata database in the axis, ``object_versions``) and every read (``stat``, ``open``,
  ``retention``, ``retain``) is of the first recorded version, whatever the latest one is;
- a recorded version holds exactly the bytes its SHA-256 names (the axis uploaded them, or
  hashed the version whole): that verdict is cached for good (an S3 version's bytes never
  change), so ranges need no re-check and a whole read is known good before its first byte;
- an object written before versions were recorded (no row) is *adopted* on its first use: its
  versions are hashed whole, oldest first, and the first that matches its name is recorded; a
  key whose versions all hash to something else raises IntegrityError (from ``stat`` too, so
  callers refuse before any status line);
- whenever the latest version of a key is not one of ours (other bytes on top, a delete
  marker) the store raises an alarm: logged at ERROR and passed to ``on_alarm`` (the axis
  counts it in a metric and appends an audit entry), once per key and latest version.

Why the detours:
- minio's client is blocking: every call runs on this store's own small thread pool, so the event
  loop keeps serving.
- The key is the SHA-256 of the bytes, unknown until the last byte has arrived, so ``put`` first
  spools to a local temp file (hashing on the way), then uploads that file part by part
  (``part_size`` at a time, never the whole object in memory). A package the exchange receives
  is instead uploaded while it arrives, under a temporary key, and copied to its name once
  accepted (:meth:`S3ObjectStore.streaming_upload`, storage/objects/s3_stream.py).
- Ceph RGW drops Object Lock headers on multipart uploads and answers an empty ETag (quirks 1-2
  of shared/reference/s3/README.md): retention is set after the upload by its own call and read
  back from ``stat_object`` metadata (minio's own retention parser chokes on RGW's nine
  fractional digits, quirk 6). ETags are never compared with content; we keep our own SHA-256.
- RGW answers a HEAD of a key under a delete marker with a bare 404 (no
  ``x-amz-delete-marker`` header): with a version of ours still there, that 404 is the marker.
- Reads of a whole object are still hashed on the way out; a mismatch raises IntegrityError at
  the end of the stream (bytes changed below S3 itself), so a caller that streams to a client
  never confirms corrupt bytes silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Part
from minio.error import S3Error
from minio.retention import Retention

from storage.errors import (
    IntegrityError,
    NotFound,
    StorageError,
    StorageUnavailable,
)
from storage.objects.base import (
    CHUNK_SIZE,
    MemoryVersionBook,
    ObjectRef,
    ObjectStore,
    VersionBook,
    is_sha256,
)
from storage.objects.s3_stream import S3StreamingUpload

T = TypeVar("T")
log = logging.getLogger("lienthong.storage")

_MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchObject", "ResourceNotFound"}


@dataclass(frozen=True)
class S3Settings:
    """Where and how to reach the bucket. Keys come from the environment or a file, and are
    never part of the repr (so never logged)."""

    endpoint: str  # host:port, or a URL (http:// means TLS off)
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    secure: bool = True
    prefix: str = "objects/"
    retention_years: int = 10  # 0 = no Object Lock retention (not for originals)
    part_size: int = 16 * 1024 * 1024
    parallel_parts: int = 2  # parts uploading at once; memory is about (this + 1) * part_size
    timeout_seconds: float = 10.0

    @property
    def host(self) -> tuple[str, bool]:
        """The endpoint as minio wants it (host:port) and whether TLS is on."""
        ep = self.endpoint
        if ep.startswith("http://"):
            return ep.removeprefix("http://").rstrip("/"), False
        if ep.startswith("https://"):
            return ep.removeprefix("https://").rstrip("/"), True
        return ep.rstrip("/"), self.secure


@dataclass(frozen=True)
class VersionAlarm:
    """The latest version of an object's key is not one the axis wrote.

    ``kind``: ``overwritten`` (other bytes on top of ours), ``delete-marker`` (a delete hides
    ours), ``missing`` (the version we recorded is gone), ``forged`` (the key has versions and
    none holds the bytes its name says). ``ours``: the version the axis reads, if any;
    ``latest``: the latest version's id, when S3 told it.
    """

    sha256: str
    key: str
    kind: str
    ours: str | None
    latest: str | None

    def describe(self) -> str:
        """One line for the log."""
        return (
            f"object {self.sha256}: the latest version of s3 key {self.key} is not ours "
            f"({self.kind}; ours {self.ours}, latest {self.latest})"
        )


AlarmHandler = Callable[[VersionAlarm], Awaitable[None]]


@dataclass(frozen=True)
class _Head:
    """What a HEAD of a key (or one version of it) said."""

    version_id: str | None
    size: int


def parse_s3_time(value: str) -> datetime:
    """Parse an S3 timestamp, including RGW's nine fractional digits (minio-py cannot)."""
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail}"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class S3ObjectStore(ObjectStore):
    """Objects in one S3 bucket with Object Lock (see the module docstring)."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        spool_dir: Path | None = None,
        workers: int = 4,
        versions: VersionBook | None = None,
        on_alarm: AlarmHandler | None = None,
    ) -> None:
        self.settings = settings
        # Without a book (tests, one-off tools) versions are pinned for the process's life.
        self.versions = versions if versions is not None else MemoryVersionBook()
        self.on_alarm = on_alarm
        self._alarmed: set[tuple[str, str, str | None]] = set()
        host, secure = settings.host
        # Short timeouts and few retries: an unreachable store must turn into a quick 503,
        # not a request hanging for minutes.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=settings.timeout_seconds, read=60.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
            maxsize=workers * 2,
        )
        self._client = Minio(
            host,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=secure,
            region=settings.region,
            http_client=http,
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3")
        # Parts of streaming uploads (s3_stream.py) on threads of their own, so that a large
        # upload never queues the HEADs and reads of other requests behind its parts.
        # As many threads as one upload's parts in flight: each thread's malloc arena keeps
        # part-sized blocks, so more threads would mean more memory held, not more speed.
        self.part_pool = ThreadPoolExecutor(
            max_workers=settings.parallel_parts, thread_name_prefix="s3-part"
        )
        self.incoming_prefix = f"{settings.prefix}incoming/"
        self._spool_dir = spool_dir
        self._bucket_ready = False

    def __repr__(self) -> str:
        return (
            f"S3ObjectStore(endpoint={self.settings.endpoint!r}, bucket={self.settings.bucket!r})"
        )

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def client(self) -> Minio:
        """The minio client (blocking: call it through :meth:`call_s3`)."""
        return self._client

    async def call_s3(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking minio call on the store's threads (StorageUnavailable when the
        store cannot be reached; S3Error as S3 answered)."""
        return await self._call(fn, *args, **kwargs)

    def object_key(self, sha256: str) -> str:
        """The key of the object named ``sha256``."""
        return self._key(sha256)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except S3Error:
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(
                f"the S3 store at {self.settings.endpoint} cannot be reached: {exc}"
            ) from exc

    def _key(self, sha256: str) -> str:
        if not is_sha256(sha256):
            raise NotFound(f"not an object name: {sha256!r}")
        return f"{self.settings.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    async def close(self) -> None:
        """Release the thread pool (pending calls finish first)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.part_pool.shutdown)
        await loop.run_in_executor(None, self._pool.shutdown)

    async def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock (and so versioning) if it does not exist."""
        if self._bucket_ready:
            return
        bucket = self.settings.bucket
        try:
            if not await self._call(self._client.bucket_exists, bucket):
                try:
                    await self._call(self._client.make_bucket, bucket, object_lock=True)
                except S3Error as exc:
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
        except S3Error as exc:
            raise StorageError(f"cannot prepare bucket {bucket}: {exc.code}") from exc
        self._bucket_ready = True

    async def ping(self) -> None:
        """Raise StorageError unless the bucket answers."""
        try:
            ok = await self._call(self._client.bucket_exists, self.settings.bucket)
        except S3Error as exc:
            raise StorageError(f"S3 bucket check failed: {exc.code}") from exc
        if not ok:
            raise StorageError(f"S3 bucket {self.settings.bucket} does not exist")

    # -- writing -----------------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> ObjectRef:
        """Spool the stream to a local temp file while hashing, then upload it."""
        fd, name = tempfile.mkstemp(dir=self._spool_dir, prefix="s3put-", suffix=".tmp")
        path = Path(name)
        hasher = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb", buffering=CHUNK_SIZE) as out:
                async for chunk in chunks:
                    hasher.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            return await self._upload(path, hasher.hexdigest())
        finally:
            await asyncio.to_thread(_remove, path)

    async def put_file(self, path: Path, *, sha256: str | None = None) -> ObjectRef:
        """Upload a finished spool file (hashing it unless given), then delete the file."""
        path = Path(path)
        try:
            digest = sha256 if sha256 else await asyncio.to_thread(_sha256_file, path)
        except FileNotFoundError as exc:
            raise NotFound(f"spool file {path} does not exist") from exc
        try:
            return await self._upload(path, digest)
        finally:
            await asyncio.to_thread(_remove, path)

    def streaming_upload(self) -> S3StreamingUpload:
        """An upload that sends the spool file part by part while it is written
        (storage/objects/s3_stream.py)."""
        return S3StreamingUpload(self)

    async def recorded(self, sha256: str) -> ObjectRef | None:
        """Our readable version of these bytes, if one is recorded (then nothing new needs
        storing); None otherwise."""
        if not await self.versions.versions(sha256):
            return None
        return await self.stat(sha256)

    async def _upload(self, path: Path, sha256: str) -> ObjectRef:
        size = (await asyncio.to_thread(path.stat)).st_size
        existing = await self.recorded(sha256)
        if existing is not None:
            return existing  # a version of ours holds these bytes: nothing new to store
        # No version of ours (whatever the key holds may be someone else's): upload, so that
        # the version recorded is one whose bytes we know.
        await self.ensure_bucket()
        key = self._key(sha256)

        def upload() -> str | None:
            return self._upload_blocking(path, key, size, sha256)

        try:
            version_id = await self._call(upload)
        except S3Error as exc:
            raise StorageError(f"S3 refused to store {sha256}: {exc.code}") from exc
        return await self.settle_upload(key, version_id, sha256, size)

    async def settle_upload(
        self, key: str, version_id: str | None, sha256: str, size: int
    ) -> ObjectRef:
        """A version just written under ``key`` with exactly the bytes ``sha256`` names:
        lock it for ``retention_years`` and record it (the version the store reads)."""
        if version_id is None:
            raise StorageError(
                f"bucket {self.settings.bucket} keeps no versions: it needs Object Lock"
            )
        if self.settings.retention_years > 0:
            until = datetime.now(UTC) + timedelta(days=366 * self.settings.retention_years)
            try:
                await self._lock(key, version_id, until)
            except S3Error as exc:
                raise StorageError(f"S3 refused to lock {sha256}: {exc.code}") from exc
        ref = ObjectRef(sha256, size, version_id)
        await self.versions.record(ref)
        return ref

    async def sweep_incoming(self, before: datetime) -> int:
        """Abort the multipart uploads and delete the temporary objects under ``incoming/``
        begun before ``before`` (left by a process that died mid-upload; s3_stream.py)."""
        bucket, prefix = self.settings.bucket, self.incoming_prefix

        def stale_uploads() -> list[tuple[str, str]]:
            found = self._client._list_multipart_uploads(bucket, prefix=prefix, max_uploads=1000)
            return [
                (u.object_name, u.upload_id)
                for u in found.uploads
                if u.upload_id and u.initiated_time is not None and u.initiated_time < before
            ]

        def stale_objects() -> list[tuple[str, str | None]]:
            found = self._client.list_objects(bucket, prefix=prefix, include_version=True)
            return [
                (str(o.object_name), o.version_id)
                for o in found
                if o.last_modified is not None and o.last_modified < before
            ]

        removed = 0
        try:
            for key, upload_id in await self._call(stale_uploads):
                await self._call(self._client._abort_multipart_upload, bucket, key, upload_id)
                removed += 1
            for key, version_id in await self._call(stale_objects):
                await self._call(self._client.remove_object, bucket, key, version_id=version_id)
                removed += 1
        except S3Error as exc:
            if exc.code != "NoSuchBucket":
                raise StorageError(f"S3 sweep of {prefix} failed: {exc.code}") from exc
        return removed

    def _upload_blocking(self, path: Path, key: str, size: int, sha256: str) -> str | None:
        """Upload a file part by part with at most ``parallel_parts`` parts in flight.

        minio's own parallel ``put_object`` queues every part it has read without bound, so
        a fast disk and a slow store would pile the object up in memory; here at most
        ``parallel_parts + 1`` parts are in memory at once. Returns the version id.
        """
        bucket, part_size = self.settings.bucket, self.settings.part_size
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Content-Type": "application/octet-stream",
            "x-amz-meta-sha256": sha256,
        }
        client = self._client
        with open(path, "rb") as src:
            if size <= part_size:
                return client._put_object(bucket, key, src.read(), headers).version_id
            upload_id = client._create_multipart_upload(bucket, key, headers)
            try:
                etags: dict[int, str] = {}
                in_flight: deque[tuple[int, Future[str]]] = deque()
                with ThreadPoolExecutor(self.settings.parallel_parts, "s3-part") as parts:
                    number = 0
                    while data := src.read(part_size):
                        number += 1
                        future = parts.submit(
                            client._upload_part, bucket, key, data, None, upload_id, number
                        )
                        in_flight.append((number, future))
                        del data
                        while len(in_flight) >= self.settings.parallel_parts:
                            done, fut = in_flight.popleft()
                            etags[done] = fut.result()
                    for done, fut in in_flight:
                        etags[done] = fut.result()
                result = client._complete_multipart_upload(
                    bucket, key, upload_id, [Part(n, etags[n]) for n in sorted(etags)]
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    client._abort_multipart_upload(bucket, key, upload_id)
                raise
        return result.version_id

    async def _lock(self, key: str, version_id: str | None, until: datetime) -> None:
        """Set COMPLIANCE retention by its own call (RGW drops it on multipart uploads)."""
        await self._call(
            self._client.set_object_retention,
            self.settings.bucket,
            key,
            Retention(COMPLIANCE, until),
            version_id=version_id,
        )

    async def retain(self, sha256: str, until: datetime) -> None:
        """Extend the COMPLIANCE retention of our version to `until` (never shortened)."""
        ref = await self.require(sha256)
        current = await self.retention(sha256)
        if current is not None and current[1] >= until:
            return
        try:
            await self._lock(self._key(sha256), ref.version_id, until)
        except S3Error as exc:
            raise StorageError(f"S3 refused retention for {sha256}: {exc.code}") from exc

    async def retention(self, sha256: str) -> tuple[str, datetime] | None:
        """Our version's lock mode and retain-until date, or None when it has none."""
        ref = await self.stat(sha256)
        if ref is None:
            raise NotFound(f"object {sha256} is not stored")
        try:
            stat = await self._call(
                self._client.stat_object,
                self.settings.bucket,
                self._key(sha256),
                version_id=ref.version_id,
            )
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise NotFound(f"object {sha256} is not stored") from exc
            raise StorageError(f"S3 stat failed: {exc.code}") from exc
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        mode = meta.get("x-amz-object-lock-mode")
        until = meta.get("x-amz-object-lock-retain-until-date")
        if not mode or not until:
            return None
        return str(mode), parse_s3_time(str(until))

    # -- reading -----------------------------------------------------------------------------

    async def _head(self, key: str, version_id: str | None = None) -> _Head | None:
        """HEAD the key's latest version (or one version): None when there is none to read
        (absent, a delete marker on top, no such version)."""
        try:
            stat = await self._call(
                self._client.stat_object, self.settings.bucket, key, version_id=version_id
            )
        except S3Error as exc:
            if exc.code in _MISSING_CODES or exc.code in {"NoSuchBucket", "MethodNotAllowed"}:
                return None
            raise StorageError(f"S3 stat failed: {exc.code}") from exc
        return _Head(stat.version_id, int(stat.size or 0))

    async def _alarm(
        self, sha256: str, key: str, kind: str, ours: str | None, latest: str | None
    ) -> None:
        """Raise the alarm once per key, kind and latest version (see the module docstring)."""
        # A delete marker's id is known from a listing, not from a HEAD: one alarm either way.
        seen = (key, kind, latest if kind == "overwritten" else None)
        if seen in self._alarmed:
            return
        self._alarmed.add(seen)
        alarm = VersionAlarm(sha256, key, kind, ours, latest)
        log.error(
            "object integrity alarm: " + alarm.describe(),
            extra={"sha256": sha256, "key": key, "kind": kind, "ours": ours, "latest": latest},
        )
        if self.on_alarm is not None:
            try:
                await self.on_alarm(alarm)
            except Exception:  # the read goes on: the alarm is logged above already
                log.exception("object integrity alarm not recorded", extra={"sha256": sha256})

    async def stat(self, sha256: str) -> ObjectRef | None:
        """The ref of our version of the object (see the module docstring), or None when no
        version of ours can be read. IntegrityError when the key holds only other bytes."""
        if not is_sha256(sha256):
            return None
        key = self._key(sha256)
        ours = await self.versions.versions(sha256)
        if not ours:
            return await self._adopt(sha256, key)
        pinned = ours[0]
        latest = await self._head(key)
        if latest is not None and any(r.version_id == latest.version_id for r in ours):
            return pinned  # the common case: one HEAD, the latest version is ours
        if latest is None:
            kind, latest_id = "delete-marker", None
        else:
            kind, latest_id = "overwritten", latest.version_id
        if await self._head(key, pinned.version_id) is None:
            await self._alarm(sha256, key, "missing", pinned.version_id, latest_id)
            return None
        await self._alarm(sha256, key, kind, pinned.version_id, latest_id)
        return pinned

    async def _adopt(self, sha256: str, key: str) -> ObjectRef | None:
        """An object without a recorded version (stored before versions were recorded, or
        never by us): hash its versions whole, oldest first, and record the first whose bytes
        match its name. None when the key has no version; IntegrityError when none matches."""
        bucket = self.settings.bucket

        def listing() -> list[Any]:
            found = self._client.list_objects(bucket, prefix=key, include_version=True)
            return [o for o in found if o.object_name == key]

        try:
            found = await self._call(listing)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                return None
            raise StorageError(f"S3 listing failed: {exc.code}") from exc
        latest = next((o for o in found if str(o.is_latest).lower() == "true"), None)
        candidates = sorted(
            (o for o in found if not o.is_delete_marker and o.version_id),
            key=lambda o: o.last_modified or datetime.min.replace(tzinfo=UTC),
        )
        if not candidates:
            return None
        for candidate in candidates:
            ref = ObjectRef(sha256, int(candidate.size or 0), str(candidate.version_id))
            if await self._hashes_to_name(key, ref):
                await self.versions.record(ref)
                if latest is not None and latest.version_id != ref.version_id:
                    kind = "delete-marker" if latest.is_delete_marker else "overwritten"
                    await self._alarm(sha256, key, kind, ref.version_id, latest.version_id)
                return ref
        newest = latest.version_id if latest is not None else None
        await self._alarm(sha256, key, "forged", None, newest)
        raise IntegrityError(f"object {sha256}: no version of its key holds its bytes")

    async def _hashes_to_name(self, key: str, ref: ObjectRef) -> bool:
        """True when the version's bytes hash to ``ref.sha256`` (read whole, once)."""
        hasher = hashlib.sha256()
        async for chunk in self._get(key, ref.version_id, 0, ref.size):
            hasher.update(chunk)
        return hasher.hexdigest() == ref.sha256

    async def exists(self, sha256: str) -> bool:
        """True if the object is stored."""
        return await self.stat(sha256) is not None

    def local_path(self, sha256: str) -> Path | None:
        """S3 objects have no local file."""
        return None

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of our version; a whole-object read is hashed again."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range: start={start}, end={end}")
        key = self._key(sha256)
        return self._read(sha256, key, start, end)

    async def _read(
        self, sha256: str, key: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        ref = await self.require(sha256)
        stop = ref.size if end is None else min(end, ref.size)
        if stop <= start:
            return
        hasher = hashlib.sha256() if start == 0 and stop == ref.size else None
        async for data in self._get(key, ref.version_id, start, stop):
            if hasher is not None:
                hasher.update(data)
            yield data
        if hasher is not None and hasher.hexdigest() != sha256:
            raise IntegrityError(f"object {sha256} read back with another SHA-256")

    async def _get(
        self, key: str, version_id: str | None, start: int, stop: int
    ) -> AsyncIterator[bytes]:
        """Bytes [start, stop) of one version of the key."""
        try:
            response = await self._call(
                self._client.get_object,
                self.settings.bucket,
                key,
                offset=start,
                length=stop - start,
                version_id=version_id,
            )
        except S3Error as exc:
            raise StorageError(f"S3 read failed: {exc.code}") from exc
        try:
            while True:
                data = await self._call(response.read, CHUNK_SIZE)
                if not data:
                    break
                yield data
        finally:
            response.close()
            response.release_conn()


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as src:
        while block := src.read(CHUNK_SIZE):
            hasher.update(block)
    return hasher.hexdigest()
