"""The media types an attachment is described and served with (issue 18, finding 9).

An attachment's ``ContentType`` is whatever its sender wrote: ``text/html`` or
``image/svg+xml`` would run a sender's script in a recipient's browser, and a value holding
CR/LF cannot be put in a header at all (the attachment was a 500 for its recipient forever).
Only the types agencies exchange (office documents, PDF, images, archives, signatures, plain
text) are kept, lowercase and without parameters; anything else is
``application/octet-stream``, which browsers only download. Applied when a package is accepted
(its stored summary) and again when an attachment is served, for packages stored before.
"""

from __future__ import annotations

import mimetypes

OCTET_STREAM = "application/octet-stream"

# XML is left out on purpose: a browser renders XHTML-namespaced XML with its scripts.
ALLOWED = frozenset(
    {
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/rtf",
        "application/zip",
        "application/x-zip-compressed",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pkcs7-mime",
        "application/octet-stream",
        "text/plain",
        "text/csv",
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/tiff",
        "image/bmp",
    }
)


def attachment_type(declared: str | None) -> str | None:
    """The type to describe and serve an attachment with: the declared type, lowercase and
    without parameters, when it is in :data:`ALLOWED`; ``application/octet-stream`` for any
    other value; None when nothing was declared (the name may tell, see :func:`guess_type`)."""
    if declared is None or not declared.strip():
        return None
    bare = declared.split(";", 1)[0].strip().lower()
    return bare if bare in ALLOWED else OCTET_STREAM


def guess_type(name: str | None) -> str:
    """The type a file name suggests, under the same list (``octet-stream`` when none)."""
    return attachment_type(mimetypes.guess_type(name or "")[0]) or OCTET_STREAM
