"""Decoding one attachment of a stored document into a spool file (unzipping what the
national SDK zipped), without holding the package or the other attachments in memory.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import edxml
from edxml import DiscardSink
from edxml.attachments import AttachmentMeta, Writable, unzip
from server.exchange.core import ExchangeCore
from server.exchange.errors import DocumentNotFound
from server.exchange.mediatypes import attachment_type, guess_type
from server.exchange.meta import document_meta
from server.exchange.results import DecodedAttachment
from server.runtime.spool import temp_path
from storage.objects.local import fetch_to_file


class _OneAttachmentSink:
    """Writes attachment ``index`` to a spool file and drops every other attachment's bytes."""

    def __init__(self, index: int, path: Path) -> None:
        self.index = index
        self.path = path
        self.written = False
        self._discard = DiscardSink()

    def open(self, meta: AttachmentMeta) -> Writable:
        if meta.index != self.index:
            return self._discard.open(meta)
        self.written = True
        return self.path.open("wb")

    def close(self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str) -> None:
        if meta.index == self.index:
            writer.close()  # type: ignore[attr-defined]

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        if meta.index == self.index:
            writer.close()  # type: ignore[attr-defined]
            self.path.unlink(missing_ok=True)


class Attachments(ExchangeCore):
    """Decoding a visible document's attachments."""

    async def decode_attachment(
        self, caller: str, package_id: str, index: int
    ) -> DecodedAttachment:
        """Decode attachment ``index`` of a visible document into a spool file (unzipping what
        the national SDK zipped). The caller streams the file and must remove it."""
        doc = await self.document(caller, package_id)
        attachments = document_meta(doc).get("attachments") or []
        if doc.kind != "document" or not 0 <= index < len(attachments):
            raise DocumentNotFound(f"Document {package_id} has no attachment {index}.")
        entry = attachments[index]
        source = self.objects.local_path(doc.sha256)
        fetched: Path | None = None
        if source is None:
            # S3 keeps no local file: copy the package into the spool (hash-checked) first.
            fetched = source = await fetch_to_file(self.objects, doc.sha256, self.config.spool_dir)
        raw = temp_path(self.config.spool_dir, ".bin")
        try:
            return await asyncio.to_thread(self._decode_blocking, source, index, raw, entry)
        except BaseException:
            raw.unlink(missing_ok=True)
            raise
        finally:
            if fetched is not None:
                fetched.unlink(missing_ok=True)

    def _decode_blocking(
        self, source: Path, index: int, raw: Path, entry: dict[str, Any]
    ) -> DecodedAttachment:
        sink = _OneAttachmentSink(index, raw)
        edxml.parse(source, sink=sink, limits=self.limits)
        if not sink.written:
            raise DocumentNotFound(f"Attachment {index} is missing from the stored package.")
        name = entry.get("name")
        content_type = attachment_type(entry.get("content_type")) or ""
        with raw.open("rb") as fh:
            zipped = content_type in {"application/zip", "application/x-zip-compressed"} or (
                fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
            )
        if not zipped:
            return DecodedAttachment(
                raw, name, content_type or guess_type(name), raw.stat().st_size
            )
        inner_path = temp_path(self.config.spool_dir, ".bin")
        try:
            with raw.open("rb") as fh:
                inner = unzip(fh)
                with inner.stream, inner_path.open("wb") as out:
                    shutil.copyfileobj(inner.stream, out, 1024 * 1024)
        except BaseException:
            inner_path.unlink(missing_ok=True)
            raise
        finally:
            raw.unlink(missing_ok=True)
        # The SDK's zip member is a UUID plus the extension; AttachmentName is the real name.
        name = name or inner.name
        inner_type = content_type if content_type not in _ZIP_TYPES else ""
        return DecodedAttachment(
            inner_path, name, inner_type or guess_type(name), inner_path.stat().st_size
        )


_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
