"""Photos: only images pass, upright, re-encoded from their pixels, without any metadata;
too many bytes or pixels refused before decoding."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from server.feedback.errors import InvalidFeedback
from server.feedback.photos import clean_photo

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


def encoded(image: Image.Image, fmt: str, **options: object) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    out.seek(0)
    return out


def test_upright_and_stripped(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x8825] = {1: "N", 2: (18.0, 40.0, 0.0)}  # GPS
    source = encoded(image, "JPEG", exif=exif, icc_profile=b"fake-icc", comment=b"secret")
    clean = clean_photo(source, "photos[1]", tmp_path / "p.jpg", **LIMITS)
    assert (clean.content_type, clean.width, clean.height) == ("image/jpeg", 20, 40)
    data = (tmp_path / "p.jpg").read_bytes()
    assert clean.size == len(data)
    kept = Image.open(io.BytesIO(data))
    assert len(kept.getexif()) == 0
    assert not {"exif", "icc_profile", "comment"} & set(kept.info)
    assert b"secret" not in data and b"fake-icc" not in data


def test_formats(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    png = clean_photo(encoded(Image.new("RGB", (8, 8)), "PNG"), "p", tmp_path / "a", **LIMITS)
    webp = clean_photo(encoded(rgba, "WEBP"), "p", tmp_path / "b", **LIMITS)
    gif = clean_photo(encoded(Image.new("P", (8, 8)), "GIF"), "p", tmp_path / "c", **LIMITS)
    assert [png.content_type, webp.content_type, gif.content_type] == [
        "image/png", "image/png", "image/jpeg"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 not an image", "not a JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a JPEG"),
        (encoded(Image.new("1", (1001, 1000)), "PNG").getvalue(), "pixels"),
        (encoded(Image.new("RGB", (8, 8)), "BMP").getvalue(), "not a JPEG"),
        (b"x" * 1_000_001, "larger than"),
    ],
)
def test_refused(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidFeedback, match=message) as refused:
        clean_photo(io.BytesIO(data), "photos[3]", tmp_path / "x", **LIMITS)
    assert refused.value.field == "photos[3]"
    assert not (tmp_path / "x").exists()
