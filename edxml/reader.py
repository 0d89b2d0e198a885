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
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import BinaryIO, TypeAlias

from lxml import etree

from edxml.attachments import AttachmentMeta, AttachmentSink, Base64StreamDecoder, Writable
from edxml.codes import BusinessDocType, Priority, StatusCode
from edxml.errors import (
    InvalidValueError,
    LimitExceededError,
    NotEdxmlError,
    NotWellFormedError,
    UnsafeXmlError,
)
from edxml.limits import DEFAULT_LIMITS, Limits, MiB
from edxml.model import (
    DSIG_NAMESPACE,
    NAMESPACE,
    VN_TZ,
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Problem,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from edxml.safexml import has_doctype, xml_parser

Source: TypeAlias = "bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO"
WarningHandler: TypeAlias = Callable[[Problem], None]

CHUNK_SIZE = 1 * MiB
_EDXML_NS = frozenset({NAMESPACE, ""})
_SIGNATURE_NS = frozenset({DSIG_NAMESPACE, NAMESPACE, ""})


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


class _Node:
    """One element of the small tree kept for header, manifest and attachment metadata.

    The streaming target collects an element's text in ``parts``; the tree reader leaves it
    in the lxml element ``el`` and :meth:`text` reads it from there only when asked. ``index``
    (built on first lookup, dropped when a child is added) maps a local name to the children of
    that name in the edXML namespace or none, in document order; ``value`` caches :meth:`text`
    (dropped when text is added).
    """

    __slots__ = (
        "children",
        "el",
        "index",
        "nchars",
        "ns",
        "parts",
        "result",
        "tag",
        "texts",
        "value",
    )

    def __init__(self, ns: str, tag: str, el: etree._Element | None = None) -> None:
        self.ns = ns
        self.tag = tag
        self.el = el
        self.children: list[_Node] = []
        self.parts: list[str] = []
        self.nchars = 0
        self.result: _Streamed | None = None
        self.index: dict[str, list[_Node]] | None = None
        self.texts: dict[str, str | None] | None = None
        self.value: str | _Unset | None = _UNSET

    def text(self) -> str | None:
        """The element's own text (children's text excluded), stripped; None when empty."""
        value = self.value
        if value is _UNSET:
            el = self.el
            if el is None:
                text = "".join(self.parts)
            elif len(el):
                # What the streaming target collects: the text before the first child and
                # after each child (comments, PIs, Signature and content included).
                text = "".join([el.text or "", *[child.tail or "" for child in el]])
            else:
                text = el.text or ""
            value = self.value = text.strip() or None
        assert not isinstance(value, _Unset)
        return value

    def kids(self, name: str) -> list[_Node]:
        """Children called ``name`` in the edXML namespace or none (do not modify)."""
        index = self.index
        if index is None:
            index = self.index = {}
            for child in self.children:
                if child.ns in _EDXML_NS:
                    found = index.get(child.tag)
                    if found is None:
                        index[child.tag] = [child]
                    else:
                        found.append(child)
        return index.get(name, _NO_NODES)

    def first_texts(self) -> dict[str, str | None]:
        """Local name -> text of the first child of that name (cached like ``index``).

        Only asked once the children in question are complete (both readers ensure it).
        """
        texts = self.texts
        if texts is None:
            index = self.index
            if index is None:
                self.kids("")
                index = self.index
                assert index is not None
            texts = self.texts = {name: nodes[0].text() for name, nodes in index.items()}
        return texts


class _Unset:
    """Type of the marker for a text not computed yet."""


_UNSET = _Unset()
_NO_NODES: list[_Node] = []


class _Streamed:
    """What became of one attachment's content."""

    __slots__ = ("data", "opener", "sha256", "size")

    def __init__(
        self,
        size: int,
        sha256: str,
        data: bytes | None,
        opener: Callable[[], BinaryIO] | None,
    ) -> None:
        self.size = size
        self.sha256 = sha256
        self.data = data
        self.opener = opener


_DOCTYPE_MESSAGE = (
    "the document declares a DOCTYPE (DTD); edXML never needs one and DTDs are "
    "refused for safety (entities, external references)"
)
# The tree way hands base64 text to the decoder in slices of this many characters.
_FEED_CHARS = 1024 * 1024


def _inline_message(limit: int) -> str:
    return (
        f"attachment larger than the {limit} bytes kept in memory; "
        "pass sink= to edxml.parse to stream it"
    )


def _attachment_meta(index: int, attachment: _Node, manifest: dict[str, _Node]) -> AttachmentMeta:
    """What the sink learns when an attachment starts: its own fields met so far, completed
    from the manifest entry with the same ContentId (if that entry came earlier)."""
    content_id = _kid_text(attachment, "ContentId")
    ref = manifest.get(_cid_key(content_id)) if content_id else None

    def pick(name: str) -> str | None:
        own = _kid_text(attachment, name)
        if own is None and ref is not None:
            return _kid_text(ref, name)
        return own

    return AttachmentMeta(
        index=index,
        content_id=content_id,
        name=pick("AttachmentName"),
        content_type=pick("ContentType"),
        description=pick("Description"),
    )


def _split(tag: str) -> tuple[str, str]:
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _cid_key(content_id: str | None) -> str:
    """ContentId compared without ``cid:``, angle brackets or surrounding space."""
    value = (content_id or "").strip()
    if value[:4].lower() == "cid:":
        value = value[4:]
    return value.strip().strip("<>").strip()


class _Open:
    """An attachment whose content is being decoded."""

    __slots__ = ("decoder", "meta", "writer")

    def __init__(
        self, meta: AttachmentMeta, writer: Writable, decoder: Base64StreamDecoder
    ) -> None:
        self.meta = meta
        self.writer = writer
        self.decoder = decoder


class _Outputs:
    """Where attachment content goes: the sink's writers, or memory within the inline limits.

    Both ways of reading decode through one of these, so they open, finish and clean up
    attachments alike. ``current`` is the attachment being decoded (None between them).
    """

    def __init__(
        self, limits: Limits, sink: AttachmentSink | None, *, background_hash: bool
    ) -> None:
        self.limits = limits
        self.sink = sink
        self.background_hash = background_hash
        self.current: _Open | None = None
        self.finished: list[tuple[AttachmentMeta, Writable]] = []
        self.inline_total = 0

    def open(self, meta: AttachmentMeta, path: str) -> Base64StreamDecoder:
        """Start decoding an attachment; return the decoder to feed its base64 text."""
        writer: Writable
        if self.sink is not None:
            writer = self.sink.open(meta)
            decoder = Base64StreamDecoder(writer, path=path, background_hash=self.background_hash)
        else:
            writer = io.BytesIO()
            room = self.limits.max_inline_total - self.inline_total
            limit = min(self.limits.max_inline_attachment, room)
            decoder = Base64StreamDecoder(
                writer,
                path=path,
                limit=limit,
                limit_message=_inline_message(limit),
                background_hash=self.background_hash,
            )
        self.current = _Open(meta, writer, decoder)
        return decoder

    def close(self) -> _Streamed:
        """Finish the current attachment: its bytes in memory, or handed to the sink."""
        current = self.current
        assert current is not None
        size, sha256 = current.decoder.finish()
        self.current = None
        if self.sink is None:
            assert isinstance(current.writer, io.BytesIO)
            self.inline_total += size
            return _Streamed(size, sha256, current.writer.getvalue(), None)
        self.finished.append((current.meta, current.writer))
        opener = self.sink.close(current.meta, current.writer, size=size, sha256=sha256)
        return _Streamed(size, sha256, None, opener)

    def abort(self) -> None:
        """Parsing failed: stop the decoder's helper thread, let the sink drop its output."""
        if self.current is not None:
            self.current.decoder.close()
            if self.sink is not None:
                self.sink.abort(self.current.meta, self.current.writer)
            self.current = None
        if self.sink is None:
            return
        for meta, writer in self.finished:
            self.sink.abort(meta, writer)
        self.finished.clear()


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


# --- the tree way, for small inputs -------------------------------------------------------


class _Fallback(Exception):
    """The tree way cannot decide this input exactly; parse it by streaming instead."""


_local = threading.local()
_SPLIT_CACHE: dict[str, tuple[str, str]] = {}
_SPLIT_CACHE_MAX = 4096


def _tree_parser() -> etree.XMLParser:
    """This thread's hardened tree parser (lxml parsers must not be shared between threads)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = xml_parser(huge_tree=False, remove_comments=False, remove_pis=False)
        _local.parser = parser
    return parser


def _split_cached(tag: str) -> tuple[str, str]:
    found = _SPLIT_CACHE.get(tag)
    if found is None:
        found = _split(tag)
        if len(_SPLIT_CACHE) < _SPLIT_CACHE_MAX:  # bounded: hostile inputs invent tags
            _SPLIT_CACHE[tag] = found
    return found


def _parse_tree(
    data: bytes,
    lim: Limits,
    sink: AttachmentSink | None,
    on_warning: WarningHandler | None,
) -> Envelope | StatusMessage:
    """Parse a small input with libxml2 into a tree, then read it like the streaming target.

    Gives exactly what the streaming way gives or raises :class:`_Fallback` before any sink is
    touched when it cannot be sure: XML that is not well-formed, a limit crossed, content
    markup inside ``ContentTransferEncoded``. The parser is hardened the same way (no DTD
    loading, no entity expansion, no network, libxml2's own size and depth limits), a DOCTYPE is
    refused as soon as the tree exists, external resources are never loaded, and the element
    limit is checked before parsing (each element needs a ``<``), so the tree stays bounded.
    """
    # An element takes at least 4 bytes (<a/>): count only when the limit could be crossed.
    if len(data) >= 4 * lim.max_elements and data.count(b"<") > lim.max_elements:
        raise _Fallback
    try:
        root = etree.fromstring(data, _tree_parser())
    except etree.XMLSyntaxError:
        raise _Fallback from None
    if has_doctype(root.getroottree()):
        raise UnsafeXmlError(_DOCTYPE_MESSAGE)
    reader = _TreeReader(lim, sink, len(data))
    node = reader.read(root)
    try:
        reader.decode_attachments()
        return _Builder(on_warning).build(node, reader.signature)
    except BaseException:
        reader.abort()
        raise


class _Job:
    """An attachment found in the tree, decoded once the whole tree has been checked."""

    __slots__ = ("meta", "node", "path", "text")

    def __init__(self, node: _Node, meta: AttachmentMeta, text: str, path: str) -> None:
        self.node = node
        self.meta = meta
        self.text = text
        self.path = path


# Local names that need more than a plain node in the tree reader.
_SPECIAL = frozenset({"Signature", "ContentTransferEncoded", "Attachment"})


class _TreeReader:
    """Turns an lxml tree into the small :class:`_Node` tree, by the rules of :class:`_Target`.

    Every rule of ``_Target.start/data/end`` has its counterpart here, in document order, so
    that attachment indexes, the manifest entries an attachment sees when it starts, and the
    Signature bytes are the same. Where ``_Target`` would raise, this raises :class:`_Fallback`
    (the streaming way then raises the exact error, with its path).
    """

    def __init__(self, limits: Limits, sink: AttachmentSink | None, size: int) -> None:
        self.limits = limits
        self.sink = sink
        self.check_text = size > limits.max_text
        self.attachment_count = 0
        self.manifest: dict[str, _Node] = {}
        self.signature: bytes | None = None
        self.jobs: list[_Job] = []
        # The text is all there at once: nothing to overlap hashing with, no thread hand-off.
        self.outputs = _Outputs(limits, sink, background_hash=False)

    def read(self, root: etree._Element) -> _Node:
        ns, local = _split_cached(root.tag)
        if local != "edXML" or ns not in _EDXML_NS:
            raise _Fallback  # the streaming way names the root in its error
        node = _Node(ns, local, root)
        self._fill(root, node, 0, False)
        return node

    def _fill(self, el: etree._Element, node: _Node, depth: int, in_encoded: bool) -> None:
        """The children of ``el`` into ``node`` (``depth`` of ``el``, root 0).

        Text stays in the lxml elements until :meth:`_Node.text` asks for it. Its length is
        checked here only when the input is longer than ``max_text``: otherwise no element
        can hold more (each character takes at least one byte, and there are no entities).
        """
        # Hot loop: locals and inlined lookups on purpose.
        lim = self.limits
        too_deep = depth + 1 >= lim.max_depth
        split_cache = _SPLIT_CACHE
        children = node.children
        opened = False  # a ContentTransferEncoded already streamed for this Attachment
        tag_name = node.tag
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):
                if tag is not etree.Comment and tag is not etree.PI:
                    raise _Fallback  # an entity reference: only with a DTD, refused anyway
                continue
            if too_deep:
                raise _Fallback
            split = split_cache.get(tag)
            ns, local = split if split is not None else _split_cached(tag)
            if local in _SPECIAL:
                if (
                    local == "Signature"
                    and ns in _SIGNATURE_NS
                    and self.signature is None
                    and not in_encoded
                ):
                    self.signature = self._signature(child, depth + 1)
                    continue
                if (
                    local == "ContentTransferEncoded"
                    and tag_name == "Attachment"
                    and ns in _EDXML_NS
                    and not opened
                ):
                    opened = True
                    self._attachment(child, node)
                    continue
                if local == "Attachment" and tag_name == "AttachmentEncoded" and ns in _EDXML_NS:
                    self.attachment_count += 1
                    if self.attachment_count > lim.max_attachments:
                        raise _Fallback
            kid = _Node(ns, local, child)
            children.append(kid)
            if len(child):
                self._fill(child, kid, depth + 1, in_encoded or local == "AttachmentEncoded")
            elif self.check_text and len(child.text or "") > lim.max_text:
                raise _Fallback
            if local == "Reference" and tag_name == "edXMLManifest":
                key = _cid_key(_kid_text(kid, "ContentId"))
                if key:
                    self.manifest.setdefault(key, kid)
        if self.check_text and len(el):
            length = len(el.text or "") + sum(len(child.tail or "") for child in el)
            if length > lim.max_text:
                raise _Fallback

    def _attachment(self, content: etree._Element, attachment: _Node) -> None:
        """Note a ContentTransferEncoded element: its metadata now, its bytes later."""
        if len(content):
            raise _Fallback  # markup inside base64: the streaming way decides
        index = self.attachment_count - 1
        meta = _attachment_meta(index, attachment, self.manifest)
        attachment.index = attachment.texts = None  # children after the content are to come
        path = f"AttachmentEncoded/Attachment[{index + 1}]/ContentTransferEncoded"
        self.jobs.append(_Job(attachment, meta, content.text or "", path))

    def _signature(self, el: etree._Element, depth: int) -> bytes:
        """The Signature's bytes, built exactly as ``_Target`` builds them from events."""
        # In-scope namespaces in the order the streaming target accumulates them: from the
        # root down, each element adding the declarations made on it.
        chain = [el, *el.iterancestors()]
        scope: dict[str | None, str] = {}
        above: dict[str | None, str] = {}
        for ancestor in reversed(chain):
            here = ancestor.nsmap
            for prefix, uri in here.items():
                if prefix not in above or above[prefix] != uri:
                    scope[prefix] = uri
            above = here
        builder = etree.TreeBuilder()
        try:
            builder.start(el.tag, dict(el.attrib), scope)  # type: ignore[call-arg]
            chars = self._replay(builder, el, depth)
            builder.end(el.tag)
            element = builder.close()
        except _Fallback:
            raise
        except Exception:  # whatever TreeBuilder refuses, let the streaming way meet it
            raise _Fallback from None
        if chars > self.limits.max_text:
            raise _Fallback
        return etree.tostring(element, encoding="utf-8")

    def _replay(self, builder: etree.TreeBuilder, el: etree._Element, depth: int) -> int:
        """Send ``el``'s content to ``builder`` as parser events; return its text length."""
        chars = 0
        text = el.text
        if text:
            chars += len(text)
            builder.data(text)
        for child in el:
            tag = child.tag
            if isinstance(tag, str):
                if depth + 1 >= self.limits.max_depth:
                    raise _Fallback
                builder.start(tag, dict(child.attrib))
                chars += self._replay(builder, child, depth + 1)
                builder.end(tag)
            elif tag is etree.Comment:
                builder.comment(child.text or "")
            elif tag is etree.PI:
                assert isinstance(child, etree._ProcessingInstruction)
                builder.pi(child.target, child.text)
            else:
                raise _Fallback
            tail = child.tail
            if tail:
                chars += len(tail)
                builder.data(tail)
        return chars

    def decode_attachments(self) -> None:
        """Decode every attachment in document order, through the sink as streaming does."""
        for job in self.jobs:
            decoder = self.outputs.open(job.meta, job.path)
            text, job.text = job.text, ""
            if len(text) <= _FEED_CHARS:
                decoder.feed(text)
            else:  # slices keep the decoder's temporary copies small
                for start in range(0, len(text), _FEED_CHARS):
                    decoder.feed(text[start : start + _FEED_CHARS])
            job.node.result = self.outputs.close()

    def abort(self) -> None:
        """Same clean-up as ``_Target.abort``."""
        self.outputs.abort()


# --- tree lookups --------------------------------------------------------------------------


def _kids(node: _Node | None, *names: str) -> list[_Node]:
    """Children with one of these local names, in document order."""
    if node is None:
        return _NO_NODES
    if len(names) == 1:
        return node.kids(names[0])
    return [c for c in node.children if c.tag in names and c.ns in _EDXML_NS]


def _kid(node: _Node | None, *names: str) -> _Node | None:
    """The first child with one of these local names."""
    if node is None:
        return None
    found = node.kids(names[0]) if len(names) == 1 else _kids(node, *names)
    return found[0] if found else None


def _kid_text(node: _Node | None, *names: str) -> str | None:
    """The text of the first child with one of these local names."""
    if node is None:
        return None
    found = node.kids(names[0]) if len(names) == 1 else _kids(node, *names)
    return found[0].text() if found else None


def _find(node: _Node | None, name: str) -> _Node | None:
    """First descendant of that name (breadth first), outside AttachmentEncoded."""
    if node is None:
        return None
    queue = [node]
    while queue:
        current = queue.pop(0)
        for child in current.children:
            if child.tag == name and child.ns in _EDXML_NS:
                return child
            if child.tag != "AttachmentEncoded":
                queue.append(child)
    return None


# --- values --------------------------------------------------------------------------------

_DATE_YMD = r"(?P<y>\d{4})[/.-](?P<m>\d{1,2})[/.-](?P<d>\d{1,2})"
_DATE_DMY = r"(?P<d2>\d{1,2})[/.-](?P<m2>\d{1,2})[/.-](?P<y2>\d{4})"
_TIME = r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d+)?)?)?"
_ZONE = r"\s*(?P<z>Z|[+-]\d{2}:?\d{2})?"
_WHEN = re.compile(rf"^(?:{_DATE_YMD}|{_DATE_DMY}){_TIME}{_ZONE}$")


