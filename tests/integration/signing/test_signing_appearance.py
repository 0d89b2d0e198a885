"""Each NĐ 30 stamp rendered by poppler (pdftoppm) and compared with a committed reference PNG.

The comparison tolerates anti-aliasing noise but not a missing or misplaced diacritic, a
changed spacing or a moved image (see the negative control at the end). To regenerate the
references after an intended change: ``LIENTHONG_UPDATE_REFERENCES=1 pytest <this file>``,
then look at every PNG before committing it.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageChops
from pyhanko.pdf_utils.reader import PdfFileReader

from signing import (
    CopyAppearance,
    CopyType,
    IssuedAttachmentAppearance,
    SealAppearance,
    SignerAppearance,
    Token,
    sign_pdf,
)

REFERENCES = Path(__file__).resolve().parent / "reference"
IMAGES = Path(__file__).resolve().parents[3] / "certs" / "images"
DPI = 150
TILE = 16
STRONG = 100  # grey levels
TILE_TOLERANCE = 6  # pixels per tile
FIXED_TIME = datetime(2026, 11, 23, 10, 15, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
SIGNER = SignerAppearance(
    title="KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH",
    full_name="Nguyễn Văn Ánh",
    image=IMAGES / "sample-signature.png",
)


def _render_fields(pdf: Path, names: list[str], out_dir: Path) -> Image.Image:
    """The page area covering the named signature widgets, rendered at DPI."""
    with pdf.open("rb") as f:
        reader = PdfFileReader(f)
        page_h = float(reader.root["/Pages"]["/Kids"][0]["/MediaBox"][3])
        rects = []
        for sig in reader.embedded_signatures:
            if sig.field_name in names:
                rects.append([float(v) for v in sig.sig_field["/Rect"]])
    assert len(rects) == len(names)
    x1 = min(r[0] for r in rects)
    y1 = min(r[1] for r in rects)
    x2 = max(r[2] for r in rects)
    y2 = max(r[3] for r in rects)
    prefix = out_dir / "page"
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-png", "-singlefile", "-f", "1", "-l", "1",
         str(pdf), str(prefix)],
        check=True,
    )  # fmt: skip
    scale = DPI / 72
    page = Image.open(f"{prefix}.png").convert("RGB")
    box = (
        int(x1 * scale), int((page_h - y2) * scale), int(x2 * scale), int((page_h - y1) * scale)
    )  # fmt: skip
    return page.crop(box)


def _differs(actual: Image.Image, expected: Image.Image) -> str | None:
    """Why two renderings differ beyond anti-aliasing noise, or None when they match.

    Compared tile by tile, so that one lost diacritic (a few dozen pixels) is not diluted by a
    large unchanged stamp; a few strongly differing pixels per tile are tolerated.
    """
    if abs(actual.width - expected.width) > 2 or abs(actual.height - expected.height) > 2:
        return f"size {actual.size} != {expected.size}"
    actual = actual.resize(expected.size).convert("L")
    strong = ImageChops.difference(actual, expected.convert("L")).point(
        lambda p: 255 if p > STRONG else 0
    )
    worst = 0
    for top in range(0, strong.height, TILE):
        for left in range(0, strong.width, TILE):
            tile = strong.crop((left, top, left + TILE, top + TILE))
            worst = max(worst, tile.histogram()[255])
    if worst > TILE_TOLERANCE:
        return f"{worst} strongly differing pixels in one {TILE}x{TILE} tile"
    return None


def _check(name: str, image: Image.Image, tmp_path: Path) -> None:
    reference = REFERENCES / f"{name}.png"
    if os.environ.get("LIENTHONG_UPDATE_REFERENCES"):
        REFERENCES.mkdir(exist_ok=True)
        image.save(reference, optimize=True)
        pytest.skip(f"reference {reference.name} written: look at it before committing")
    image.save(tmp_path / f"{name}.actual.png")
    problem = _differs(image, Image.open(reference))
    assert problem is None, f"{name}: {problem} (actual in {tmp_path})"


def test_signing_appearance_signer(pki, officer_token: Token, blank_pdf: Path, tmp_path: Path):
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    out = sign_pdf(blank_pdf, tmp_path / "s.pdf", signer, appearance=SIGNER, field="NguoiKy")
    _check("signer", _render_fields(out, ["NguoiKy"], tmp_path), tmp_path)


def test_signing_appearance_seal_over_signer(
    pki, officer_token: Token, agency_token: Token, blank_pdf: Path, tmp_path: Path
):
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    seal = agency_token.signer("seal", chain=[pki.cert("gov")])
    first = sign_pdf(blank_pdf, tmp_path / "s.pdf", signer, appearance=SIGNER, field="NguoiKy")
    out = sign_pdf(
        first, tmp_path / "seal.pdf", seal, field="DauCoQuan",
        appearance=SealAppearance(image=IMAGES / "sample-seal.png", over_field="NguoiKy"),
    )  # fmt: skip
    _check("seal", _render_fields(out, ["NguoiKy", "DauCoQuan"], tmp_path), tmp_path)


def test_signing_appearance_issued_attachment(
    pki, agency_token: Token, blank_pdf: Path, tmp_path: Path
):
    seal = agency_token.signer("seal", chain=[pki.cert("gov")])
    appearance = IssuedAttachmentAppearance(
        number="Số: 123/UBND-VP", agency="Ủy ban nhân dân tỉnh Thử Nghiệm", display_time=FIXED_TIME
    )
    out = sign_pdf(blank_pdf, tmp_path / "a.pdf", seal, appearance=appearance, field="PhatHanh")
    _check("issued-attachment", _render_fields(out, ["PhatHanh"], tmp_path), tmp_path)


def test_signing_appearance_copy(pki, agency_token: Token, blank_pdf: Path, tmp_path: Path):
    seal = agency_token.signer("seal", chain=[pki.cert("gov")])
    appearance = CopyAppearance(
        copy_type=CopyType.SAO_Y, agency="Văn phòng Ủy ban nhân dân tỉnh Thử Nghiệm",
        display_time=FIXED_TIME,
    )  # fmt: skip
    out = sign_pdf(blank_pdf, tmp_path / "c.pdf", seal, appearance=appearance, field="BanSao")
    _check("copy", _render_fields(out, ["BanSao"], tmp_path), tmp_path)


def test_signing_appearance_compare_catches_lost_diacritics(
    pki, officer_token: Token, blank_pdf: Path, tmp_path: Path
):
    """Negative control: the same stamp without diacritics must not pass the comparison."""
    if os.environ.get("LIENTHONG_UPDATE_REFERENCES"):
        pytest.skip("references are being regenerated")
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    plain = SignerAppearance(
        title="KT. CHU TICH\nPHO CHU TICH", full_name="Nguyen Van Anh",
        image=IMAGES / "sample-signature.png",
    )  # fmt: skip
    out = sign_pdf(blank_pdf, tmp_path / "p.pdf", signer, appearance=plain, field="NguoiKy")
    image = _render_fields(out, ["NguoiKy"], tmp_path)
    assert _differs(image, Image.open(REFERENCES / "signer.png")) is not None
