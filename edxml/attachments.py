"""Attachments: incremental base64 decoding into caller-given sinks, and SDK zip unpacking.

The reader never holds an attachment's base64 text whole. It hands the text, piece by piece as
the XML parser produces it, to a :class:`Base64StreamDecoder`, which writes the decoded bytes to
a writer obtained from the caller's :class:`AttachmentSink` (or to memory, up to a limit, when
no sink is given).

A sink is any object with three methods::

    class MySink:
        def open(self, meta: AttachmentMeta) -> Writable: ...
        def close(self, meta, writer, *, size: int, sha256: str) -> Opener | None: ...
        def abort(self, meta, writer) -> None: ...

``open`` is called when an attachment's ``ContentTransferEncoded`` element starts; ``close`` when
it ends, with the decoded size and SHA-256 (hex); it may return an *opener* (a callable giving a
fresh binary stream of the decoded bytes) which becomes :attr:`Attachment.opener`. ``abort`` is
called instead of ``close`` when parsing fails midway, so the sink can remove partial output.
:class:`DirectorySink` and :class:`DiscardSink` are ready-made.

The national SDK zips every file before encoding it; :func:`unzip` takes the single file out of
such an attachment with zip-bomb limits.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import os
import queue
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol

from edxml.errors import InvalidValueError, LimitExceededError
from edxml.limits import DEFAULT_LIMITS, Limits
from edxml.model import Attachment

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

Opener = Callable[[], BinaryIO]

# Decode in batches of at least this many base64 characters: few Python-level calls per MiB,
# a bounded amount of pending text.
_BATCH_CHARS = 256 * 1024
_WHITESPACE = b" \t\r\n\x0b\x0c"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    """What is known about an attachment when its content starts streaming.

    ``index`` is its 0-based position in ``AttachmentEncoded``. The other fields come from the
    ``Attachment`` children met *before* ``ContentTransferEncoded`` (in every known sender they
    all come first), completed from the manifest entry with the same ContentId; a field that
    only follows the content is ``None`` here but present on the final
    :class:`~edxml.model.Attachment`.
    """

    index: int
    content_id: str | None = None
    name: str | None = None
    content_type: str | None = None
    description: str | None = None


class Writable(Protocol):
    """Where decoded bytes go: anything with ``write(bytes)``."""

    def write(self, data: bytes, /) -> object: ...


class AttachmentSink(Protocol):
    """Receives the decoded bytes of every attachment (see the module docstring)."""

    def open(self, meta: AttachmentMeta) -> Writable:
        """Return the writer for this attachment's decoded bytes."""
        ...

    def close(
        self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str
    ) -> Opener | None:
        """The attachment is complete; return an opener for its bytes, or None."""
        ...

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        """Parsing failed while (or after) this attachment streamed; drop what was written."""
        ...


class DirectorySink:
    """Writes attachment *i* to ``directory/attachment-<i>.bin`` (never the sender's name).

    The sender's file name is not used on disk: it is untrusted (``../``, reserved names) and is
    kept in :attr:`Attachment.name` instead. The returned opener reopens the file.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.paths: list[Path] = []

    def path_for(self, meta: AttachmentMeta) -> Path:
        """The file that holds attachment ``meta.index``."""
        return self.directory / f"attachment-{meta.index:04d}.bin"

    def open(self, meta: AttachmentMeta) -> Writable:
        """Create (or truncate) the attachment's file."""
        path = self.path_for(meta)
        self.paths.append(path)
        return path.open("wb")

    def close(
        self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str
    ) -> Opener | None:
        """Close the file and return an opener that reads it back."""
        _close_writer(writer)
        path = self.path_for(meta)
        return lambda: path.open("rb")

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        """Close and delete the partial file."""
        _close_writer(writer)
        self.path_for(meta).unlink(missing_ok=True)


class DiscardSink:
    """Drops the bytes; the parsed attachments still carry their size and SHA-256."""

    def open(self, meta: AttachmentMeta) -> Writable:
        """A writer that forgets everything."""
        return _NullWriter()

    def close(
        self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str
    ) -> Opener | None:
        """Nothing to reopen."""
        return None

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        """Nothing to clean."""


class _NullWriter:
    def write(self, data: bytes, /) -> int:
        return len(data)


def _close_writer(writer: Writable) -> None:
    close = getattr(writer, "close", None)
    if callable(close):
        close()


