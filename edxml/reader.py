"""The lenient, streaming, safe edXML reader: :func:`parse`.

How it reads
    Two ways, same results. *Streaming* (the reference): lxml's parser runs in push mode with a
    *target* object (start/end/data callbacks): no lxml tree is ever built. The callbacks build
    a small tree of the header and manifest (a few KB) and send each attachment's
    ``ContentTransferEncoded`` text, piece by piece, to an incremental base64 decoder that
    writes into the caller's sink (see :mod:`edxml.attachments`). Memory stays flat whatever
    the attachment sizes. *Tree*, for inputs of known size up to ``Limits.tree_max_size``
    (1 MiB): libxml2 parses the bytes into a tree in one call, which avoids a Python callback
    per event (most of the cost of a small package), and :class:`_TreeReader` turns it into
    the same small tree by the same rules; whenever it cannot be sure to match the streaming
    way exactly (broken XML, a limit crossed, markup inside base64) it hands the input over to
    it. Both feed one model builder, :class:`_Builder`.

Lenient in
    Elements are matched by namespace URI and local name, never by prefix or position: the
    edXML namespace or no namespace (some gateways write attachments unqualified); XML-DSig
    ``Signature`` in the xmldsig namespace, the edXML namespace or none. Unknown elements are
    ignored. A ``From`` nested in a ``From`` is read from the innermost one, falling back to the
    outer levels field by field. TraceHeader OrganId ``null`` or missing is ``None``. Dates are
    read as ``yyyy/MM/dd``, ``dd/MM/yyyy`` or ``yyyy-MM-dd`` (a time part is ignored), times as
    the same dates followed by ``HH:mm[:ss]``, giving aware datetimes in +07:00 (an explicit
    offset is honoured and converted). Text is stripped; an empty element counts as absent. BOM,
    CRLF and indentation are simply XML.

What cannot be read
    *Essential* values raise :class:`InvalidValueError` with their path (e.g.
    ``MessageHeader/To[2]/OrganId``): the OrganId of From and of each To, StatusCode,
    BussinessDocType, an attachment's base64 content. Every other typed value (dates, numbers,
    Priority, booleans) that cannot be read is dropped (``None``) and reported to
    ``on_warning`` as a :class:`~edxml.model.Problem` of severity ``warning``.

Safe by construction
    No DTD at all (any DOCTYPE is refused with :class:`UnsafeXmlError` before its subset is
    used), no entity expansion, no network, and :class:`~edxml.limits.Limits` on input size
    (checked up front when the size is known, and while streaming), depth, element count, text
    length and attachment count.

Where it lives
    This module: :func:`parse`, reading the input (bytes, path or file) and the streaming
    target :class:`_Target`. :mod:`edxml.fastpath`: the tree way for small inputs.
    :mod:`edxml.smalltree`: the small tree both ways build, its lookups and where attachment
    content goes. :mod:`edxml.values`: typed values read from text and the model builder.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import BinaryIO, TypeAlias

from lxml import etree

from edxml.attachments import AttachmentSink
from edxml.errors import (
    LimitExceededError,
    NotEdxmlError,
    NotWellFormedError,
    UnsafeXmlError,
)
from edxml.fastpath import _FEED_CHARS as _FEED_CHARS
from edxml.fastpath import _Fallback, _parse_tree
from edxml.fastpath import _tree_parser as _tree_parser
from edxml.limits import DEFAULT_LIMITS, Limits, MiB
from edxml.model import NAMESPACE, Envelope, StatusMessage
from edxml.safexml import xml_parser
from edxml.smalltree import (
    _DOCTYPE_MESSAGE,
    _EDXML_NS,
    _SIGNATURE_NS,
    _UNSET,
    _attachment_meta,
    _cid_key,
    _kid_text,
    _Node,
    _Outputs,
    _split,
)
from edxml.values import WarningHandler, _Builder
from edxml.values import parse_date as parse_date
from edxml.values import parse_timestamp as parse_timestamp

# Imported as themselves (``x as x``), re-exported: other code reads parse_date and
# parse_timestamp, and the tree way's _tree_parser and _FEED_CHARS, from this module.

Source: TypeAlias = "bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO"

CHUNK_SIZE = 1 * MiB


def parse(
    source: Source,
    *,
    sink: AttachmentSink | None = None,
    limits: Limits | None = None,
    on_warning: WarningHandler | None = None,
) -> Envelope | StatusMessage:
    """Read an edXML document package or status message.

    ``source`` is the document's bytes, a path (``str`` or ``os.PathLike``) or a binary file
    object (read from its current position, not closed). With ``sink``, attachment bytes
    stream into it and each :class:`Attachment` has ``data=None`` with ``size``, ``sha256`` and
    whatever opener the sink returned; without, they are decoded into ``Attachment.data`` up to
    ``limits.max_inline_attachment`` each (``max_inline_total`` together), beyond which
    :class:`LimitExceededError` asks for a sink.

    Returns a :class:`StatusMessage` when MessageHeader has a StatusCode and no To, otherwise an
    :class:`Envelope`. Raises an :class:`EdxmlError` subclass for every bad input:
    :class:`NotWellFormedError` (not XML, empty, broken: the message names the line and the
    element), :class:`UnsafeXmlError`, :class:`LimitExceededError`, :class:`NotEdxmlError`
    (XML of another kind), :class:`InvalidValueError` (an essential value unreadable). A path
    that cannot be opened raises the usual :class:`OSError`.
    """
    lim = limits or DEFAULT_LIMITS
    _check_source(source)
    data = _small_input(source, lim)
    if data is not None:
        try:
            return _parse_tree(data, lim, sink, on_warning)
        except _Fallback:
            # Something the tree way does not decide exactly (broken XML, a limit crossed, an
            # odd structure): the streaming way is the reference for results and errors.
            source = data
    target = _Target(lim, sink)
    parser = xml_parser(target=target, huge_tree=False, remove_comments=False)
    chunks = _chunks(source, lim)
    try:
        seen = 0
        for chunk in chunks:
            seen += len(chunk)
            if seen > lim.max_size:
                raise LimitExceededError(_size_message(lim))
            parser.feed(chunk)
        if seen == 0:
            raise NotWellFormedError("the input is empty")
        parser.close()
    except etree.XMLSyntaxError as exc:
        target.abort()
        raise _not_well_formed(exc) from None
    except BaseException:
        target.abort()
        raise
    finally:
        chunks.close()  # closes a file we opened, even when parsing stopped early
    assert target.root is not None  # lxml raises before an empty document ends
    try:
        return _Builder(on_warning).build(target.root, target.signature)
    except BaseException:
        target.abort()
        raise


# --- input ---------------------------------------------------------------------------------


def _size_message(lim: Limits) -> str:
    return f"the input is larger than the limit of {lim.max_size} bytes"


def _check_source(source: Source) -> None:
    if isinstance(source, str) and source.lstrip("\ufeff \t\r\n").startswith("<"):
        raise TypeError("edxml.parse: a str is a file path; pass XML text as bytes")


def _small_input(source: Source, lim: Limits) -> bytes | None:
    """The whole input when its size is known and small enough for the tree way, else None.

    Reads a path or a seekable file (from its current position) only when it qualifies.
    """
    ceiling = min(lim.tree_max_size, lim.max_size)
    if isinstance(source, bytes):
        return source if len(source) <= ceiling else None
    if isinstance(source, bytearray | memoryview):
        return bytes(source) if memoryview(source).nbytes <= ceiling else None
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > ceiling:
                return None
            # One byte more than announced tells a file that grew meanwhile: it streams.
            data = stream.read(size + 1)
        return data if len(data) <= ceiling else None
    if hasattr(source, "read"):
        remaining = _remaining_size(source)
        if remaining is None or remaining > ceiling:
            return None
        here = source.tell()
        data = source.read(remaining + 1)
        if not isinstance(data, bytes):
            raise TypeError("edxml.parse: the file must be opened in binary mode")
        if len(data) > ceiling:
            source.seek(here)
            return None
        return data
    return None


def _chunks(source: Source, lim: Limits) -> Generator[bytes, None, None]:
    """Yield the input in chunks, refusing up front an input known to exceed max_size."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > lim.max_size:
            raise LimitExceededError(_size_message(lim))
        for start in range(0, len(data), CHUNK_SIZE):
            yield data[start : start + CHUNK_SIZE]
        return
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.stat().st_size > lim.max_size:
            raise LimitExceededError(_size_message(lim))
        with path.open("rb") as stream:
            yield from _read_stream(stream)
        return
    if hasattr(source, "read"):
        remaining = _remaining_size(source)
        if remaining is not None and remaining > lim.max_size:
            raise LimitExceededError(_size_message(lim))
        yield from _read_stream(source)
        return
    raise TypeError(f"edxml.parse: cannot read a {type(source).__name__}")


