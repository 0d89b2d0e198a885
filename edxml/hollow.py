"""Attachment content cut out of a small input before libxml2 parses it (the tree way's help).

A package's bytes are mostly base64 in ``ContentTransferEncoded``. Parsed as they are, libxml2
copies that text into its tree, lxml copies it into a Python string, the decoder encodes it back
to bytes: three passes over the bulk of the input before the one that matters. Instead,
:func:`find_spans` finds the large base64 runs in the raw bytes, :func:`hollow` replaces each
with a marker that only this parse knows (a random nonce), libxml2 parses the small rest, and
:func:`decode_span` decodes each run straight from the input, slice by slice.

It is an optimisation only, never a second opinion: :mod:`edxml.fastpath` keeps the result only
when every marker came back as the whole text of exactly one ``ContentTransferEncoded`` that the
tree reader opens, and every run is plain base64 (the alphabet, line breaks, padding only at the
very end), so that its bytes are exactly the text the element holds and decode exactly as the
usual decoder would decode that text. Anything else (markup, entity or character references,
spaces, a run inside a comment, CDATA or the Signature, bad base64) and the input is parsed the
usual way, which decides. Nothing here touches a sink.
"""

from __future__ import annotations

import re
import secrets

from edxml.attachments import b64decode_clean

# Runs shorter than this are left in place: the saving would not pay for the scan.
MIN_SPAN = 8 * 1024
# Runs are decoded in slices of this many input bytes: each copy stays in the CPU cache.
SLICE = 256 * 1024

_NAME = b"ContentTransferEncoded"
# What may stand between "<" and the name in a start tag: nothing, or a namespace prefix.
_PREFIX = re.compile(rb"(?:[A-Za-z_][\w.\-]*:)?")
_AFTER_NAME = frozenset(b"> \t\r\n")
_SPACES = (b"\n", b"\r", b" ", b"\t")
# The longest start tag attributes looked through for its ">" (a real one has none).
_TAG_WINDOW = 1024
# The most occurrences of the name looked at (two per attachment; Limits allows 1,000 of them).
_MAX_LOOKS = 2 * 1024


def find_spans(data: bytes, min_span: int = MIN_SPAN) -> list[tuple[int, int]]:
    """(start, end) of each run of at least ``min_span`` bytes between what looks like a
    ``ContentTransferEncoded`` start tag and the next ``<``.

    "Looks like" is enough: a wrong guess (inside a comment, an attribute holding ``>``) either
    breaks the hollowed document or leaves its marker unclaimed, and the usual way is taken.
    """
    spans: list[tuple[int, int]] = []
    at = 0
    looks = 0
    while (found := data.find(_NAME, at)) >= 0:
        looks += 1
        if looks > _MAX_LOOKS:
            break  # the rest is parsed as it is: a real package never gets here
        at = found + len(_NAME)
        if at >= len(data) or data[at] not in _AFTER_NAME:
            continue  # a longer name
        lt = data.rfind(b"<", max(0, found - 256), found)
        if lt < 0 or not _PREFIX.fullmatch(data, lt + 1, found):
            continue  # an end tag, or the word in text
        # Searched within a bounded window, so that a hostile input cannot make every
        # occurrence scan the rest of it: each byte is looked at a bounded number of times.
        gt = data.find(b">", at, at + _TAG_WINDOW)
        if gt < 0 or data[gt - 1] == ord("/") or data.find(b"<", at, gt) >= 0:
            continue  # no start tag after all, or an empty element
        end = data.find(b"<", gt + 1)
        if end < 0:
            break
        if end - gt - 1 >= min_span:
            spans.append((gt + 1, end))
        at = end  # no start tag can begin before the next "<"
    return spans


def hollow(data: bytes, spans: list[tuple[int, int]]) -> tuple[bytes, list[str]]:
    """``data`` with each span replaced by its marker; the markers, in span order."""
    nonce = secrets.token_hex(12)
    markers = [f"@{nonce}.{i}@" for i in range(len(spans))]
    pieces = []
    last = 0
    for (start, end), marker in zip(spans, markers, strict=True):
        pieces += [data[last:start], marker.encode("ascii")]
        last = end
    pieces.append(data[last:])
    return b"".join(pieces), markers


def decode_span(data: bytes, start: int, end: int) -> list[bytes] | None:
    """The decoded bytes of ``data[start:end]`` in pieces, or None when it is not plain base64
    (the alphabet, line breaks, spaces and tabs; ``=`` only in the last quantum, missing ``=``
    tolerated as the usual decoder does)."""
    pieces: list[bytes] = []
    carry = b""
    pos = start
    while pos < end:
        stop = min(pos + SLICE, end)
        raw = data[pos:stop]
        # The usual decoder drops these four wherever they are (a carriage return the XML
        # parser would have made a line feed first); nothing else is let through.
        for space in _SPACES:
            if space in raw:
                raw = raw.replace(space, b"")
        if carry:
            raw = carry + raw
        final = stop == end
        if final:
            rest = len(raw) % 4
            if rest == 1:
                return None
            if rest:
                raw += b"=" * (4 - rest)
            cut = len(raw)
        else:
            cut = len(raw) - len(raw) % 4
        padding = raw.find(b"=", 0, cut)
        if padding >= 0 and (not final or padding < cut - 2):
            return None
        if cut:
            decoded = b64decode_clean(memoryview(raw)[:cut])
            if decoded is None:
                return None
            pieces.append(decoded)
        carry = raw[cut:]
        pos = stop
    return pieces
