"""Receiving a package body: stream it to a spool file, hash it, add the axis's TraceHeader.

The body never sits in memory whole: chunks go to a file in the spool directory (on the same
filesystem as the object store, so accepting it is a rename). While the bytes pass, the SHA-256
of the *received* bytes is computed (it decides whether a resend is the same package) and the
axis's own ``TraceHeader`` (vết chuyển) is inserted into the edXML header, so the stored package
- what recipients fetch - records this hop, as every axis on the route does.

The insertion is a byte-level splice in the head of the document (the header comes before the
attachments): after the last ``TraceHeader`` of ``TraceHeaderList`` (or into a new list after
``MessageHeader``), reusing the prefix the sender used for that element, so the namespace is the
same. The splice is checked afterwards by parsing the stored bytes: the last TraceHeader the
parser sees must be exactly ours (see :meth:`Exchange._check_trace`). Nothing else changes: all
other bytes are the sender's, in order.

:func:`receive_file` spools other uploads (a PDF to verify) the same way, as they came.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar
from xml.sax.saxutils import escape

from edxml import VN_TZ
from storage.objects.base import StreamingUpload
from storage.private import create_file


class BodyTooLarge(Exception):
    """The body grew past the configured limit; the partial spool file was removed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the package is larger than the limit of {limit} bytes")
        self.limit = limit


# How much of the head is searched for the end of edXMLHeader before giving up on the splice.
HEAD_LIMIT = 8 * 1024 * 1024

_NAME = rb"(?:([A-Za-z_][\w.\-]*):)?"
_HEADER_END = re.compile(rb"</" + _NAME + rb"edXMLHeader\s*>")
_LIST_OPEN = re.compile(rb"<" + _NAME + rb"TraceHeaderList(\s[^>]*?)?(/?)>")
_LIST_CLOSE = re.compile(rb"</" + _NAME + rb"TraceHeaderList\s*>")
_TRACE_END = re.compile(rb"</" + _NAME + rb"TraceHeader\s*>")
_MESSAGE_END = re.compile(rb"</" + _NAME + rb"MessageHeader\s*>")


def format_trace_time(moment: datetime) -> str:
    """edXML's TraceHeader/Timestamp: local Vietnamese time ``yyyy/MM/dd HH:mm:ss``."""
    return moment.astimezone(VN_TZ).strftime("%Y/%m/%d %H:%M:%S")


def _trace_xml(prefix: bytes | None, organ_id: str, timestamp: str) -> bytes:
    p = prefix + b":" if prefix else b""
    return (
        b"<" + p + b"TraceHeader><" + p + b"OrganId>" + escape(organ_id).encode("utf-8")
        + b"</" + p + b"OrganId><" + p + b"Timestamp>" + timestamp.encode("ascii")
        + b"</" + p + b"Timestamp></" + p + b"TraceHeader>"
    )  # fmt: skip


def splice_trace(head: bytes, organ_id: str, timestamp: str) -> bytes | None:
    """``head`` (ending just after ``</edXMLHeader>``) with the axis TraceHeader added, or None
    when no place for it is found."""
    for open_match in _LIST_OPEN.finditer(head):
        prefix, attrs, empty = open_match.group(1), open_match.group(2) or b"", open_match.group(3)
        trace = _trace_xml(prefix, organ_id, timestamp)
        if empty:  # <TraceHeaderList/>: give it content
            p = prefix + b":" if prefix else b""
            element = b"<" + p + b"TraceHeaderList" + attrs + b">" + trace
            element += b"</" + p + b"TraceHeaderList>"
            return head[: open_match.start()] + element + head[open_match.end() :]
        close = _LIST_CLOSE.search(head, open_match.end())
        if close is None:
            return None
        last_end = None
        for trace_end in _TRACE_END.finditer(head, open_match.end(), close.start()):
            last_end = trace_end.end()
        at = last_end if last_end is not None else open_match.end()
        return head[:at] + trace + head[at:]
    message_end = _MESSAGE_END.search(head)
    if message_end is None:
        return None
    prefix = message_end.group(1)
    p = prefix + b":" if prefix else b""
    element = b"<" + p + b"TraceHeaderList>" + _trace_xml(prefix, organ_id, timestamp)
    element += b"</" + p + b"TraceHeaderList>"
    return head[: message_end.end()] + element + head[message_end.end() :]


