"""The tree way for small inputs: :func:`_parse_tree`, same results as streaming, faster.

For inputs of known size up to ``Limits.tree_max_size`` (1 MiB), :func:`edxml.reader.parse`
first asks :func:`_parse_tree`: libxml2 parses the bytes into a tree in one call (no Python
callback per event), :class:`_TreeReader` turns it into the same small tree
(:mod:`edxml.smalltree`) by the rules of the streaming target, and the attachments are decoded
once the whole tree has been checked. Whenever it cannot be sure to match the streaming way
exactly it raises :class:`_Fallback` before any sink is touched, and the caller streams.
Owns :class:`_Fallback`, :func:`_parse_tree`, :class:`_TreeReader`, this thread's hardened tree
parser and the tag-splitting cache.
"""

from __future__ import annotations

import threading

from lxml import etree

from edxml.attachments import AttachmentMeta, AttachmentSink
from edxml.errors import UnsafeXmlError
from edxml.hollow import MIN_SPAN, decode_span, find_spans, hollow
from edxml.limits import Limits
from edxml.model import Envelope, StatusMessage
from edxml.safexml import has_doctype, xml_parser
from edxml.smalltree import (
    _DOCTYPE_MESSAGE,
    _EDXML_NS,
    _SIGNATURE_NS,
    _attachment_meta,
    _cid_key,
    _kid_text,
    _Node,
    _Outputs,
    _split,
)
from edxml.values import WarningHandler, _Builder

# The tree way hands base64 text to the decoder in slices of this many characters (the decoder's
# own batch size). Each slice is encoded, stripped of line breaks, decoded and hashed while its
# copies are still in the CPU cache: a 1 MB package's attachment took about 2.2 ms of CPU as one
# piece and 0.77 ms in 256 K slices (measured under load, thread CPU time).
_FEED_CHARS = 256 * 1024


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

    Large base64 runs are first cut out of the input and decoded from its bytes
    (:mod:`edxml.hollow`); when that cannot be sure to give the same, the whole input is parsed.
    """
    if len(data) >= MIN_SPAN:
        spans = find_spans(data)
        if spans:
            try:
                return _parse_hollow(data, spans, lim, sink, on_warning)
            except _NotHollow:
                pass  # the input as it is decides
    root = _tree_of(data, lim)
    reader = _TreeReader(lim, sink, len(data))
    return reader.finish(reader.read(root), on_warning)


def _tree_of(data: bytes, lim: Limits) -> etree._Element:
    """libxml2's tree of ``data``, within the element limit, without a DOCTYPE."""
    # An element takes at least 4 bytes (<a/>): count only when the limit could be crossed.
    if len(data) >= 4 * lim.max_elements and data.count(b"<") > lim.max_elements:
        raise _Fallback
    try:
        root = etree.fromstring(data, _tree_parser())
    except etree.XMLSyntaxError:
        raise _Fallback from None
    if has_doctype(root.getroottree()):
        raise UnsafeXmlError(_DOCTYPE_MESSAGE)
    return root


class _NotHollow(Exception):
    """The hollowed input cannot stand for the input: parse the input as it is."""


def _parse_hollow(
    data: bytes,
    spans: list[tuple[int, int]],
    lim: Limits,
    sink: AttachmentSink | None,
    on_warning: WarningHandler | None,
) -> Envelope | StatusMessage:
    """The tree way on ``data`` with its base64 runs cut out (see :mod:`edxml.hollow`).

    Raises :class:`_NotHollow`, before any sink is touched, unless each run is claimed as the
    whole content of exactly one attachment the tree reader opens and decodes as plain base64.
    """
    hollowed, markers = hollow(data, spans)
    try:
        root = _tree_of(hollowed, lim)
        reader = _TreeReader(lim, sink, len(data))
        node = reader.read(root)
    except (_Fallback, UnsafeXmlError):  # the input as it is says which error comes first
        raise _NotHollow from None
    runs = dict(zip(markers, spans, strict=True))
    claimed = 0
    for job in reader.jobs:
        span = runs.pop(job.text, None)
        if span is not None:
            claimed += 1
            job.decoded = decode_span(data, *span)
            if job.decoded is None:
                raise _NotHollow
    if claimed != len(spans):
        raise _NotHollow  # a run inside a comment, CDATA, a Signature, or a second content
    return reader.finish(node, on_warning)