def _read_stream(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        if not isinstance(chunk, bytes):
            raise TypeError("edxml.parse: the file must be opened in binary mode")
        yield chunk


def _remaining_size(stream: BinaryIO) -> int | None:
    """Bytes left in a file object, if it can tell without reading them."""
    try:
        if stream.seekable():
            here = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(here)
            return end - here
    except (OSError, ValueError, AttributeError):
        pass
    return None


_MISMATCH = re.compile(r"Opening and ending tag mismatch: ([^\s,]+) line (\d+) and ([^\s,]+)")
_PREMATURE = re.compile(r"Premature end of data in tag ([^\s,]+) line (\d+)")


def _not_well_formed(exc: etree.XMLSyntaxError) -> NotWellFormedError:
    """Turn libxml2's message into a plain one that names the line and the element."""
    msg = str(exc.msg or exc)
    line = exc.lineno or None
    mismatch = _MISMATCH.search(msg)
    if mismatch:
        opened, opened_line, closing = mismatch.groups()
        return NotWellFormedError(
            f"not well-formed XML: element <{opened}> opened at line {opened_line} is still "
            f"open when </{closing}> closes at line {line}",
            line=line,
        )
    premature = _PREMATURE.search(msg)
    if premature:
        opened, opened_line = premature.groups()
        return NotWellFormedError(
            f"not well-formed XML: the input ends while element <{opened}> opened at line "
            f"{opened_line} is still open",
            line=line,
        )
    if line == 0:
        line = None
    if "Start tag expected" in msg and line == 1:
        return NotWellFormedError("not XML: the input does not start with an XML element", line=1)
    text = re.sub(r",? line \d+, column \d+$", "", msg).strip()
    return NotWellFormedError(f"not well-formed XML: {text}", line=line)


# --- the parser target ----------------------------------------------------------------------


class _Target:
    """lxml parser target: builds the small tree and streams attachment content."""

    def __init__(self, limits: Limits, sink: AttachmentSink | None) -> None:
        self.limits = limits
        self.sink = sink
        self.root: _Node | None = None
        # One entry per open element: the node (None for ignored/captured elements).
        self.stack: list[_Node | None] = []
        self.scopes: list[dict[str, str]] = [{}]
        self.elements = 0
        self.attachment_count = 0
        self.manifest: dict[str, _Node] = {}
        self.outputs = _Outputs(limits, sink, background_hash=True)
        self.signature: bytes | None = None
        self.sig_builder: etree.TreeBuilder | None = None
        self.sig_depth = 0
        self.sig_chars = 0

    # lxml callbacks

    def doctype(self, name: str | None, public_id: str | None, system_url: str | None) -> None:
        raise UnsafeXmlError(_DOCTYPE_MESSAGE)

    def start(self, tag: str, attrib: dict[str, str], nsmap: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise LimitExceededError(
                f"more than {self.limits.max_elements} elements", path=self._path()
            )
        if len(self.stack) >= self.limits.max_depth:
            raise LimitExceededError(
                f"elements nested deeper than {self.limits.max_depth}", path=self._path()
            )
        scope = self.scopes[-1]
        if nsmap:
            scope = {**scope, **nsmap}
        self.scopes.append(scope)
        ns, local = _split(tag)

        if self.sig_builder is not None:
            self.sig_depth += 1
            self.sig_builder.start(tag, attrib)  # type: ignore[arg-type]
            self.stack.append(None)
            return
        if self.outputs.current is not None:
            # Markup inside base64 content is not ours to interpret; skip it.
            self.stack.append(None)
            return
        if self.root is None:
            if local != "edXML" or ns not in _EDXML_NS:
                raise NotEdxmlError(
                    f"the root element is <{local}>"
                    + (f" in namespace {ns}" if ns else "")
                    + f", not <edXML> in namespace {NAMESPACE}"
                )
            self.root = _Node(ns, local)
            self.stack.append(self.root)
            return
        parent = self.stack[-1]
        if parent is None:
            self.stack.append(None)
            return
        if (
            local == "Signature"
            and ns in _SIGNATURE_NS
            and self.signature is None
            and not self._inside("AttachmentEncoded")
        ):
            self.sig_builder = etree.TreeBuilder()
            self.sig_depth = 1
            self.sig_chars = 0
            nsmap_out = {(k or None): v for k, v in scope.items()}
            self.sig_builder.start(tag, attrib, nsmap_out)  # type: ignore[arg-type, call-arg]
            self.stack.append(None)
            return
        if parent.parts and not "".join(parent.parts).strip():
            parent.parts.clear()  # indentation before a child
            parent.nchars = 0
        if (
            local == "ContentTransferEncoded"
            and ns in _EDXML_NS
            and parent.tag == "Attachment"
            and parent.result is None
        ):
            self._open_attachment(parent)
            self.stack.append(None)
            return
        if local == "Attachment" and ns in _EDXML_NS and parent.tag == "AttachmentEncoded":
            self.attachment_count += 1
            if self.attachment_count > self.limits.max_attachments:
                raise LimitExceededError(
                    f"more than {self.limits.max_attachments} attachments", path=self._path()
                )
        node = _Node(ns, local)
        parent.children.append(node)
        parent.index = parent.texts = None
        self.stack.append(node)

    def data(self, text: str) -> None:
        current = self.outputs.current
        if current is not None:
            current.decoder.feed(text)
            return
        if self.sig_builder is not None:
            self.sig_chars += len(text)
            if self.sig_chars > self.limits.max_text:
                raise LimitExceededError(
                    f"Signature holds more than {self.limits.max_text} characters of text",
                    path=self._path(),
                )
            self.sig_builder.data(text)
            return
        if not self.stack:
            return
        node = self.stack[-1]
        if node is None:
            return
        node.nchars += len(text)
        if node.nchars > self.limits.max_text:
            raise LimitExceededError(
                f"element text longer than {self.limits.max_text} characters", path=self._path()
            )
        node.parts.append(text)
        node.value = _UNSET

    def end(self, tag: str) -> None:
        node = self.stack.pop()
        self.scopes.pop()
        if self.sig_builder is not None:
            self.sig_builder.end(tag)
            self.sig_depth -= 1
            if self.sig_depth == 0:
                element = self.sig_builder.close()
                self.signature = etree.tostring(element, encoding="utf-8")
                self.sig_builder = None
            return
        if self.outputs.current is not None and node is None and self._closes_streaming():
            attachment = self.stack[-1]
            assert attachment is not None
            attachment.result = self.outputs.close()
            return
        if node is None or not self.stack:
            return
        parent = self.stack[-1]
        if parent is None:
            return
        if node.tag == "Reference" and parent.tag == "edXMLManifest":
            key = _cid_key(_kid_text(node, "ContentId"))
            if key:
                self.manifest.setdefault(key, node)

    def comment(self, text: str) -> None:
        if self.sig_builder is not None:
            self.sig_builder.comment(text)

    def pi(self, target: str, data: str | None = None) -> None:
        if self.sig_builder is not None:
            self.sig_builder.pi(target, data)

    def close(self) -> None:
        return None

    # attachment streaming

    def _closes_streaming(self) -> bool:
        # The ContentTransferEncoded element is the one whose parent is the Attachment node on
        # top of the stack once it is popped.
        return (
            bool(self.stack) and self.stack[-1] is not None and self.stack[-1].tag == ("Attachment")
        )

    def _open_attachment(self, attachment: _Node) -> None:
        index = self.attachment_count - 1
        meta = _attachment_meta(index, attachment, self.manifest)
        self.outputs.open(meta, f"AttachmentEncoded/Attachment[{index + 1}]/ContentTransferEncoded")

    def abort(self) -> None:
        """Parsing failed: stop the decoder's helper thread, let the sink drop its output."""
        self.outputs.abort()

    # helpers

    def _inside(self, tag: str) -> bool:
        return any(n is not None and n.tag == tag for n in self.stack)

    def _path(self) -> str:
        names = [n.tag for n in self.stack if n is not None]
        return "/".join(names)
