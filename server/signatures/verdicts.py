"""Verdicts of PDF verification reports, in one word and as summaries: what is a PDF to verify,
the verdict of a ``lienthong.verification/1`` report and of a document (the worst of its PDF
attachments'), the summaries ``meta`` and the inbox show, and a report's stored bytes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from signing.verify import VerificationPolicy

PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})

# One-word verdicts, best first. A document's verdict is the worst of its PDF attachments':
# "valid" only when every PDF attachment is signed and every signature passed; "none" when a
# PDF attachment has no signature (or the document has no PDF at all).
VERDICTS = ("valid", "none", "pending", "indeterminate", "invalid")
NOT_PDF = "not_pdf"  # an attachment's verdict only; never a document's


def looks_pdf(name: str | None, content_type: str | None) -> bool:
    """True when an attachment's declared type or name says PDF (what arrival verifies)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in PDF_TYPES or (name or "").lower().endswith(".pdf")


def is_pdf(name: str | None, content_type: str | None, data: bytes) -> bool:
    """:func:`looks_pdf`, or the bytes start like a PDF."""
    return looks_pdf(name, content_type) or data[:1024].lstrip().startswith(b"%PDF-")


def verdict_of(report: dict[str, Any]) -> str:
    """The one-word verdict of a ``lienthong.verification/1`` report."""
    status = report.get("status")
    if status == "unsigned":
        return "none"
    if status != "signed":  # unreadable: corrupt, hostile, encrypted, over budget
        return "indeterminate"
    indication = report.get("indication")
    if indication == "TOTAL_PASSED" and report.get("all_passed"):
        return "valid"
    if indication == "TOTAL_FAILED":
        return "invalid"
    return "indeterminate"


def worst(verdicts: Iterable[str]) -> str:
    """The worst of attachment verdicts (``not_pdf`` ignored); ``none`` when nothing is left."""
    ranked = [v for v in verdicts if v in VERDICTS]
    return max(ranked, key=VERDICTS.index) if ranked else "none"


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a reader needs from a report before opening the file (``meta`` attachments)."""
    signatures = []
    for sig in report.get("signatures") or []:
        signer = sig.get("signer") or {}
        signatures.append(
            {
                "index": sig.get("index"),
                "kind": sig.get("kind"),
                "indication": sig.get("indication"),
                "subindication": sig.get("subindication"),
                "signer": signer.get("name"),
                "organization": signer.get("organization"),
                "signing_time": sig.get("signing_time"),
                "intact": sig.get("intact"),
                "changes": sig.get("changes"),
            }
        )
    return {
        "verdict": verdict_of(report),
        "status": report.get("status"),
        "indication": report.get("indication"),
        "all_passed": report.get("all_passed"),
        "signatures": signatures,
        "summary_vi": report.get("summary_vi"),
        "verified_at": report.get("verified_at"),
        "sha256": (report.get("file") or {}).get("sha256"),
    }


_PENDING_VI = "Đang kiểm tra chữ ký số của tệp này."
_NOT_PDF_VI = "Tệp không phải PDF: không có chữ ký số PDF để kiểm tra."


def _pending_summary() -> dict[str, Any]:
    return {"verdict": "pending", "status": "pending", "signatures": [], "summary_vi": _PENDING_VI}


def _not_pdf_summary() -> dict[str, Any]:
    return {"verdict": NOT_PDF, "status": NOT_PDF, "signatures": [], "summary_vi": _NOT_PDF_VI}


def report_bytes(report: dict[str, Any]) -> bytes:
    """The canonical bytes a report is stored as: UTF-8 JSON, keys sorted, no spaces, so the
    same report always makes the same object (and its SHA-256 names it)."""
    return json.dumps(report, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def policy_id(policy: VerificationPolicy) -> str:
    """What a stored report was verified under: the trust roots (SHA-256 over their DER,
    sorted), the revocation mode, and whether OCSP/CRL were fetched online."""
    roots = hashlib.sha256(b"".join(sorted(policy.trust_roots))).hexdigest()
    online = "online" if policy.online else "offline"
    return f"roots=sha256:{roots[:32]};revocation={policy.revocation_mode};{online}"