class _Job:
    """An attachment found in the tree, decoded once the whole tree has been checked."""

    __slots__ = ("decoded", "meta", "node", "path", "text")

    def __init__(self, node: _Node, meta: AttachmentMeta, text: str, path: str) -> None:
        self.node = node
        self.meta = meta
        self.text = text
        self.path = path
        # Its bytes already decoded from the input's own bytes (edxml.hollow), or None.
        self.decoded: list[bytes] | None = None


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

        Builds ``node``'s index of children by name as it goes (the streaming target leaves it
        to the first lookup), and reads a childless element's text at once: nearly all of them
        are asked for, and one visit costs less than a lazy lookup later. An element with
        children keeps its text in the lxml element until :meth:`_Node.text` asks for it. Text
        length is checked here only when the input is longer than ``max_text``: otherwise no
        element can hold more (each character takes at least one byte, and there are no
        entities).
        """
        # Hot loop: locals and inlined lookups on purpose.
        lim = self.limits
        check_text = self.check_text
        too_deep = depth + 1 >= lim.max_depth
        split_cache = _SPLIT_CACHE
        children = node.children
        # Lookups made while filling (an attachment's metadata) see the children so far, as
        # the streaming target's lazily built index does.
        index: dict[str, list[_Node]] = {}
        node.index = index
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
            if ns in _EDXML_NS:
                same = index.get(local)
                if same is None:
                    index[local] = [kid]
                else:
                    same.append(kid)
            if len(child):
                self._fill(child, kid, depth + 1, in_encoded or local == "AttachmentEncoded")
            else:
                text = child.text
                if text is None:
                    kid.value = None
                else:
                    if check_text and len(text) > lim.max_text:
                        raise _Fallback
                    kid.value = text.strip() or None
            if local == "Reference" and tag_name == "edXMLManifest":
                key = _cid_key(_kid_text(kid, "ContentId"))
                if key:
                    self.manifest.setdefault(key, kid)
        if check_text and len(el):
            length = len(el.text or "") + sum(len(child.tail or "") for child in el)
            if length > lim.max_text:
                raise _Fallback

    def _attachment(self, content: etree._Element, attachment: _Node) -> None:
        """Note a ContentTransferEncoded element: its metadata now, its bytes later."""
        if len(content):
            raise _Fallback  # markup inside base64: the streaming way decides
        index = self.attachment_count - 1
        meta = _attachment_meta(index, attachment, self.manifest)
        attachment.texts = None  # children after the content are to come
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

    def finish(self, node: _Node, on_warning: WarningHandler | None) -> Envelope | StatusMessage:
        """Decode the attachments into the sink, then build the model of ``node``."""
        try:
            self.decode_attachments()
            return _Builder(on_warning).build(node, self.signature)
        except BaseException:
            self.abort()
            raise

    def decode_attachments(self) -> None:
        """Decode every attachment in document order, through the sink as streaming does."""
        for job in self.jobs:
            decoder = self.outputs.open(job.meta, job.path)
            text, job.text = job.text, ""
            if job.decoded is not None:
                for piece in job.decoded:
                    decoder.feed_decoded(piece)
                job.decoded = None
            elif len(text) <= _FEED_CHARS:
                decoder.feed(text)
            else:  # slices keep the decoder's temporary copies small
                for start in range(0, len(text), _FEED_CHARS):
                    decoder.feed(text[start : start + _FEED_CHARS])
            job.node.result = self.outputs.close()

    def abort(self) -> None:
        """Same clean-up as ``_Target.abort``."""
        self.outputs.abort()
