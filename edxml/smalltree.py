"""The small tree both ways of reading build, and what they share to build it alike.

:mod:`edxml.reader` builds it from parser events (the streaming target), :mod:`edxml.fastpath`
from an lxml tree; :mod:`edxml.values` reads the model from it. Owns :class:`_Node` (one element
of the small tree: header, manifest and attachment metadata, never attachment content), the
lookups on it (:func:`_kids`, :func:`_kid`, :func:`_kid_text`, :func:`_find`), the namespaces an
element is matched in, and the pieces both readers use so that they behave alike: where
attachment content goes (:class:`_Outputs`, :class:`_Streamed`), the metadata a sink learns when
an attachment starts (:func:`_attachment_meta`), ContentId comparison (:func:`_cid_key`), tag
splitting (:func:`_split`) and the DOCTYPE refusal message.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

from lxml import etree

from edxml.attachments import AttachmentMeta, AttachmentSink, Base64StreamDecoder, Writable
from edxml.limits import Limits
from edxml.model import DSIG_NAMESPACE, NAMESPACE

_EDXML_NS = frozenset({NAMESPACE, ""})
_SIGNATURE_NS = frozenset({DSIG_NAMESPACE, NAMESPACE, ""})


# --- the small tree ------------------------------------------------------------------------


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
    if len(names) == 1:
        # The commonest call of the model builder: the index and the text cache read inline.
        index = node.index
        found = index.get(names[0]) if index is not None else node.kids(names[0])
    else:
        found = _kids(node, *names)
    if not found:
        return None
    kid = found[0]
    value = kid.value
    return kid.text() if value is _UNSET else value  # type: ignore[return-value]


def _find(node: _Node | None, name: str) -> _Node | None:
    """First descendant of that name (breadth first), outside AttachmentEncoded."""
    if node is None:
        return None
    found = node.kids(name)  # the usual case: a child
    if found:
        return found[0]
    level = node.children
    while level:
        below: list[_Node] = []
        for current in level:
            if current.tag == "AttachmentEncoded":
                continue
            for child in current.children:
                if child.tag == name and child.ns in _EDXML_NS:
                    return child
            below.extend(current.children)
        level = below
    return None
