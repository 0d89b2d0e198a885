"""Limits that keep reading untrusted edXML bounded in time, memory and disk.

Every limit is checked while the input streams, so a hostile package fails as soon as it crosses
one, not after it has been read whole. Exceeding any of them raises
:class:`edxml.errors.LimitExceededError`.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied by :func:`edxml.parse` and :func:`edxml.attachments.unzip`.

    The defaults admit every real package we know of, including 1 GB ones, and refuse a 2 GB
    body outright: ``max_size`` is 1.5 GiB.
    """

    #: Total bytes of input (the .edxml file). Checked up front when the size is known (bytes,
    #: paths, seekable files) and while streaming otherwise.
    max_size: int = 1536 * MiB
    #: Element nesting depth. Real packages nest about 8 deep (a Signature about 7 more).
    max_depth: int = 64
    #: Number of elements in the whole document.
    max_elements: int = 200_000
    #: Characters of text in one element other than an attachment's base64 content.
    max_text: int = 1 * MiB
    #: Number of attachments.
    max_attachments: int = 1_000
    #: Decoded bytes of one attachment kept in memory when no sink is given.
    max_inline_attachment: int = 64 * MiB
    #: Decoded bytes of all attachments together kept in memory when no sink is given.
    max_inline_total: int = 256 * MiB
    #: Entries in an attachment's zip (the SDK zips exactly one file).
    zip_max_members: int = 16
    #: Uncompressed bytes of the file taken out of an attachment's zip.
    zip_max_uncompressed: int = 2 * GiB
    #: Uncompressed / compressed size; only enforced above ``zip_ratio_grace`` bytes, because
    #: small files (a page of blanks) legitimately compress very well.
    zip_max_ratio: int = 200
    zip_ratio_grace: int = 1 * MiB
    #: Inputs of at most this many bytes whose size is known up front (bytes, paths, seekable
    #: files) are parsed by libxml2 into a tree in one call and read from it: faster than
    #: streaming for small packages, whose cost is per element. Larger ones stream: their cost
    #: is the attachment bytes, and streaming overlaps hashing with parsing and keeps memory
    #: flat. Both ways give the same results and the same errors; 0 always streams. Not a
    #: safety bound: the tree way keeps every other limit.
    tree_max_size: int = 1 * MiB


DEFAULT_LIMITS = Limits()
