"""The default object store: files on the local filesystem, content-addressed by SHA-256.

Layout: <root>/ab/cd/<sha256> for an object whose digest starts with "abcd"; temporary files in
<root>/tmp. A write goes temp file -> fsync -> rename -> fsync of the directory, so after `put`
returns the object survives power loss, and a reader never sees a partial object (rename is
atomic).

The 256 directories <root>/ab are made when the store is first opened; <root>/ab/cd on the
first object under it (making all 65,536 ahead would cost 258 MB of directory blocks on ext4
and seconds to make, minutes to delete: measured, docs/storage.md).

Directory fsyncs batched with the database's group commit (``defer_dir_syncs``, the axis's
store): the rename is done when `put` returns, and the directories it changed are fsynced
together by :meth:`FilesystemObjectStore.sync_dirs`, which the database runs before each COMMIT
(storage/db.py ``add_before_commit``). A row naming the object commits after that, so a crash
can never leave a row whose object it lost, at one fsync per directory per batch instead of one
or more per object. The file's own fsync stays before the rename: a name never holds bytes a
crash could change.

put_file() moves a spool file in by rename, which only works within one filesystem: the server
keeps its spool at <data>/spool next to <data>/objects for that reason (a spool on
another filesystem still works, by copying).

Blocking calls (write, fsync, rename, read) run in the default thread pool so the event loop
keeps serving other requests.

Private whatever the umask (storage/private.py): directories are made 0700 and temp files
0600 (mkstemp); a file moved in by put_file() that others may read (a spool file made by a
library under a looser umask) gets 0600 before its rename, decided from the fstat put_file
makes anyway, so the usual case costs no extra system call.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from storage.db import Tx
from storage.errors import NotFound, StorageError, StorageFull
from storage.objects.base import CHUNK_SIZE, ObjectRef, ObjectStore, is_sha256
from storage.private import DIR_MODE, FILE_MODE, make_dir

T = TypeVar("T")

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
STALE_TMP_SECONDS = 24 * 3600


def _full(exc: OSError) -> bool:
    return exc.errno in _FULL_ERRNOS


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_DIR_SYNC_THREADS = 8
_dir_sync_threads: ThreadPoolExecutor | None = None
_dir_sync_threads_lock = threading.Lock()


def _dir_sync_pool() -> ThreadPoolExecutor:
    """The threads that fsync a group's directories together (made on first use)."""
    global _dir_sync_threads  # one pool for the process, made once
    with _dir_sync_threads_lock:
        if _dir_sync_threads is None:
            _dir_sync_threads = ThreadPoolExecutor(
                _DIR_SYNC_THREADS, thread_name_prefix="lienthong-dir-sync"
            )
        return _dir_sync_threads


async def _in_thread(fn: Callable[..., T], *args: Any, on_abandon: Callable[[], None]) -> T:
    """Run fn(*args) in the thread pool. If the awaiting task is cancelled while fn still runs,
    `on_abandon` runs once fn has finished: the file descriptor fn uses must not be closed
    (and its number possibly reused) under it."""
    fut = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if not fut.done():
            fut.add_done_callback(lambda _f: on_abandon())
        else:
            on_abandon()
        raise


