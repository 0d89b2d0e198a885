# mypy: disable-error-code="no-untyped-call"
# (pyHanko's PDF object and diff-analysis APIs are unannotated; we call them on purpose.)
"""Opening untrusted signed PDFs for verification: the reader gaps pyHanko leaves open.

* **Strict, then lenient.** pyHanko's strict reader refuses hybrid-reference files (a classic
  xref table plus ``/XRefStm``, common from Word and Acrobat) and some sloppy xref tables. We try
  strict first and fall back to the non-strict reader; the report says so. Diff analysis still
  runs on the lenient reader, so a hybrid file cannot use its second xref to hide an update.
* **``/Encrypt null``.** ISO 32000-1 § 7.3.9: a dictionary entry whose value is ``null`` is the
  same as an absent entry. pyHanko raises instead (``esig-dss/pdf-spoofing-attack.pdf``).
* **Encrypted with an empty user password** is opened (``esig-dss/encrypted.pdf``); any other
  password is an "unreadable" verdict, never a crash.
* **Plain ECDSA** (BSI TR-03111, OIDs 0.4.0.127.0.7.1.1.4.1.x: the signature value is ``r||s``
  instead of DER) is rewritten to the equivalent X9.62 algorithm and DER value before checking,
  so the cryptographic check itself stays pyHanko's.
* **Decode limits** (pyHanko 0.38 ``DecodeLimits``) stay on their defaults for untrusted input.
"""

from __future__ import annotations

import io
from typing import Any

from asn1crypto import algos, core
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.crypt import AuthStatus
from pyhanko.pdf_utils.reader import PdfFileReader

from signing.errors import SigningError

PLAIN_ECDSA = {
    "0.4.0.127.0.7.1.1.4.1.1": "sha1_ecdsa",
    "0.4.0.127.0.7.1.1.4.1.2": "sha224_ecdsa",
    "0.4.0.127.0.7.1.1.4.1.3": "sha256_ecdsa",
    "0.4.0.127.0.7.1.1.4.1.4": "sha384_ecdsa",
    "0.4.0.127.0.7.1.1.4.1.5": "sha512_ecdsa",
}


class UnreadablePdfError(SigningError):
    """The input cannot be read as a PDF (not a PDF, corrupt, or password-protected)."""


class VerifyingReader(PdfFileReader):
    """A :class:`PdfFileReader` that treats ``/Encrypt null`` as no encryption."""

    @property
    def encrypt_dict(self) -> generic.DictionaryObject | None:
        try:
            value = self.trailer.raw_get("/Encrypt")
        except KeyError:
            return None
        if isinstance(value, generic.NullObject):
            return None
        if isinstance(value, generic.IndirectObject):
            target = self.get_object(value.reference, never_decrypt=True)
            if isinstance(target, generic.NullObject):
                return None
        result: generic.DictionaryObject | None = super().encrypt_dict
        return result


def open_pdf(data: bytes) -> tuple[PdfFileReader, list[str]]:
    """Open ``data`` for verification; returns the reader and notes for the report.

    Raises :class:`UnreadablePdfError` when no reader can make sense of it.
    """
    notes: list[str] = []
    if not data.lstrip()[:1024].find(b"%PDF-") >= 0:
        raise UnreadablePdfError("not a PDF file (no %PDF- header)")
    reader: PdfFileReader | None = None
    first_error: Exception | None = None
    for strict in (True, False):
        try:
            candidate = VerifyingReader(io.BytesIO(data), strict=strict)
            if strict and candidate.xrefs.hybrid_xrefs_present:
                # pyHanko refuses to validate these in strict mode; read leniently instead.
                raise misc.PdfStrictReadError("hybrid-reference file")
            reader = candidate
            if not strict:
                notes.append(f"read leniently: {first_error}")
            break
        except Exception as exc:  # any parser failure: try the lenient reader, then give up
            if first_error is None:
                first_error = exc
            last_error = exc
    if reader is None:
        raise UnreadablePdfError(f"cannot read the PDF: {one_line(last_error)}")
    try:
        if reader.encrypt_dict is not None:
            result = reader.decrypt(b"")
            if result.status == AuthStatus.FAILED:
                raise UnreadablePdfError("the PDF is password-protected")
            notes.append("encrypted with an empty user password")
    except UnreadablePdfError:
        raise
    except Exception as exc:
        raise UnreadablePdfError(f"cannot decrypt the PDF: {one_line(exc)}") from exc
    return reader, notes


def normalise_plain_ecdsa(signer_info: Any) -> bool:
    """Rewrite a plain-ECDSA SignerInfo in place to its DER/X9.62 form; True if rewritten."""
    oid = signer_info["signature_algorithm"]["algorithm"].dotted
    target = PLAIN_ECDSA.get(oid)
    if target is None:
        return False
    raw = signer_info["signature"].native
    if not raw or len(raw) % 2:
        return False
    half = len(raw) // 2
    r = int.from_bytes(raw[:half], "big")
    s = int.from_bytes(raw[half:], "big")
    der = algos.DSASignature({"r": r, "s": s}).dump()
    signer_info["signature_algorithm"] = algos.SignedDigestAlgorithm({"algorithm": target})
    signer_info["signature"] = core.OctetString(der)
    return True


def one_line(exc: BaseException | None) -> str:
    """``Type: first line of the message`` (at most 300 characters), for a verdict's reasons."""
    if exc is None:
        return "unknown error"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