class SpoolFollower(Protocol):
    """Something that reads the spool file while it is written (the exchange's early parse,
    server/exchange/early_parse.py): told of every flushed write, and when the body fails."""

    def written(self, path: Path, size: int, *, last: bool = False) -> None: ...

    def abort(self) -> None: ...


@dataclass
class SpooledPackage:
    """A received body on disk: the stored form (with the axis TraceHeader) at ``path``."""

    path: Path
    received_sha256: str
    received_size: int
    # The digest of the file at ``path`` (the stored form, TraceHeader included): the object's
    # name, known before the object store takes the file.
    sha256: str
    trace_organ_id: str
    trace_timestamp: str
    spliced: bool
    # The object store's upload of this file begun while it arrived (S3), to be finished by
    # storing the package or aborted (:func:`received_package`); None: stored after the fact.
    upload: StreamingUpload | None = None
    # What read the file while it arrived (see :class:`SpoolFollower`), if anything did.
    follower: SpoolFollower | None = None


class _Splicer:
    """Holds back the head of the stream until the TraceHeader is placed, then passes through."""

    def __init__(self, organ_id: str, timestamp: str) -> None:
        self.organ_id = organ_id
        self.timestamp = timestamp
        self.head = bytearray()
        self.done = False
        self.spliced = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            return chunk
        searched_from = max(0, len(self.head) - 64)
        self.head += chunk
        end = _HEADER_END.search(self.head, searched_from)
        if end is None:
            if len(self.head) > HEAD_LIMIT:
                return self._give_up()
            return b""
        head, rest = bytes(self.head[: end.end()]), bytes(self.head[end.end() :])
        self.head = bytearray()
        self.done = True
        spliced = splice_trace(head, self.organ_id, self.timestamp)
        if spliced is None:
            return head + rest
        self.spliced = True
        return spliced + rest

    def _give_up(self) -> bytes:
        out = bytes(self.head)
        self.head = bytearray()
        self.done = True
        return out

    def flush(self) -> bytes:
        return b"" if self.done else self._give_up()


# Bodies are gathered in memory up to this size and written by a spool thread: creating and
# writing a file may wait for the filesystem journal (ext4 blocks new files while it commits
# the fsyncs of other sends), which must not stall the event loop. A small package is one
# thread hop: create, write, close.
_FLUSH_BYTES = 1024 * 1024
_SPOOL_THREADS = 2
_spool_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """The spool's own threads (not the default pool, where object-store fsyncs queue)."""
    global _spool_pool  # created once, on first use
    if _spool_pool is None:
        _spool_pool = ThreadPoolExecutor(_SPOOL_THREADS, thread_name_prefix="lienthong-spool")
    return _spool_pool


