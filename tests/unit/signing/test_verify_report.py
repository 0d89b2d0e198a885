"""The JSON report (schema lienthong.verification/1) and the Vietnamese summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from signing.report import (
    SCHEMA_ID,
    Changes,
    Indication,
    Revocation,
    SignatureReport,
    Signer,
    ValidationReport,
    summary_vi,
    to_vn_time,
)
from signing.report_pdf import render_pdf_report, report_lines


def _sig(**kw: object) -> SignatureReport:
    base: dict[str, object] = dict(
        index=0,
        field="ChuKy1",
        kind="signature",
        indication=Indication.TOTAL_PASSED,
        subindication=None,
        intact=True,
        changes=Changes.NONE,
        signer=Signer(name="Nguyễn Văn Ánh", organization="Ủy ban nhân dân tỉnh Thử Nghiệm"),
        signing_time="2026-11-23T10:15:00+07:00",
        signing_time_source="timestamp",
        revocation=Revocation(mode="hard-fail", status="good"),
    )
    base.update(kw)
    return SignatureReport(**base)  # type: ignore[arg-type]


def _report(*sigs: SignatureReport, status: str = "signed") -> ValidationReport:
    return ValidationReport(
        file_name="cong-van.pdf",
        sha256="0" * 64,
        size=1234,
        status=status,
        verified_at="2026-11-23T10:20:00+07:00",
        signatures=list(sigs),
    )


def test_times_are_shown_in_vietnam_time() -> None:
    assert to_vn_time(datetime(2026, 11, 23, 3, 15, tzinfo=UTC)) == "2026-11-23T10:15:00+07:00"
    assert to_vn_time(datetime(2026, 11, 23, 3, 15)) == "2026-11-23T10:15:00+07:00"
    assert to_vn_time(None) is None


def test_valid_signature_summary_names_signer_and_time() -> None:
    text = summary_vi(_report(_sig()))
    assert "Chữ ký hợp lệ của Nguyễn Văn Ánh (Ủy ban nhân dân tỉnh Thử Nghiệm)" in text
    assert "ký lúc 10:15:00 ngày 23/11/2026 (+07:00)" in text
    assert "không bị thay đổi sau khi ký" in text


def test_failed_and_indeterminate_summaries_say_why() -> None:
    bad = _sig(
        indication=Indication.TOTAL_FAILED,
        subindication="HASH_FAILURE",
        intact=False,
        changes=Changes.OTHER,
    )
    text = summary_vi(_report(bad))
    assert "KHÔNG hợp lệ" in text and "nội dung đã ký bị thay đổi" in text
    unknown = _sig(indication=Indication.INDETERMINATE, subindication="TRY_LATER")
    text = summary_vi(_report(unknown))
    assert "CHƯA xác định" in text and "thu hồi" in text
    claimed = _sig(signing_time_source="claimed")
    assert "tự khai" in summary_vi(_report(claimed))


def test_unsigned_and_unreadable_files_say_so() -> None:
    assert "không có chữ ký số" in summary_vi(_report(status="unsigned"))
    unreadable = _report(status="unreadable")
    unreadable.errors.append("not a PDF file")
    assert "không kiểm tra được" in summary_vi(unreadable)
    assert not unreadable.all_passed and unreadable.indication is None


def test_overall_indication_is_the_worst() -> None:
    report = _report(_sig(), _sig(index=1, indication=Indication.INDETERMINATE))
    assert report.indication is Indication.INDETERMINATE and not report.all_passed
    report.signatures.append(_sig(index=2, indication=Indication.TOTAL_FAILED))
    assert report.indication is Indication.TOTAL_FAILED


def test_json_schema_fields_and_round_trip() -> None:
    report = _report(_sig(), _sig(index=1, changes=Changes.PERMITTED))
    data = report.to_json()
    assert data["schema"] == SCHEMA_ID
    assert data["all_passed"] is True and data["indication"] == "TOTAL_PASSED"
    for sig in data["signatures"]:
        for key in ("indication", "subindication", "signer", "signing_time", "intact", "changes"):
            assert key in sig
    assert data["signatures"][1]["changes"] == "permitted"
    text = json.dumps(data, ensure_ascii=False)
    assert "Nguyễn Văn Ánh" in text
    assert ValidationReport.from_json(json.loads(text)).to_json() == data


def test_pdf_report_is_a_pdf_with_the_vietnamese_text() -> None:
    report = _report(_sig())
    lines = report_lines(report)
    assert lines[0] == "BÁO CÁO XÁC MINH CHỮ KÝ SỐ"
    pdf = render_pdf_report(report)
    assert pdf.startswith(b"%PDF-") and b"/FontFile2" in pdf
    many = _report(*[_sig(index=i) for i in range(12)])
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader

    one = PdfFileReader(BytesIO(pdf)).root["/Pages"]["/Count"]
    several = PdfFileReader(BytesIO(render_pdf_report(many))).root["/Pages"]["/Count"]
    assert one == 1 and several > 1