class Base64StreamDecoder:
    """Decodes base64 text given in arbitrary pieces, writing the bytes as it goes.

    Whitespace (line breaks every 76 characters, indentation, CRLF) may appear anywhere,
    including across piece boundaries; anything else outside the base64 alphabet is an error,
    as is a stream that does not end on a whole quantum (missing ``=`` padding is tolerated).
    ``limit`` caps the decoded size: crossing it raises :class:`LimitExceededError` with
    ``limit_message``.

    Speed: text is decoded in batches of 256 K characters; a batch without whitespace (the
    SDK writes base64 on one line) is decoded as is, otherwise whitespace is removed first.
    SHA-256 of large attachments runs on a helper thread (hashlib releases the GIL), so it
    overlaps with parsing; ``writer.write`` is always called on the caller's thread, in order.
    ``background_hash=False`` hashes on the caller's thread: better when the text is all there
    at once and there is no parsing to overlap with.
    """

    def __init__(
        self,
        writer: Writable,
        *,
        path: str = "",
        limit: int | None = None,
        limit_message: str = "attachment too large",
        background_hash: bool = True,
    ) -> None:
        self._writer = writer
        self._background_hash = background_hash
        self._path = path
        self._limit = limit
        self._limit_message = limit_message
        self._pending: list[str] = []
        self._pending_chars = 0
        self._carry = b""
        self._hash = hashlib.sha256()
        self._hasher: _BackgroundHasher | None = None
        self.size = 0

    def feed(self, text: str) -> None:
        """Add a piece of base64 text."""
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars >= _BATCH_CHARS:
            if self._hasher is None and self._background_hash:
                self._hasher = _BackgroundHasher(self._hash)
            self._decode_pending(final=False)

    def finish(self) -> tuple[int, str]:
        """Decode what is left; return (decoded size, SHA-256 hex)."""
        try:
            self._decode_pending(final=True)
        finally:
            if self._hasher is not None:
                self._hasher.join()
                self._hasher = None
        return self.size, self._hash.hexdigest()

    def close(self) -> None:
        """Stop the helper thread without finishing (used when parsing fails)."""
        if self._hasher is not None:
            self._hasher.join()
            self._hasher = None

    def _decode_pending(self, *, final: bool) -> None:
        pieces = self._pending
        if self._carry:
            # Joined with the new text rather than prepended to its bytes: one copy less.
            pieces.insert(0, self._carry.decode("ascii"))
            self._carry = b""
        text = "".join(pieces)  # a single piece is returned as is
        pieces.clear()
        self._pending_chars = 0
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidValueError(
                "attachment content is not base64 (non-ASCII character)", path=self._path
            ) from None
        # Line breaks are by far the commonest whitespace: bytes.replace removes them at
        # memchr speed; anything rarer (spaces, tabs) takes the slower translate path.
        if b"\n" in raw:
            raw = raw.replace(b"\n", b"")
        if b"\r" in raw:
            raw = raw.replace(b"\r", b"")
        decoded = self._decode_clean(raw, final=final, strict=False)
        if decoded is None:
            decoded = self._decode_clean(raw.translate(None, _WHITESPACE), final=final, strict=True)
        if decoded:
            self._emit(decoded)

    def feed_decoded(self, decoded: bytes) -> None:
        """Add bytes the caller decoded itself from base64 it checked (:mod:`edxml.hollow`):
        counted, limited, hashed and written as decoded text is."""
        if decoded:
            self._emit(decoded)

    def _emit(self, decoded: bytes) -> None:
        self.size += len(decoded)
        if self._limit is not None and self.size > self._limit:
            raise LimitExceededError(self._limit_message, path=self._path)
        if self._hasher is not None:
            self._hasher.update(decoded)
        else:
            self._hash.update(decoded)
        self._writer.write(decoded)

    def _decode_clean(self, raw: bytes, *, final: bool, strict: bool) -> bytes | None:
        """Decode the whole quanta of whitespace-free ``raw``, keeping the rest as carry.

        Returns None (carry untouched) when ``raw`` is not clean base64 and not ``strict``.
        """
        if final:
            rest = len(raw) % 4
            if rest == 1:
                if not strict:
                    return None
                raise InvalidValueError("attachment content: truncated base64", path=self._path)
            if rest:
                raw += b"=" * (4 - rest)  # tolerate senders that drop the padding
            cut = len(raw)
        else:
            cut = len(raw) - len(raw) % 4
        try:
            decoded = _b64decode(memoryview(raw)[:cut]) if cut else b""
        except (binascii.Error, ValueError) as exc:
            if not strict:
                return None
            raise InvalidValueError(
                f"attachment content is not valid base64 ({exc})", path=self._path
            ) from None
        self._carry = raw[cut:]
        return decoded


def _b64decode_binascii(data: bytes | memoryview) -> bytes:
    return binascii.a2b_base64(data, strict_mode=True)


def _b64decode_simd(data: bytes | memoryview) -> bytes:
    return _pybase64.b64decode(data, validate=True)


def b64decode_clean(data: bytes | memoryview) -> bytes | None:
    """Strictly decode whitespace-free base64 of whole quanta; None when it is not that."""
    try:
        return _b64decode(data)
    except (binascii.Error, ValueError):
        return None


try:  # SIMD base64 (pybase64) decodes about 15 times faster than binascii
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - pybase64 is a declared dependency
    _b64decode = _b64decode_binascii
else:
    _b64decode = _b64decode_simd


class _BackgroundHasher:
    """Feeds a hash on one helper thread, at most two chunks behind the caller."""

    def __init__(self, digest: hashlib._Hash) -> None:
        self._digest = digest
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="edxml-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def join(self) -> None:
        self._queue.put(None)
        self._thread.join()


