"""Verification reports: the result objects, their stable JSON form and the Vietnamese summary.

The JSON schema is documented in ``docs/verification.md`` (schema id
``lienthong.verification/1``). Fields are only ever added, never renamed or removed, within one
schema id. Times are ISO 8601 with the Vietnam offset ``+07:00``.

The printable PDF report lives in :mod:`signing.report_pdf`.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

SCHEMA_ID = "lienthong.verification/1"

# Vietnam has had no daylight saving time since 1975: a fixed offset is exact.
VN_TZ = timezone(timedelta(hours=7), "ICT")


class Indication(enum.StrEnum):
    """ETSI EN 319 102-1 main status indication of one signature."""

    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class Changes(enum.StrEnum):
    """What was added to the file after a signature's signed revision."""

    NONE = "none"
    PERMITTED = "permitted"
    OTHER = "other"


# Sub-indications of ETSI EN 319 102-1 (§ 5.1.3) used by this package.
FORMAT_FAILURE = "FORMAT_FAILURE"
HASH_FAILURE = "HASH_FAILURE"
SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
REVOKED = "REVOKED"
NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
TRY_LATER = "TRY_LATER"
SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"


def to_vn_time(moment: datetime | None) -> str | None:
    """ISO 8601 with the +07:00 offset (naive datetimes are taken as UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VN_TZ).isoformat(timespec="seconds")


@dataclass
class Signer:
    """Who signed: taken from the signing certificate (UTF-8 names kept as they are)."""

    name: str | None
    organization: str | None = None
    title: str | None = None
    subject: str = ""
    issuer: str = ""
    serial: str = ""
    not_before: str | None = None
    not_after: str | None = None


@dataclass
class Timestamp:
    """An RFC 3161 time-stamp attached to (or covering) a signature."""

    kind: str  # "signature" | "content" | "document"
    time: str | None
    intact: bool
    trusted: bool
    tsa: str | None = None


@dataclass
class Revocation:
    """How the signer's certificate was checked for revocation."""

    mode: str  # "hard-fail" | "soft-fail" | "not-checked"
    status: str  # "good" | "revoked" | "unknown" | "not-checked"
    detail: str | None = None


@dataclass
class SignatureReport:
    """The verdict on one signature (or document time-stamp) in a PDF."""

    index: int
    field: str | None
    kind: str  # "signature" | "document_timestamp"
    indication: Indication
    subindication: str | None
    intact: bool
    changes: Changes
    signer: Signer | None = None
    signing_time: str | None = None
    signing_time_source: str | None = None  # "timestamp" | "claimed"
    crypto_valid: bool = False
    trusted: bool = False
    chain: list[str] = dc_field(default_factory=list)
    revocation: Revocation | None = None
    timestamps: list[Timestamp] = dc_field(default_factory=list)
    coverage: str | None = None
    byte_range: list[int] = dc_field(default_factory=list)
    signed_revision: int | None = None
    revisions_after: int = 0
    changes_detail: str | None = None
    certification: str | None = None
    level: str | None = None
    validation_model: str = "current-time"
    validation_time: str | None = None
    reasons: list[str] = dc_field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when this signature's indication is TOTAL_PASSED."""
        return self.indication is Indication.TOTAL_PASSED