def parse_date(text: str) -> date | None:
    """A date in ``yyyy/MM/dd``, ``dd/MM/yyyy`` or ``yyyy-MM-dd`` (time part ignored)."""
    parsed = _parse_when(text)
    return parsed[0] if parsed else None


def parse_timestamp(text: str) -> datetime | None:
    """A time ``yyyy/MM/dd HH:mm:ss`` or ``dd/MM/yyyy HH:mm:ss`` (or ISO) in +07:00.

    edXML times carry no offset and are Vietnamese local time; an explicit offset (ISO form)
    is honoured and converted to +07:00. A bare date means midnight.
    """
    parsed = _parse_when(text)
    if parsed is None:
        return None
    day, clock, zone = parsed
    moment = datetime.combine(day, clock or time(0, 0), tzinfo=zone or VN_TZ)
    return moment.astimezone(VN_TZ)


def _parse_when(text: str) -> tuple[date, time | None, tzinfo | None] | None:
    match = _WHEN.match(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    year, month, day = (
        (g["y"], g["m"], g["d"]) if g["y"] is not None else (g["y2"], g["m2"], g["d2"])
    )
    try:
        day_value = date(int(year), int(month), int(day))
        clock = None
        if g["H"] is not None:
            clock = time(int(g["H"]), int(g["M"]), int(g["S"] or 0))
    except ValueError:
        return None
    zone: tzinfo | None = None
    if g["z"]:
        z = g["z"]
        if z == "Z":
            zone = UTC
        else:
            sign = -1 if z[0] == "-" else 1
            digits = z[1:].replace(":", "")
            zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return day_value, clock, zone


_TRUE = {"true", "1", "yes", "có"}
# Empty values compared against, made once.
_BLANK_RESPONSEFOR = ResponseFor()
_BLANK_STAFFINFO = StaffInfo()
_BLANK_CODE = Code()
_BLANK_PROMULGATIONINFO = PromulgationInfo()
_BLANK_DOCUMENTTYPE = DocumentType()
_BLANK_SIGNERINFO = SignerInfo()
_BLANK_OTHERINFO = OtherInfo()
_FALSE = {"false", "0", "no", "không"}


class _Builder:
    """Maps the small tree to the model, applying the leniency policy of this module."""

    def __init__(self, on_warning: WarningHandler | None) -> None:
        self.on_warning = on_warning

    def warn(self, path: str, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(Problem(path=path, message=message, severity="warning"))

    # typed values

    def int_(self, node: _Node | None, name: str, path: str) -> int | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            self.warn(f"{path}/{name}", f"{text!r} is not a whole number; ignored")
            return None

    def bool_(self, node: _Node | None, name: str, path: str) -> bool | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        self.warn(f"{path}/{name}", f"{text!r} is not true/false; ignored")
        return None

    def date_(self, node: _Node | None, name: str, path: str) -> date | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        value = parse_date(text)
        if value is None:
            self.warn(f"{path}/{name}", f"{text!r} is not a date (yyyy/MM/dd); ignored")
        return value

    def timestamp(self, node: _Node | None, name: str, path: str) -> datetime | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        value = parse_timestamp(text)
        if value is None:
            self.warn(f"{path}/{name}", f"{text!r} is not a time (yyyy/MM/dd HH:mm:ss); ignored")
        return value

    # the document

    def build(self, root: _Node, signature: bytes | None) -> Envelope | StatusMessage:
        """The model for the small tree whose root is ``root``."""
        envelope = _kid(root, "edXMLEnvelope") or _find(root, "edXMLEnvelope") or root
        header_block = _find(envelope, "edXMLHeader")
        header = _find(header_block or envelope, "MessageHeader")
        if header is None:
            raise NotEdxmlError("no MessageHeader: this is not an edXML package or status")
        trace_list = _find(header_block or envelope, "TraceHeaderList")
        traces = self.trace_headers(trace_list)
        business = self.business(
            _kid(trace_list, "Bussiness", "Business")
            or _kid(header_block, "Bussiness", "Business")
            or _kid(header, "Bussiness", "Business")
        )
        status_text = _kid_text(header, "StatusCode")
        if status_text is not None and not _kids(header, "To"):
            return StatusMessage(
                from_=self.organization(_kid(header, "From"), "MessageHeader/From"),
                response_for=self.response_for(_kid(header, "ResponseFor"), "ResponseFor")
                or ResponseFor(),
                status_code=self.status_code(status_text),
                staff_info=self.staff_info(_kid(header, "StaffInfo")),
                description=_kid_text(header, "Description"),
                timestamp=self.timestamp(header, "Timestamp", "MessageHeader"),
                trace_headers=traces,
                business=business,
                signature=signature,
            )
        manifest = self.manifest(_find(envelope, "edXMLManifest"))
        return Envelope(
            header=self.message_header(header),
            trace_headers=traces,
            business=business,
            manifest=manifest,
            attachments=self.attachments(root, manifest),
            signature=signature,
        )

    def status_code(self, text: str) -> StatusCode:
        value = text.zfill(2) if text.isdigit() else text
        try:
            return StatusCode(value)
        except ValueError:
            known = ", ".join(c.value for c in StatusCode)
            raise InvalidValueError(
                f"unknown status code {text!r} (known: {known})", path="MessageHeader/StatusCode"
            ) from None

    def organization(self, node: _Node | None, path: str) -> Organization:
        if node is None:
            raise InvalidValueError("missing", path=path)
        # Some senders wrap From in another From: read the innermost, fall back outward.
        chain = [node]
        while (inner := _kid(chain[-1], node.tag)) is not None:
            chain.append(inner)
        if len(chain) == 1:  # the usual case: one level, its texts in one dict
            field = node.first_texts().get
        else:
            merged: dict[str, str | None] = {}
            for level in chain:  # outermost first: inner levels override where they have text
                merged.update((k, v) for k, v in level.first_texts().items() if v is not None)
            field = merged.get
        organ_id = field("OrganId")
        if organ_id is None:
            raise InvalidValueError(
                "missing organisation id (mã định danh)", path=f"{path}/OrganId"
            )
        return Organization(
            organ_id=organ_id,
            organization_in_charge=field("OrganizationInCharge"),
            organ_name=field("OrganName"),
            organ_add=field("OrganAdd"),
            email=field("Email"),
            telephone=field("Telephone"),
            fax=field("Fax"),
            website=field("Website"),
        )

    def response_for(self, node: _Node | None, path: str) -> ResponseFor | None:
        if node is None:
            return None
        value = ResponseFor(
            organ_id=_kid_text(node, "OrganId"),
            code=_kid_text(node, "Code"),
            promulgation_date=self.date_(node, "PromulgationDate", path),
            document_id=_kid_text(node, "DocumentId"),
        )
        return None if value == _BLANK_RESPONSEFOR else value

    def staff_info(self, node: _Node | None) -> StaffInfo | None:
        if node is None:
            return None
        value = StaffInfo(
            department=_kid_text(node, "Department"),
            staff=_kid_text(node, "Staff"),
            mobile=_kid_text(node, "Mobile"),
            email=_kid_text(node, "Email"),
        )
        return None if value == _BLANK_STAFFINFO else value

    def message_header(self, node: _Node) -> MessageHeader:
        p = "MessageHeader"
        to_nodes = _kids(node, "To")
        to = tuple(
            self.organization(n, f"{p}/To[{i}]" if len(to_nodes) > 1 else f"{p}/To")
            for i, n in enumerate(to_nodes, 1)
        )
        code_node = _kid(node, "Code")
        code = None
        if code_node is not None:
            code = Code(_kid_text(code_node, "CodeNumber"), _kid_text(code_node, "CodeNotation"))
            if code == _BLANK_CODE:
                code = None
        prom_node = _kid(node, "PromulgationInfo")
        promulgation = None
        if prom_node is not None:
            promulgation = PromulgationInfo(
                place=_kid_text(prom_node, "Place"),
                date=self.date_(prom_node, "PromulgationDate", f"{p}/PromulgationInfo"),
            )
            if promulgation == _BLANK_PROMULGATIONINFO:
                promulgation = None
        type_node = _kid(node, "DocumentType")
        doc_type = None
        if type_node is not None:
            doc_type = DocumentType(
                type=self.int_(type_node, "Type", f"{p}/DocumentType"),
                type_detail=self.int_(type_node, "TypeDetail", f"{p}/DocumentType"),
                type_name=_kid_text(type_node, "TypeName"),
            )
            if doc_type == _BLANK_DOCUMENTTYPE:
                doc_type = None
        signer_node = _kid(node, "SignerInfo")
        signer = None
        if signer_node is not None:
            signer = SignerInfo(
                competence=_kid_text(signer_node, "Competence"),
                position=_kid_text(signer_node, "Position"),
                full_name=_kid_text(signer_node, "FullName"),
            )
            if signer == _BLANK_SIGNERINFO:
                signer = None
        responses = []
        for i, n in enumerate(_kids(node, "ResponseFor"), 1):
            value = self.response_for(n, f"{p}/ResponseFor[{i}]")
            if value is not None:
                responses.append(value)
        steering = self.int_(node, "SteeringType", p)
        task = _kid(node, "ResponseForTask")
        return MessageHeader(
            from_=self.organization(_kid(node, "From"), f"{p}/From"),
            to=to,
            document_id=_kid_text(node, "DocumentId"),
            subject=_kid_text(node, "Subject"),
            code=code,
            promulgation_info=promulgation,
            document_type=doc_type,
            content=_kid_text(node, "Content"),
            signer_info=signer,
            due_date=self.date_(node, "DueDate", p),
            to_places=tuple(
                t for n in _kids(_kid(node, "ToPlaces"), "Place") if (t := n.text()) is not None
            ),
            other_info=self.other_info(_kid(node, "OtherInfo"), f"{p}/OtherInfo"),
            response_for=tuple(responses),
            steering_type=steering,
            response_for_task=(_kid_text(task, "TaskCode") or task.text()) if task else None,
            application_type=_kid_text(node, "ApplicationType"),
        )

    def other_info(self, node: _Node | None, path: str) -> OtherInfo | None:
        if node is None:
            return None
        priority = None
        raw = self.int_(node, "Priority", path)
        if raw is not None:
            try:
                priority = Priority(raw)
            except ValueError:
                self.warn(f"{path}/Priority", f"{raw} is not a priority (0-4); ignored")
        value = OtherInfo(
            priority=priority,
            sphere_of_promulgation=_kid_text(node, "SphereOfPromulgation"),
            typer_notation=_kid_text(node, "TyperNotation"),
            promulgation_amount=self.int_(node, "PromulgationAmount", path),
            page_amount=self.int_(node, "PageAmount", path),
            direction=self.bool_(node, "Direction", path),
            appendixes=tuple(
                t
                for n in _kids(_kid(node, "Appendixes"), "Appendix")
                if (t := n.text()) is not None
            ),
        )
        return None if value == _BLANK_OTHERINFO else value

    def trace_headers(self, node: _Node | None) -> tuple[TraceHeader, ...]:
        traces = []
        for i, n in enumerate(_kids(node, "TraceHeader"), 1):
            organ_id = _kid_text(n, "OrganId")
            if organ_id is not None and organ_id.lower() == "null":
                organ_id = None  # written by an axis that had no id to put there
            traces.append(
                TraceHeader(
                    organ_id=organ_id,
                    timestamp=self.timestamp(n, "Timestamp", f"TraceHeaderList/TraceHeader[{i}]"),
                )
            )
        return tuple(traces)

    def business(self, node: _Node | None) -> Business | None:
        if node is None:
            return None
        path = "TraceHeaderList/Bussiness"
        raw = _kid_text(node, "BussinessDocType", "BusinessDocType")
        doc_type = BusinessDocType.NEW
        if raw is not None:
            try:
                doc_type = BusinessDocType(int(raw))
            except ValueError:
                raise InvalidValueError(
                    f"unknown business type {raw!r} (0 new, 1 revoke, 2 update, 3 replace)",
                    path=f"{path}/BussinessDocType",
                ) from None
        info_node = _kid(node, "BussinessDocumentInfo", "BusinessDocumentInfo")
        info = None
        if info_node is not None:
            ipath = f"{path}/BussinessDocumentInfo"
            receivers = []
            for i, r in enumerate(_kids(_kid(info_node, "ReceiverList"), "Receiver"), 1):
                organ_id = _kid_text(r, "OrganId")
                rpath = f"{ipath}/ReceiverList/Receiver[{i}]"
                if organ_id is None:
                    self.warn(f"{rpath}/OrganId", "receiver without OrganId; ignored")
                    continue
                receivers.append(Receiver(organ_id, self.int_(r, "ReceiverType", rpath)))
            info = BusinessDocumentInfo(
                document_info=self.int_(info_node, "DocumentInfo", ipath),
                document_receiver=self.int_(info_node, "DocumentReceiver", ipath),
                receivers=tuple(receivers),
            )
        replacements = []
        for i, r in enumerate(_kids(_kid(node, "ReplacementInfoList"), "ReplacementInfo"), 1):
            document_id = _kid_text(r, "DocumentId")
            if document_id is None:
                self.warn(
                    f"{path}/ReplacementInfoList/ReplacementInfo[{i}]/DocumentId",
                    "replacement without DocumentId; ignored",
                )
                continue
            organ_ids = tuple(
                t for o in _kids(_kid(r, "OrganIdList"), "OrganId") if (t := o.text()) is not None
            )
            replacements.append(ReplacementInfo(document_id, organ_ids))
        return Business(
            doc_type=doc_type,
            reason=_kid_text(node, "BussinessDocReason", "BusinessDocReason"),
            document_id=_kid_text(node, "DocumentId"),
            paper=self.int_(node, "Paper", path),
            staff_info=self.staff_info(_kid(node, "StaffInfo")),
            document_info=info,
            replacements=tuple(replacements),
        )

    def manifest(self, node: _Node | None) -> tuple[ManifestReference, ...]:
        refs = []
        for i, r in enumerate(_kids(node, "Reference"), 1):
            content_id = _kid_text(r, "ContentId")
            if content_id is None:
                self.warn(f"edXMLManifest/Reference[{i}]/ContentId", "reference without ContentId")
                content_id = ""
            refs.append(
                ManifestReference(
                    content_id=content_id,
                    content_type=_kid_text(r, "ContentType"),
                    description=_kid_text(r, "Description"),
                    attachment_name=_kid_text(r, "AttachmentName"),
                )
            )
        return tuple(refs)

    def attachments(
        self, root: _Node, manifest: tuple[ManifestReference, ...]
    ) -> tuple[Attachment, ...]:
        by_cid = {_cid_key(m.content_id): m for m in manifest if m.content_id}
        encoded = _kid(root, "AttachmentEncoded") or _find(root, "AttachmentEncoded")
        result = []
        for i, node in enumerate(_kids(encoded, "Attachment")):
            content_id = _kid_text(node, "ContentId")
            ref = by_cid.get(_cid_key(content_id)) if content_id else None
            if content_id is None:
                # Fall back on the manifest entry at the same position.
                ref = manifest[i] if i < len(manifest) else None
                content_id = ref.content_id if ref is not None else ""
                self.warn(
                    f"AttachmentEncoded/Attachment[{i + 1}]/ContentId",
                    "attachment without ContentId"
                    + ("; matched to the manifest by position" if ref else ""),
                )
            streamed = node.result
            result.append(
                Attachment(
                    content_id=content_id,
                    name=_kid_text(node, "AttachmentName")
                    or (ref.attachment_name if ref else None),
                    description=_kid_text(node, "Description")
                    or (ref.description if ref else None),
                    content_type=_kid_text(node, "ContentType")
                    or (ref.content_type if ref else None),
                    data=streamed.data if streamed else None,
                    size=streamed.size if streamed else None,
                    sha256=streamed.sha256 if streamed else None,
                    opener=streamed.opener if streamed else None,
                )
            )
        return tuple(result)
