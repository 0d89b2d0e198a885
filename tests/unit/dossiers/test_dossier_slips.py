"""Dossier slips (server/dossiers/slips.py): each kind renders, pdftotext reads the Vietnamese
back, the QR code decodes (zbarimg) to the lookup URL, and each page matches its committed
reference rendering. Regenerate the references with LIENTHONG_SLIP_REFERENCES=write."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from server.dossiers.slips import (
    FORMS,
    KINDS,
    QUOC_HIEU,
    TIEU_NGU,
    SlipError,
    SlipKind,
    render_slip,
    vn_datetime,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import slip_samples as samples

REFERENCES = Path(__file__).resolve().parent / "slips_reference"
REFERENCE_DPI = 60
# Share of pixels (grey level differing by more than 64) a rendering may differ from its
# reference: anti-aliasing of another poppler or FreeType version, not a moved line.
TOLERANCE = 0.005


@pytest.fixture(scope="module")
def pdfs() -> dict[str, bytes]:
    return {kind: render_slip(samples.sample(kind)) for kind in KINDS}


def _pdftotext(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf,
                         capture_output=True, check=True)  # fmt: skip
    return unicodedata.normalize("NFC", out.stdout.decode("utf-8"))


def _render(pdf: bytes, dpi: int, tmp_path: Path, gray: bool = True) -> Path:
    source = tmp_path / "slip.pdf"
    source.write_bytes(pdf)
    args = ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", *(["-gray"] if gray else [])]
    subprocess.run([*args, str(source), str(tmp_path / "page")], check=True)
    return tmp_path / "page.png"


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_renders_one_a4_page(kind: SlipKind, pdfs: dict[str, bytes]) -> None:
    pdf = pdfs[kind]
    assert pdf.startswith(b"%PDF-")
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    assert b"Pages:           1" in info
    assert b"595.28 x 841.89 pts (A4)" in info


@pytest.mark.parametrize("kind", KINDS)
def test_pdftotext_reads_the_vietnamese_back(kind: SlipKind, pdfs: dict[str, bytes]) -> None:
    text = _pdftotext(pdfs[kind])
    flat = " ".join(text.split())
    for expected in (QUOC_HIEU, TIEU_NGU, FORMS[kind][1], f"Mẫu số {FORMS[kind][0]}",
                     samples.CODE, samples.APPLICANT, "ỦY BAN NHÂN DÂN TỈNH NGHỆ AN",
                     "Cấp giấy phép xây dựng mới đối với nhà ở riêng lẻ",
                     "Bản sao giấy tờ chứng minh quyền sử dụng đất",
                     "05/01/2026 09:15 (+07:00)", samples.LOOKUP_URL):  # fmt: skip
        assert expected in flat, expected
    if kind != "refusal":
        assert "19/01/2026 09:15 (+07:00)" in flat
    if kind == "apology":
        assert "Thời gian hẹn trả kết quả mới: 23/01/2026 16:00 (+07:00)" in flat
        assert "Nghệ An, ngày 20 tháng 01 năm 2026" in flat
        assert samples.REASONS["apology"] in flat
    else:
        assert "Nghệ An, ngày 05 tháng 01 năm 2026" in flat
    if kind == "refusal":
        assert samples.REASONS["refusal"] in flat
    if kind == "supplement":
        assert "Bản vẽ mặt bằng móng tỷ lệ 1/100" in flat


@pytest.mark.parametrize("kind", KINDS)
def test_the_qr_code_opens_the_lookup_url(
    kind: SlipKind, pdfs: dict[str, bytes], tmp_path: Path
) -> None:
    png = _render(pdfs[kind], 150, tmp_path)
    out = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable",
                          str(png)], capture_output=True, check=True)  # fmt: skip
    assert out.stdout.decode("utf-8").strip() == samples.LOOKUP_URL


@pytest.mark.parametrize("kind", KINDS)
def test_the_page_matches_its_reference_rendering(
    kind: SlipKind, pdfs: dict[str, bytes], tmp_path: Path
) -> None:
    png = _render(pdfs[kind], REFERENCE_DPI, tmp_path)
    reference = REFERENCES / f"{kind}.png"
    if os.environ.get("LIENTHONG_SLIP_REFERENCES") == "write":
        reference.write_bytes(png.read_bytes())
    with Image.open(png) as got, Image.open(reference) as want:
        assert got.size == want.size
        diff = ImageChops.difference(got.convert("L"), want.convert("L"))
        changed = sum(diff.histogram()[65:])
        ratio = changed / (got.size[0] * got.size[1])
    assert ratio <= TOLERANCE, f"{kind}: {ratio:.4%} of the pixels differ from {reference.name}"


def test_rendering_is_pure() -> None:
    data = samples.sample("receipt")
    assert render_slip(data) == render_slip(data)


def test_times_show_in_vietnam_time_whatever_zone_they_come_in() -> None:
    from datetime import UTC

    assert vn_datetime(datetime(2026, 1, 5, 2, 15, tzinfo=UTC)) == "05/01/2026 09:15 (+07:00)"


@pytest.mark.parametrize(
    ("kind", "changes", "message"),
    [
        ("apology", {"new_due_at": None}, "new_due_at and reason"),
        ("apology", {"reason": " "}, "new_due_at and reason"),
        ("supplement", {"missing": ()}, "missing items"),
        ("refusal", {"reason": ""}, "needs reason"),
        ("receipt", {"due_at": None}, "needs due_at"),
        ("receipt", {"received_at": datetime(2026, 1, 5, 9, 15)}, "received_at has no time zone"),
        ("receipt", {"lookup_url": "/tra-cuu"}, r"absolute http\(s\) URL"),
        ("receipt", {"kind": "control"}, "unknown slip kind"),
    ],
)
def test_a_slip_missing_what_its_kind_needs_is_refused(
    kind: SlipKind, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(SlipError, match=message):
        dataclasses.replace(samples.sample(kind), **changes)  # type: ignore[arg-type]