# --- zip ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnzippedFile:
    """The one file inside an SDK-zipped attachment.

    ``name`` is the member name as stored (the SDK uses a random UUID plus the extension);
    ``stream`` reads the uncompressed bytes and raises :class:`LimitExceededError` if they grow
    past the limits, whatever the zip headers claim; ``size`` is the size the zip declares.
    """

    name: str
    size: int
    stream: BinaryIO


def looks_zipped(attachment: Attachment) -> bool:
    """True when the attachment's content is a zip, by ContentType or by its first bytes.

    Real senders label zipped content ``text/plain`` or ``application/pdf``, so the content
    type alone is not enough.
    """
    if attachment.is_zipped:
        return True
    if attachment.data is None and attachment.opener is None:
        return False
    with attachment.open() as stream:
        head = stream.read(4)
    return head in (_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)


def unzip(source: bytes | BinaryIO | Attachment, limits: Limits | None = None) -> UnzippedFile:
    """Take the single file out of an SDK-zipped attachment, refusing zip bombs.

    ``source`` is the zip's bytes, a seekable binary stream, or an :class:`Attachment` (its
    decoded content). Refused with :class:`LimitExceededError`: more entries than
    ``zip_max_members`` (checked from the end-of-central-directory record before the directory
    is read), a declared or actual uncompressed size above ``zip_max_uncompressed``, or a
    compression ratio above ``zip_max_ratio``. Not a zip, an encrypted member, or other than
    exactly one file: :class:`InvalidValueError`.
    """
    lim = limits or DEFAULT_LIMITS
    stream = _as_seekable(source)
    stream.seek(0, io.SEEK_END)
    total = stream.tell()
    _check_member_count(stream, total, lim)
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidValueError(f"attachment is not a readable zip ({exc})") from None
    members = archive.infolist()
    if len(members) > lim.zip_max_members:
        raise LimitExceededError(
            f"zip holds {len(members)} entries, more than the limit of {lim.zip_max_members}"
        )
    files = [m for m in members if not m.is_dir()]
    if len(files) != 1:
        raise InvalidValueError(
            f"zip holds {len(files)} files; an SDK-zipped attachment holds exactly one"
        )
    info = files[0]
    if info.flag_bits & 0x1:
        raise InvalidValueError(f"zip member {info.filename!r} is encrypted")
    allowed = _allowed_size(info.compress_size, lim)
    if info.file_size > allowed:
        raise LimitExceededError(_bomb_message(info.filename, info.file_size, info.compress_size))
    try:
        inner = archive.open(info)
    except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
        raise InvalidValueError(f"cannot open zip member {info.filename!r} ({exc})") from None
    guarded = _BoundedReader(inner, allowed, info.filename, info.compress_size)
    return UnzippedFile(name=info.filename, size=info.file_size, stream=io.BufferedReader(guarded))


def _as_seekable(source: bytes | BinaryIO | Attachment) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    stream: BinaryIO = source.open() if isinstance(source, Attachment) else source
    if not stream.seekable():
        raise TypeError("unzip needs bytes or a seekable stream")
    return stream


def _check_member_count(stream: BinaryIO, total: int, lim: Limits) -> None:
    # The end-of-central-directory record is within the last 64 KiB + 22 bytes; its entry count
    # lets us refuse a zip with millions of entries before zipfile reads them all into memory.
    tail_len = min(total, 65_557)
    stream.seek(total - tail_len)
    tail = stream.read(tail_len)
    pos = tail.rfind(_EMPTY_ZIP_MAGIC)
    if pos < 0 or pos + 22 > len(tail):
        raise InvalidValueError("attachment is not a zip (no end-of-central-directory record)")
    (entries,) = struct.unpack_from("<H", tail, pos + 10)
    if entries > lim.zip_max_members:
        raise LimitExceededError(
            f"zip holds {entries} entries, more than the limit of {lim.zip_max_members}"
        )


def _allowed_size(compressed: int, lim: Limits) -> int:
    by_ratio = max(lim.zip_ratio_grace, compressed * lim.zip_max_ratio)
    return min(lim.zip_max_uncompressed, by_ratio)


def _bomb_message(name: str, size: int, compressed: int) -> str:
    return (
        f"zip member {name!r} expands to more than the limits allow "
        f"({size} bytes from {compressed} compressed): refused as a possible zip bomb"
    )


class _BoundedReader(io.RawIOBase):
    """Reads a zip member, failing once more than ``allowed`` bytes come out."""

    def __init__(self, inner: IO[bytes], allowed: int, name: str, compressed: int) -> None:
        self._inner = inner
        self._allowed = allowed
        self._name = name
        self._compressed = compressed
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        # Never ask for more than one byte past the allowance, so a bomb is caught after
        # decompressing at most that much.
        want = min(len(view), self._allowed - self._count + 1)
        try:
            data = self._inner.read(want)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            # zlib.error: a deflate stream that does not decode
            raise InvalidValueError(f"zip member {self._name!r} is corrupt ({exc})") from None
        self._count += len(data)
        if self._count > self._allowed:
            raise LimitExceededError(_bomb_message(self._name, self._count, self._compressed))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()
