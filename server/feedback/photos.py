"""The photos of a feedback: proved to be images, re-encoded, stripped of their metadata.

Each photo is decoded with Pillow (so only a real JPEG, PNG, WebP or GIF passes), its size in
pixels checked before its pixels are decoded (a decompression bomb is refused, not decoded),
turned upright by its EXIF orientation, then re-encoded from its pixels alone: PNG for a PNG
and for any image with transparency, JPEG (quality 85) for the others. Nothing of the original
file but its pixels is kept: no EXIF (GPS position, camera, time), no XMP, no ICC profile, no
comments.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from server.feedback.errors import InvalidFeedback

MAX_PHOTOS = 5
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")


@dataclass(frozen=True)
class CleanPhoto:
    """A photo ready to store: re-encoded bytes written to ``path``."""

    path: Path
    sha256: str
    size: int
    content_type: str
    width: int
    height: int


def clean_photo(
    source: IO[bytes], field: str, out: Path, *, max_bytes: int, max_pixels: int
) -> CleanPhoto:
    """Decode the photo in ``source`` (a spooled file at its start), re-encode it to ``out``;
    :class:`InvalidFeedback` naming ``field`` when it is too large, not an image or a bomb.
    Blocking: run it in a thread."""
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidFeedback(field, f"is larger than {max_bytes} bytes")
    if not data:
        raise InvalidFeedback(field, "is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = opened.size
            if width * height > max_pixels:
                raise InvalidFeedback(
                    field, f"has {width}x{height} pixels, more than the {max_pixels} allowed"
                )
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except InvalidFeedback:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidFeedback(field, "has too many pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidFeedback(field, "is not a JPEG, PNG, WebP or GIF image") from None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    buffer = io.BytesIO()
    if has_alpha or opened.format == "PNG":
        pixels = image.convert("RGBA")
        pixels.info.clear()
        pixels.save(buffer, "PNG", optimize=True)
        content_type = "image/png"
    else:
        pixels = image.convert("RGB")
        pixels.info.clear()
        pixels.save(buffer, "JPEG", quality=85)
        content_type = "image/jpeg"
    encoded = buffer.getvalue()
    out.write_bytes(encoded)
    return CleanPhoto(
        out,
        hashlib.sha256(encoded).hexdigest(),
        len(encoded),
        content_type,
        pixels.width,
        pixels.height,
    )
