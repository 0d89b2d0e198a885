# mypy: disable-error-code="no-untyped-call"
# (pyHanko's PDF writer API is unannotated.)
"""The printable verification report: an A4 PDF in Vietnamese.

Written with pyHanko's own PDF writer and text boxes (no extra dependency), with the
Vietnamese-subset Noto Serif shipped in ``signing/fonts/`` embedded (1000 units per em, which
pyHanko's width tables need: SIGNING-NOTES trap 7). Text is NFC-normalised before layout.
"""

from __future__ import annotations

import io
import textwrap
import unicodedata
from pathlib import Path

from signing.report import Indication, ValidationReport, sentence_vi, signer_label, summary_vi

FONT_PATH = Path(__file__).resolve().parent / "fonts" / "NotoSerif-Regular-vi.ttf"
_PAGE_W, _PAGE_H, _MARGIN = 595, 842, 40
_FONT_SIZE, _LEADING = 10, 14
_LINES_PER_PAGE = (_PAGE_H - 2 * _MARGIN) // _LEADING - 1
_WRAP = 100

_INDICATION_VI = {
    Indication.TOTAL_PASSED: "HỢP LỆ",
    Indication.TOTAL_FAILED: "KHÔNG HỢP LỆ",
    Indication.INDETERMINATE: "CHƯA XÁC ĐỊNH",
}


def report_lines(report: ValidationReport) -> list[str]:
    """The report as plain text lines (also what the PDF shows)."""
    lines = [
        "BÁO CÁO XÁC MINH CHỮ KÝ SỐ",
        "",
        f"Tệp: {report.file_name or '(không tên)'}",
        f"SHA-256: {report.sha256}",
        f"Kích thước: {report.size} byte",
        f"Thời điểm xác minh: {report.verified_at}",
        "",
        *textwrap.wrap(summary_vi(report), _WRAP),
        "",
    ]
    for sig in report.signatures:
        what = "Dấu thời gian tài liệu" if sig.kind == "document_timestamp" else "Chữ ký"
        lines.append(
            f"{what} {sig.index + 1} (trường {sig.field}): {_INDICATION_VI[sig.indication]}"
        )
        details = [
            f"Người ký: {signer_label(sig)}",
            f"Chứng thư: {sig.signer.subject if sig.signer else '-'}",
            f"Cấp bởi: {sig.signer.issuer if sig.signer else '-'}",
            f"Thời điểm ký: {sig.signing_time or '-'} ({sig.signing_time_source or 'không rõ'})",
            f"Chỉ báo ETSI: {sig.indication.value}"
            + (f" / {sig.subindication}" if sig.subindication else ""),
            f"Nội dung đã ký nguyên vẹn: {'có' if sig.intact else 'KHÔNG'}",
            f"Thay đổi sau khi ký: {sig.changes.value}"
            + (f" ({sig.changes_detail})" if sig.changes_detail else ""),
            f"Phạm vi byte: {sig.byte_range} ({sig.coverage or '-'})",
            "Tình trạng thu hồi: "
            + (f"{sig.revocation.status} ({sig.revocation.mode})" if sig.revocation else "-"),
            f"Mức PAdES: {sig.level or '-'}",
        ]
        for tst in sig.timestamps:
            details.append(f"Dấu thời gian ({tst.kind}): {tst.time}, tin cậy: {tst.trusted}")
        for reason in sig.reasons:
            details.append(f"Ghi chú: {reason}")
        details.append(sentence_vi(sig))
        for item in details:
            lines.extend(textwrap.wrap(item, _WRAP, initial_indent="  ", subsequent_indent="    "))
        lines.append("")
    for err in report.errors:
        lines.extend(textwrap.wrap(f"Lưu ý: {err}", _WRAP))
    return [unicodedata.normalize("NFC", line) for line in lines]


def render_pdf_report(report: ValidationReport) -> bytes:
    """An A4 PDF with the report in Vietnamese (embedded font)."""
    from pyhanko.pdf_utils import generic, layout
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.text import TextBox, TextBoxStyle
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    writer = PdfFileWriter(stream_xrefs=False)
    factory = GlyphAccumulatorFactory(str(FONT_PATH), font_size=_FONT_SIZE)
    style = TextBoxStyle(font=factory, font_size=_FONT_SIZE, leading=_LEADING)
    lines = report_lines(report) or [""]
    for start in range(0, len(lines), _LINES_PER_PAGE):
        chunk = lines[start : start + _LINES_PER_PAGE]
        box = TextBox(
            style,
            writer=writer,
            box=layout.BoxConstraints(width=_PAGE_W - 2 * _MARGIN, height=_PAGE_H - 2 * _MARGIN),
        )
        box.content = "\n".join(chunk)
        body = box.render()
        top = _PAGE_H - _MARGIN - box.box.height
        content = b"q 1 0 0 1 %d %d cm\n" % (_MARGIN, top) + body + b"\nQ\n"
        stream = generic.StreamObject(stream_data=content)
        page = PageObject(
            contents=writer.add_object(stream),
            media_box=generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, _PAGE_W, _PAGE_H)]
            ),
            resources=box.resources.as_pdf_object(),
        )
        writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