@dataclass
class ValidationReport:
    """The verification of one PDF file: one :class:`SignatureReport` per signature.

    ``status`` is ``signed`` (at least one signature found), ``unsigned`` (a readable PDF without
    signatures) or ``unreadable`` (not a PDF, corrupt, too large, too slow, or encrypted with a
    password).
    """

    file_name: str | None
    sha256: str
    size: int
    status: str
    verified_at: str
    signatures: list[SignatureReport] = dc_field(default_factory=list)
    errors: list[str] = dc_field(default_factory=list)
    elapsed_ms: int | None = None

    @classmethod
    def unreadable(
        cls,
        data: bytes | None,
        file_name: str | None,
        *errors: str,
        sha256: str = "",
        size: int = 0,
    ) -> ValidationReport:
        """A report on a file that could not be verified, for the reasons ``errors``.

        Digest and size are those of ``data``; without it, ``sha256`` and ``size`` as given.
        """
        if data is not None:
            sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        return cls(
            file_name=file_name,
            sha256=sha256,
            size=size,
            status="unreadable",
            verified_at=to_vn_time(datetime.now(UTC)) or "",
            errors=list(errors),
        )

    @property
    def all_passed(self) -> bool:
        """True only for a signed file whose every signature is TOTAL_PASSED."""
        return self.status == "signed" and all(s.passed for s in self.signatures)

    @property
    def indication(self) -> Indication | None:
        """The worst indication over all signatures (None when there is no signature)."""
        if not self.signatures:
            return None
        order = [Indication.TOTAL_FAILED, Indication.INDETERMINATE, Indication.TOTAL_PASSED]
        return min((s.indication for s in self.signatures), key=order.index)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict following ``lienthong.verification/1``."""
        sigs = []
        for s in self.signatures:
            d = asdict(s)
            d["indication"] = s.indication.value
            d["changes"] = s.changes.value
            sigs.append(d)
        indication = self.indication
        return {
            "schema": SCHEMA_ID,
            "file": {"name": self.file_name, "sha256": self.sha256, "size": self.size},
            "verified_at": self.verified_at,
            "status": self.status,
            "indication": indication.value if indication else None,
            "all_passed": self.all_passed,
            "signature_count": len(self.signatures),
            "signatures": sigs,
            "errors": list(self.errors),
            "summary_vi": summary_vi(self),
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidationReport:
        """Rebuild a report from :meth:`to_json` output (e.g. one stored with a document)."""
        sigs = []
        for d in data.get("signatures", []):
            d = dict(d)
            d["indication"] = Indication(d["indication"])
            d["changes"] = Changes(d["changes"])
            d["signer"] = Signer(**d["signer"]) if d.get("signer") else None
            d["revocation"] = Revocation(**d["revocation"]) if d.get("revocation") else None
            d["timestamps"] = [Timestamp(**t) for t in d.get("timestamps", [])]
            sigs.append(SignatureReport(**d))
        f = data.get("file", {})
        return cls(
            file_name=f.get("name"),
            sha256=f.get("sha256", ""),
            size=int(f.get("size", 0)),
            status=data["status"],
            verified_at=data["verified_at"],
            signatures=sigs,
            errors=list(data.get("errors", [])),
            elapsed_ms=data.get("elapsed_ms"),
        )


# ---------------------------------------------------------------------------------------------
# Vietnamese summary

_SUB_VI = {
    FORMAT_FAILURE: "cấu trúc chữ ký hoặc tệp không hợp lệ",
    HASH_FAILURE: "nội dung đã ký bị thay đổi",
    SIG_CRYPTO_FAILURE: "giá trị chữ ký không khớp với chứng thư",
    REVOKED: "chứng thư số của người ký đã bị thu hồi",
    NO_SIGNING_CERTIFICATE_FOUND: "không tìm thấy chứng thư số của người ký",
    NO_CERTIFICATE_CHAIN_FOUND: "chứng thư số không thuộc tổ chức chứng thực được tin cậy",
    TRY_LATER: "chưa kiểm tra được tình trạng thu hồi của chứng thư số",
    SIGNED_DATA_NOT_FOUND: "không đọc được dữ liệu đã ký",
    "EXPIRED": "chứng thư số đã hết hạn",
    "NOT_YET_VALID": "chứng thư số chưa có hiệu lực",
    "OUT_OF_BOUNDS_NO_POE": "chứng thư số hết hạn hoặc bị thu hồi trước thời điểm ký",
    "REVOKED_NO_POE": "chứng thư số đã bị thu hồi",
    "CHAIN_CONSTRAINTS_FAILURE": "chuỗi chứng thư không đáp ứng ràng buộc",
    "CRYPTO_CONSTRAINTS_FAILURE": "thuật toán mật mã không còn được chấp nhận",
    "SIG_CONSTRAINTS_FAILURE": "chữ ký không đáp ứng yêu cầu (mục đích sử dụng khóa, thuộc tính)",
    "GENERIC": "lỗi không xác định",
}

_CHANGES_VI = {
    Changes.NONE: "tài liệu không bị thay đổi sau khi ký",
    Changes.PERMITTED: "sau khi ký chỉ có các thay đổi được phép (thêm chữ ký, dấu thời gian, "
    "điền biểu mẫu hoặc ghi chú)",
    Changes.OTHER: "tài liệu đã bị sửa đổi sau khi ký",
}


def _vn_display_time(iso: str | None) -> str | None:
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso).astimezone(VN_TZ)
    except ValueError:
        return iso
    return moment.strftime("%H:%M:%S ngày %d/%m/%Y") + " (+07:00)"


def signer_label(sig: SignatureReport) -> str:
    """'Name (Organisation)' for a signature, or a placeholder when unknown."""
    if sig.signer is None or not sig.signer.name:
        return "người ký không xác định"
    label = sig.signer.name
    if sig.signer.organization and sig.signer.organization != sig.signer.name:
        label += f" ({sig.signer.organization})"
    return label


def sentence_vi(sig: SignatureReport) -> str:
    """One Vietnamese sentence giving the verdict on one signature."""
    when = _vn_display_time(sig.signing_time)
    when_text = f" ký lúc {when}" if when else ""
    if sig.signing_time_source == "claimed" and when:
        when_text += " (thời gian do người ký tự khai)"
    what = "Dấu thời gian tài liệu" if sig.kind == "document_timestamp" else "Chữ ký"
    who = signer_label(sig)
    if sig.indication is Indication.TOTAL_PASSED:
        head = f"{what} hợp lệ của {who}{when_text}"
        tail = f"; {_CHANGES_VI[sig.changes]}."
        return head + tail
    reason = _SUB_VI.get(sig.subindication or "", sig.subindication or "chưa rõ lý do")
    if sig.intact and sig.changes is Changes.OTHER and sig.subindication == FORMAT_FAILURE:
        reason = _CHANGES_VI[Changes.OTHER]
    if sig.indication is Indication.TOTAL_FAILED:
        head = f"{what} KHÔNG hợp lệ của {who}{when_text}: {reason}"
    else:
        head = f"{what} của {who}{when_text} CHƯA xác định được hiệu lực: {reason}"
    if not sig.intact:
        head += "; nội dung đã ký không còn nguyên vẹn"
    elif sig.changes is Changes.OTHER and reason != _CHANGES_VI[Changes.OTHER]:
        head += "; " + _CHANGES_VI[Changes.OTHER]
    elif sig.indication is Indication.INDETERMINATE:
        head += "; nội dung đã ký còn nguyên vẹn"
    return head + "."


def summary_vi(report: ValidationReport) -> str:
    """A one-paragraph Vietnamese summary of the whole report."""
    name = f"Tệp {report.file_name}" if report.file_name else "Tệp"
    if report.status == "unreadable":
        why = report.errors[0] if report.errors else "tệp hỏng hoặc không phải PDF"
        return f"{name} không kiểm tra được chữ ký: {why}."
    if report.status == "unsigned" or not report.signatures:
        return f"{name} không có chữ ký số."
    parts = [sentence_vi(s) for s in report.signatures]
    n = len(report.signatures)
    if report.all_passed:
        lead = f"{name} có {n} chữ ký, tất cả hợp lệ."
    else:
        bad = sum(1 for s in report.signatures if not s.passed)
        lead = f"{name} có {n} chữ ký, {bad} chữ ký không hợp lệ hoặc chưa xác định được."
    return " ".join([lead, *parts])