class _TempObject:
    """A temp file being written and hashed; all methods are blocking (run them in a thread)."""

    def __init__(self, tmp_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="put-", suffix=".tmp")
        self.fd: int | None = fd
        self.path = Path(name)
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.hasher.update(data)
        self.size += len(data)

    def sync_and_close(self) -> None:
        assert self.fd is not None
        os.fsync(self.fd)
        fd, self.fd = self.fd, None
        os.close(fd)

    def discard(self) -> None:
        """Close and delete the temp file; safe to call more than once, never raises."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self.path.unlink()


class FilesystemObjectStore(ObjectStore):
    """Objects as files under `root` (created if missing). With ``defer_dir_syncs`` a put's
    directory fsyncs wait for :meth:`sync_dirs` (run before each COMMIT of the database whose
    rows name the objects): durable once the next transaction commits, not on return."""

    def __init__(self, root: Path, *, defer_dir_syncs: bool = False) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        make_dir(self.root)
        make_dir(self.tmp_dir)
        self._make_fan_out()
        self._remove_stale_tmp()
        self._defer = defer_dir_syncs
        self._dirty: set[Path] = set()
        self._dirty_lock = threading.Lock()

    def _make_fan_out(self) -> None:
        """Make the 256 first-level directories, once (then fsync the root)."""
        if (self.root / "ff").is_dir():
            return
        for n in range(256):
            with contextlib.suppress(FileExistsError):
                (self.root / f"{n:02x}").mkdir(DIR_MODE)
        _fsync_dir(self.root)

    def _synced(self, *directories: Path) -> None:
        """Blocking: these directories got entries; fsync them now, or before the next COMMIT
        when deferred."""
        if not self._defer:
            for directory in directories:
                _fsync_dir(directory)
            return
        with self._dirty_lock:
            self._dirty.update(directories)

    def sync_dirs(self) -> None:
        """Blocking: fsync every directory changed by a put since the last call (the
        database's before-commit hook). StorageError if one fails: the COMMIT must not run;
        the directories stay due for the next call."""
        with self._dirty_lock:
            due, self._dirty = self._dirty, set()
        try:
            if len(due) == 1:
                _fsync_dir(next(iter(due)))
            elif due:
                # Together: the filesystem's journal commits the concurrent fsyncs at once,
                # instead of one commit after another on the writer thread.
                list(_dir_sync_pool().map(_fsync_dir, due))
        except OSError as exc:
            with self._dirty_lock:
                self._dirty.update(due)
            raise self._os_error(exc, "fsync a directory") from exc

    # -- paths -------------------------------------------------------------------------------

    def _path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise NotFound(f"not an object name: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def local_path(self, sha256: str) -> Path | None:
        """The object's file, or None if absent or not a valid name."""
        try:
            path = self._path(sha256)
        except NotFound:
            return None
        return path if path.is_file() else None

    def _remove_stale_tmp(self) -> None:
        # Temp files left by a crash are garbage. Only old ones are removed: another process
        # (the CLI beside the server) may be writing a fresh one right now.
        cutoff = time.time() - STALE_TMP_SECONDS
        for entry in self.tmp_dir.iterdir():
            with contextlib.suppress(OSError):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()

    # -- writing -----------------------------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> ObjectRef:
        """Store the streamed bytes (see ObjectStore.put)."""
        try:
            tmp = await asyncio.to_thread(_TempObject, self.tmp_dir)
        except OSError as exc:
            raise self._os_error(exc, "create a temp file") from exc
        buffer = bytearray()
        in_flight = False  # True while a thread works on tmp's descriptor
        try:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= CHUNK_SIZE:
                    # Hand the thread its own copy: `buffer` is reused for the next chunks.
                    data, buffer = bytes(buffer), bytearray()
                    in_flight = True
                    await _in_thread(tmp.write, data, on_abandon=tmp.discard)
                    in_flight = False
            in_flight = True
            if buffer:
                await _in_thread(tmp.write, bytes(buffer), on_abandon=tmp.discard)
            return await _in_thread(self._commit_temp, tmp, on_abandon=tmp.discard)
        except asyncio.CancelledError:
            if not in_flight:
                tmp.discard()  # close + unlink: quick, and no thread uses the descriptor
            raise  # otherwise _in_thread discards once the thread is done
        except OSError as exc:
            await asyncio.to_thread(tmp.discard)
            raise self._os_error(exc, "store an object") from exc
        except BaseException:
            await asyncio.to_thread(tmp.discard)
            raise

    def _commit_temp(self, tmp: _TempObject) -> ObjectRef:
        """Blocking: make the temp file the object (or drop it if the object exists)."""
        tmp.sync_and_close()
        ref = ObjectRef(tmp.hasher.hexdigest(), tmp.size)
        self._install(tmp.path, ref)
        return ref

    def _install(self, source: Path, ref: ObjectRef) -> None:
        """Blocking: rename a complete, fsynced file into place, or delete it if the object
        is already stored (same digest => same bytes). `source` is gone afterwards."""
        final = self._path(ref.sha256)
        if final.is_file() and final.stat().st_size == ref.size:
            source.unlink()
            # Freshen the mtime: the bytes were just written again (the orphan sweep goes by
            # intent records, not mtimes; this keeps the file's age honest for operators).
            with contextlib.suppress(OSError):
                os.utime(final)
            # Another process may have renamed it in without its directory fsyncs yet.
            if self._defer:
                self._synced(final.parent.parent, final.parent)
            return
        made = self._make_dirs(final.parent)
        os.replace(source, final)
        self._synced(*made, final.parent)

    def _make_dirs(self, directory: Path) -> list[Path]:
        """Create root/ab/cd if missing; return the parents that got a new entry."""
        created: list[Path] = []
        for level in (directory.parent, directory):
            try:
                level.mkdir(DIR_MODE)
                created.append(level.parent)
            except FileExistsError:
                pass
        return created

    async def put_file(self, path: Path, *, sha256: str | None = None) -> ObjectRef:
        """Move a spool file into the store (see ObjectStore.put_file)."""
        path = Path(path)
        try:
            return await asyncio.to_thread(self._put_file_blocking, path, sha256)
        except FileNotFoundError as exc:
            raise NotFound(f"spool file {path} does not exist") from exc
        except OSError as exc:
            raise self._os_error(exc, "move a file into the store") from exc

    def _put_file_blocking(self, path: Path, sha256: str | None) -> ObjectRef:
        with open(path, "rb") as src:
            st = os.fstat(src.fileno())
            size = st.st_size
            if st.st_mode & 0o077:  # made under a looser umask: private before it is an object
                os.fchmod(src.fileno(), FILE_MODE)
            if sha256 is None:
                hasher = hashlib.sha256()
                while block := src.read(CHUNK_SIZE):
                    hasher.update(block)
                digest = hasher.hexdigest()
            else:
                if not is_sha256(sha256):
                    raise ValueError(f"not a lowercase SHA-256 hex digest: {sha256!r}")
                digest = sha256
            # The spool writer may not have fsynced: the bytes must be on disk before the
            # rename makes them the object.
            os.fsync(src.fileno())
        ref = ObjectRef(digest, size)
        try:
            self._install(path, ref)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self._copy_in(path, ref)
        return ref

    def _copy_in(self, path: Path, ref: ObjectRef) -> None:
        """Blocking: the spool is on another filesystem; copy it into tmp, then install."""
        tmp = _TempObject(self.tmp_dir)
        try:
            with open(path, "rb") as src:
                assert tmp.fd is not None
                with os.fdopen(os.dup(tmp.fd), "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK_SIZE)
            tmp.sync_and_close()
            self._install(tmp.path, ref)
        except BaseException:
            tmp.discard()
            raise
        path.unlink()

    def _os_error(self, exc: OSError, doing: str) -> StorageError:
        if _full(exc):
            return StorageFull(f"the object store at {self.root} is full")
        return StorageError(f"could not {doing} in {self.root}: {exc.strerror or exc}")

    # -- reading -----------------------------------------------------------------------------

    def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of the object in 1 MiB chunks (see ObjectStore.open)."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range: start={start}, end={end}")
        path = self._path(sha256)
        if not path.is_file():
            raise NotFound(f"object {sha256} is not stored")
        return self._read(path, start, end)

    async def _read(self, path: Path, start: int, end: int | None) -> AsyncIterator[bytes]:
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NotFound(f"object {path.name} is not stored") from exc

        closed = False
        abandoned = False

        def close() -> None:
            nonlocal closed
            if not closed:
                closed = True
                os.close(fd)

        try:
            size = os.fstat(fd).st_size
            stop = size if end is None else min(end, size)
            position = start
            while position < stop:
                want = min(CHUNK_SIZE, stop - position)
                try:
                    data = await _in_thread(os.pread, fd, want, position, on_abandon=close)
                except asyncio.CancelledError:
                    abandoned = True  # _in_thread closes fd once the read has finished
                    raise
                if not data:  # the file is shorter than it claimed: never loop forever
                    break
                position += len(data)
                yield data
        finally:
            if not abandoned:
                close()

    async def stat(self, sha256: str) -> ObjectRef | None:
        """Return the object's ref (size from the file), or None if it is not stored."""
        if not is_sha256(sha256):
            return None
        path = self._path(sha256)
        try:
            st = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return None
        return ObjectRef(sha256, st.st_size)

    async def exists(self, sha256: str) -> bool:
        """True if the object is stored."""
        return await self.stat(sha256) is not None

    async def delete(self, sha256: str) -> bool:
        """Remove an object (only the orphan sweep does, for objects with an intent record:
        objects are otherwise kept forever). True if it existed."""
        path = self._path(sha256)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._os_error(exc, "delete an object") from exc
        return True

    @property
    def sweepable(self) -> bool:
        """The orphan sweep may delete files here."""
        return True

    async def delete_orphan(self, tx: Tx, sha256: str) -> bool:
        """Delete an orphan's file (the sweep's transaction is not needed here)."""
        return await self.delete(sha256)

    async def ping(self) -> None:
        """Raise StorageError unless the store's directories exist and are writable."""
        ok = await asyncio.to_thread(os.access, self.tmp_dir, os.W_OK | os.X_OK)
        if not ok:
            raise StorageError(f"the object store at {self.root} is not writable")