class _SpoolWriter:
    """A spool file written off the event loop: opened by the first write, closed by the last.

    One blocking call runs at a time; if the caller is cancelled, :meth:`discard` waits for it
    before removing the file, so no thread writes to (or creates) a file already removed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._out: BinaryIO | None = None
        self._running: asyncio.Future[None] | None = None

    def _write(self, data: bytes, last: bool) -> None:
        if self._out is None:
            # 0600 whatever the umask: the file becomes the object by a rename (storage/private.py)
            self._out = os.fdopen(create_file(self.path, os.O_WRONLY | os.O_EXCL), "wb")
        self._out.write(data)
        self._out.flush()  # a streaming upload reads what is written from the file
        if last:
            out, self._out = self._out, None
            out.close()

    async def write(self, data: bytes, *, last: bool = False) -> None:
        """Append ``data`` (creating the file first); close the file when ``last``."""
        self._running = asyncio.get_running_loop().run_in_executor(_pool(), self._write, data, last)
        await self._running

    async def discard(self) -> None:
        """Remove the file after the write in progress, if any, is over."""
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait([running])
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.close()
            self._out = None
        self.path.unlink(missing_ok=True)


class _Intake:
    """The bytes of a body as they arrive: counted against ``limit`` and hashed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.hasher = hashlib.sha256()

    async def chunks(self, source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """``source``'s chunks; :class:`BodyTooLarge` once more than ``limit`` bytes came."""
        async for chunk in source:
            self.size += len(chunk)
            if self.size > self.limit:
                raise BodyTooLarge(self.limit)
            self.hasher.update(chunk)
            yield chunk


async def receive(
    chunks: AsyncIterable[bytes],
    spool_dir: Path,
    *,
    limit: int,
    organ_id: str,
    moment: datetime,
    upload: StreamingUpload | None = None,
    follower: SpoolFollower | None = None,
) -> SpooledPackage:
    """Write the body to a new spool file with the axis TraceHeader spliced in.

    Raises :class:`BodyTooLarge` as soon as more than ``limit`` bytes arrived. On any failure
    the spool file is removed (and ``upload`` and ``follower`` aborted); on success the caller
    owns them (see :func:`received_package`). ``upload`` and ``follower`` are told of every
    flushed write, to send the file to the object store and to parse it while it grows.
    """
    timestamp = format_trace_time(moment)
    splicer = _Splicer(organ_id, timestamp)
    intake = _Intake(limit)
    stored = hashlib.sha256()
    path = spool_dir / f"{uuid.uuid4().hex}.edxml"
    out = _SpoolWriter(path)
    pending: list[bytes] = []
    buffered = written = 0
    try:
        async for chunk in intake.chunks(chunks):
            data = splicer.feed(chunk)
            if data:
                stored.update(data)
                pending.append(data)
                buffered += len(data)
                if buffered >= _FLUSH_BYTES:
                    await out.write(b"".join(pending))
                    pending, written, buffered = [], written + buffered, 0
                    if follower is not None:
                        follower.written(path, written)
                    if upload is not None:
                        await upload.written(path, written)
        rest = splicer.flush()
        stored.update(rest)
        pending.append(rest)
        await out.write(b"".join(pending), last=True)
        written += buffered + len(rest)
        if follower is not None:
            follower.written(path, written, last=True)
        if upload is not None:
            await upload.written(path, written, last=True)
    except BaseException:
        if follower is not None:
            follower.abort()
        if upload is not None:
            await upload.abort()
        await out.discard()
        raise
    return SpooledPackage(
        path=path,
        received_sha256=intake.hasher.hexdigest(),
        received_size=intake.size,
        sha256=stored.hexdigest(),
        trace_organ_id=organ_id,
        trace_timestamp=timestamp,
        spliced=splicer.spliced,
        upload=upload,
        follower=follower,
    )


@dataclass
class SpooledFile:
    """An uploaded file received whole on disk, as it came (no splice)."""

    path: Path
    size: int
    sha256: str


_Spooled = TypeVar("_Spooled", SpooledPackage, SpooledFile)


async def receive_file(
    chunks: AsyncIterable[bytes], spool_dir: Path, *, limit: int, suffix: str = ".upload"
) -> SpooledFile:
    """Write an uploaded file (a PDF to verify) to a new spool file while hashing it, holding
    at most about 1 MiB of it in memory however slowly it arrives.

    Raises :class:`BodyTooLarge` as soon as more than ``limit`` bytes arrived. On any failure
    the file is removed; on success the caller owns it (remove it with :func:`spool_file`).
    """
    intake = _Intake(limit)
    out = _SpoolWriter(temp_path(spool_dir, suffix))
    pending = bytearray()
    try:
        async for chunk in intake.chunks(chunks):
            pending += chunk
            if len(pending) >= _FLUSH_BYTES:
                await out.write(bytes(pending))
                pending.clear()
        await out.write(bytes(pending), last=True)
    except BaseException:
        await out.discard()
        raise
    return SpooledFile(path=out.path, size=intake.size, sha256=intake.hasher.hexdigest())


@contextlib.contextmanager
def spool_file(package: _Spooled) -> Iterator[_Spooled]:
    """Remove the spool file when the block ends, unless the object store took it already."""
    try:
        yield package
    finally:
        package.path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def received_package(package: SpooledPackage) -> AsyncIterator[SpooledPackage]:
    """:func:`spool_file` for a received package: its streamed upload, unless the package
    was stored, is aborted too before the block is left (a refusal leaves nothing in S3)."""
    try:
        with spool_file(package):
            yield package
    finally:
        if package.upload is not None:
            await package.upload.abort()


def temp_path(spool_dir: Path, suffix: str = ".tmp") -> Path:
    """A fresh file name in the spool directory (for attachments being decoded)."""
    return spool_dir / f"{uuid.uuid4().hex}{suffix}"
