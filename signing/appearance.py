"""Visible signature appearances of Nghị định 30/2020/NĐ-CP, Phụ lục I (see VN-RULES.md).

Four profiles:

- :class:`SignerAppearance` (``signer``): chữ ký của người có thẩm quyền — the title line(s)
  (with TM., KT., TL., Q., TUQ. prefixes for signing on behalf), the handwritten-signature image
  centred below, then the full name.
- :class:`SealAppearance` (``seal``): chữ ký số của cơ quan — the red seal image at real size,
  overlapping about a third of the signer's signature image on its left.
- :class:`IssuedAttachmentAppearance` (``issued-attachment``): an attachment in a separate
  file — top right of page 1, no image: the document number/code, the agency and the signing
  time in ISO 8601 with +07:00, 10 pt, black.
- :class:`CopyAppearance` (``copy``): bản sao điện tử — top right of page 1, no image: the copy
  type (SAO Y, SAO LỤC, TRÍCH SAO), the copying agency and the ISO 8601 time, 10 pt, black.

Text is normalised to NFC and drawn with the pre-subset Noto Serif in ``signing/fonts`` (1000
units per em, so pyHanko's widths are right), embedded in the PDF.
"""

from __future__ import annotations

import enum
import functools
import io
import os
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pyhanko.pdf_utils import content, generic, layout
from pyhanko.pdf_utils.font.api import FontEngine
from pyhanko.pdf_utils.font.opentype import CIDFontType2, GlyphAccumulator
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from signing.errors import AppearanceError

FONT_PATH = Path(__file__).resolve().parent / "fonts" / "NotoSerif-Regular-vi.ttf"
VIETNAM_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TITLE_PREFIXES = ("TM.", "KT.", "TL.", "Q.", "TUQ.")
MM = 72 / 25.4  # points per millimetre
BLUE_INK = (0.0, 0.0, 0.0)  # text stays black; the signature image itself carries the blue
BLACK = (0.0, 0.0, 0.0)
TOP_RIGHT_MARGIN = 20.0


def nfc(text: str) -> str:
    """Text in Unicode NFC: one code point per accented letter, as the font's cmap expects."""
    return unicodedata.normalize("NFC", text)


def iso_time(moment: datetime) -> str:
    """``2026-11-23T10:15:00+07:00``: the moment in Vietnam time, ISO 8601, to the second.

    Formatted here rather than by pyHanko, whose ``%(ts)s`` uses the process's local zone.
    """
    if moment.tzinfo is None:
        raise AppearanceError("the signing time must be timezone-aware")
    return moment.astimezone(VIETNAM_TZ).replace(microsecond=0).isoformat()


@functools.lru_cache(maxsize=1)
def _font_bytes() -> bytes:
    return FONT_PATH.read_bytes()


@functools.lru_cache(maxsize=1)
def _font_stream_data() -> bytes:
    return zlib.compress(_font_bytes(), 6)


class _PresubsetCIDFont(CIDFontType2):
    """Embeds the whole pre-subset font program, compressed once per process."""

    def set_font_file(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        stream = generic.StreamObject(
            {
                pdf_name("/Filter"): pdf_name("/FlateDecode"),
                pdf_name("/Length1"): generic.NumberObject(len(_font_bytes())),  # type: ignore[no-untyped-call]
            },
            encoded_data=_font_stream_data(),
        )
        ref = writer.add_object(stream)
        self._font_descriptor[pdf_name("/FontFile2")] = ref
        return ref


@dataclass(frozen=True)
class _SharedFont:
    tt: Any
    hb_font: Any
    glyph_set: Any
    reverse_cmap: Any
    ps_name: str
    units_per_em: int


@functools.lru_cache(maxsize=1)
def _shared_font() -> _SharedFont:
    """The stamp font parsed once per process; read-only afterwards, so safely shared."""
    import uharfbuzz as hb
    from fontTools import ttLib
    from pyhanko.pdf_utils.font.opentype import _read_ps_name

    data = _font_bytes()
    tt = ttLib.TTFont(io.BytesIO(data))
    for tag in tt.keys():  # decompile every table now: lazy loading is not thread-safe
        tt[tag]
    return _SharedFont(
        tt=tt,
        hb_font=hb.Font(hb.Face(data)),
        glyph_set=tt.getGlyphSet(preferCFF=True),
        reverse_cmap=tt["cmap"].buildReversed(),
        ps_name=_read_ps_name(tt),
        units_per_em=int(tt["head"].unitsPerEm),
    )


class _PresubsetAccumulator(GlyphAccumulator):
    """pyHanko's glyph accumulator on a shared, already-parsed font, without subsetting.

    Stock pyHanko parses the font (~5 ms) and subsets it with fontTools (~75 ms: it re-reads
    the layout tables) for every signature. Our font is already cut to Latin + Vietnamese
    (87 KB), so it is parsed once per process and embedded whole, compressed once
    (SIGNING-NOTES.md, trap 7). The attributes set here are those of
    ``GlyphAccumulator.__init__`` in pyHanko 0.38.
    """

    def __init__(self, writer: BasePdfFileWriter, font_size: int, obj_stream: Any = None) -> None:
        shared = _shared_font()
        FontEngine.__init__(
            self, writer, shared.ps_name, embedded_subset=True, obj_stream=obj_stream,
            font_size=font_size,
        )  # fmt: skip
        self.hb_font = shared.hb_font
        self.tt = shared.tt
        self._font_ref = writer.allocate_placeholder()
        self.cff_charset = None
        self.use_raw_gids = True
        self.cidfont_obj = _PresubsetCIDFont(shared.tt, shared.ps_name, self.subset_prefix)
        self.features = None
        self.units_per_em = shared.units_per_em
        self._glyphs: dict[int, tuple[int, int]] = {}
        self._glyph_set = shared.glyph_set
        self._cid_to_unicode: dict[int, str] = {}
        self._GlyphAccumulator__reverse_cmap = shared.reverse_cmap
        self.ot_language_tag = None
        self.ot_script_tag = None
        self.writing_direction = None
        self.bcp47_lang_code = None
        self._subset_created = True  # nothing to subset
        self._write_prepared = False


@functools.lru_cache(maxsize=1)
def _advance_widths() -> tuple[dict[int, int], int]:
    from fontTools.ttLib import TTFont

    font = TTFont(str(FONT_PATH), lazy=True)
    cmap = font.getBestCmap()
    hmtx = font["hmtx"]
    widths = {code: hmtx[glyph][0] for code, glyph in cmap.items()}
    return widths, int(font["head"].unitsPerEm)


def text_width(text: str, font_size: float) -> float:
    """Width in points of ``text`` in the stamp font (advance widths; no kerning)."""
    widths, upem = _advance_widths()
    return sum(widths.get(ord(ch), upem // 2) for ch in nfc(text)) * font_size / upem


def _load_image(image: str | os.PathLike[str] | bytes) -> Any:
    from PIL import Image

    try:
        if isinstance(image, bytes):
            img = Image.open(io.BytesIO(image))
        else:
            img = Image.open(image)
        img.load()
    except (OSError, ValueError) as exc:
        raise AppearanceError(f"cannot read the appearance image: {exc}") from exc
    return img


@dataclass(frozen=True)
class StampLayout:
    """Where a stamp goes: page index (negative counts from the end) and box in points."""

    page: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in PDF user space


@dataclass(frozen=True)
class Nd30StampStyle(BaseStampStyle):
    """Lines of text above and below an optional image, all centred or all right-aligned."""

    top_lines: tuple[str, ...] = ()
    bottom_lines: tuple[str, ...] = ()
    image: Any = None  # a PIL image
    font_size: int = 10
    align: str = "center"  # or "right"
    text_color: tuple[float, float, float] = BLACK
    border_width: int = 0
    background_opacity: float = 1.0
    image_box: tuple[float, float, float, float] | None = None  # x, y, w, h inside the stamp

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict[str, Any]
    ) -> Nd30Stamp:
        return Nd30Stamp(writer, self, box, text_params or {})


class Nd30Stamp(BaseStamp):
    """Renders an :class:`Nd30StampStyle` into the signature widget's appearance stream."""

    def __init__(
        self,
        writer: BasePdfFileWriter,
        style: Nd30StampStyle,
        box: layout.BoxConstraints,
        text_params: dict[str, Any],
    ) -> None:
        super().__init__(writer=writer, style=style, box=box)
        self.text_params = text_params

    def _render_inner_content(self) -> list[bytes]:
        style: Nd30StampStyle = self.style
        size = style.font_size
        width, height = float(self.box.width), float(self.box.height)
        leading = size * 1.25
        pad = 2.0
        ops: list[bytes] = [b"%g %g %g rg" % style.text_color]

        engine: Any = None
        if (style.top_lines or style.bottom_lines) and self.writer is not None:
            # An embedded font only when there is text: an empty subset cannot be written.
            engine = _PresubsetAccumulator(self.writer, size)
            # The accumulator positions glyphs with its own size: keep it equal to the Tf size.
            engine.font_size = size
            self.set_resource(content.ResourceType.FONT, pdf_name("/F1"), engine.as_resource())

        def line(text: str, baseline: float) -> None:
            shaped = engine.shape(nfc(text % self.text_params if "%(" in text else text))
            advance = shaped.x_advance * size
            x = (width - advance) / 2 if style.align == "center" else width - pad - advance
            ops.append(b"BT /F1 %d Tf %g %g Td %s ET" % (size, x, baseline, shaped.graphics_ops))

        for i, text in enumerate(style.top_lines):
            line(text, height - pad - size - i * leading)
        for i, text in enumerate(reversed(style.bottom_lines)):
            line(text, pad + size * 0.25 + i * leading)

        if style.image is not None:
            top = height - pad - len(style.top_lines) * leading
            bottom = pad + len(style.bottom_lines) * leading
            if style.image_box is not None:
                x, y, w, h = style.image_box
            else:
                x, y, w, h = pad, bottom, width - 2 * pad, max(top - bottom, 1.0)
            img_w, img_h = style.image.size
            scale = min(w / img_w, h / img_h)
            draw_w, draw_h = img_w * scale, img_h * scale
            from pyhanko.pdf_utils.images import PdfImage

            pdf_img = PdfImage(style.image, writer=self.writer)
            self.set_resource(content.ResourceType.XOBJECT, pdf_name("/Im1"), pdf_img.image_ref)
            ops.append(
                b"q %g 0 0 %g %g %g cm /Im1 Do Q"
                % (draw_w, draw_h, x + (w - draw_w) / 2, y + (h - draw_h) / 2)
            )
        return ops


class Appearance(Protocol):
    """A profile: where its widget goes and how it looks, given the document and signing time."""

    name: str

    def layout(self, page_sizes: list[tuple[float, float]], fields: dict[str, Any]) -> StampLayout:
        """The widget's page and box, from the page sizes and existing signature field rects."""
        ...

    def style(self, signing_time: datetime) -> Nd30StampStyle:
        """The stamp style for a signature made at ``signing_time``."""
        ...


def _page_index(page: int, count: int) -> int:
    index = page if page >= 0 else count + page
    if not 0 <= index < count:
        raise AppearanceError(f"page {page} does not exist (the document has {count})")
    return index


@dataclass(frozen=True)
class SignerAppearance:
    """Người có thẩm quyền ký: title line(s), signature image, full name (NĐ 30, Phụ lục I).

    ``title`` may span lines (``"KT. CHỦ TỊCH\\nPHÓ CHỦ TỊCH"``); a first line starting with a
    signing-on-behalf prefix must use one of TM., KT., TL., Q., TUQ.
    """

    title: str
    full_name: str
    image: str | os.PathLike[str] | bytes | None = None
    page: int = -1
    box: tuple[float, float, float, float] = (330.0, 60.0, 530.0, 200.0)
    font_size: int = 11
    name: str = field(default="signer", init=False)

    def __post_init__(self) -> None:
        first = nfc(self.title).split("\n", 1)[0].strip()
        head = first.split(" ", 1)[0]
        if head.endswith(".") and head.upper() not in TITLE_PREFIXES:
            raise AppearanceError(
                f"unknown title prefix {head!r}: use one of {', '.join(TITLE_PREFIXES)}"
            )
        if not self.full_name.strip():
            raise AppearanceError("the signer's full name is empty")

    def layout(self, page_sizes: list[tuple[float, float]], fields: dict[str, Any]) -> StampLayout:
        return StampLayout(_page_index(self.page, len(page_sizes)), self.box)

    def style(self, signing_time: datetime) -> Nd30StampStyle:
        image = _load_image(self.image) if self.image is not None else None
        return Nd30StampStyle(
            top_lines=tuple(nfc(self.title).split("\n")),
            bottom_lines=(nfc(self.full_name),),
            image=image,
            font_size=self.font_size,
        )


@dataclass(frozen=True)
class SealAppearance:
    """Chữ ký số của cơ quan: the red seal image at real size over the signer's image.

    With ``over_field`` (the signer's signature field), the seal is centred vertically on that
    widget and overlaps the left third of it; otherwise it goes at ``box``. ``diameter_mm`` is the
    seal's real size (36 mm is common for a provincial committee; configurable).
    """

    image: str | os.PathLike[str] | bytes
    over_field: str | None = None
    page: int = -1
    box: tuple[float, float, float, float] | None = None
    diameter_mm: float = 36.0
    name: str = field(default="seal", init=False)

    def layout(self, page_sizes: list[tuple[float, float]], fields: dict[str, Any]) -> StampLayout:
        size = self.diameter_mm * MM
        if self.over_field is not None:
            try:
                page, (x1, y1, x2, y2) = fields[self.over_field]
            except KeyError:
                raise AppearanceError(
                    f"no signature field {self.over_field!r} to place the seal over"
                ) from None
            # The seal's right edge covers the left third of the signer's image.
            right = x1 + (x2 - x1) / 3
            middle = (y1 + y2) / 2
            return StampLayout(page, (right - size, middle - size / 2, right, middle + size / 2))
        if self.box is None:
            raise AppearanceError("a seal needs over_field (the signer's field) or a box")
        return StampLayout(_page_index(self.page, len(page_sizes)), self.box)

    def style(self, signing_time: datetime) -> Nd30StampStyle:
        return Nd30StampStyle(image=_load_image(self.image), image_box=None)


class CopyType(enum.Enum):
    """Hình thức bản sao (Nghị định 30/2020, Điều 25)."""

    SAO_Y = "SAO Y"
    SAO_LUC = "SAO LỤC"
    TRICH_SAO = "TRÍCH SAO"


def _top_right(page_sizes: list[tuple[float, float]], lines: list[str]) -> StampLayout:
    # Sized to the text so that it stays 10 pt (NĐ 30) however long the agency's name is.
    width = max(text_width(line, 10) for line in lines) + 10
    height = len(lines) * 12.5 + 6
    page_w, page_h = page_sizes[0]
    x2, y2 = page_w - TOP_RIGHT_MARGIN, page_h - TOP_RIGHT_MARGIN
    return StampLayout(0, (x2 - width, y2 - height, x2, y2))


@dataclass(frozen=True)
class IssuedAttachmentAppearance:
    """Phụ lục/văn bản kèm theo ở tệp riêng: number/code, agency, ISO time; top right of page 1.

    ``display_time`` replaces the signing time in the text (only for reproducible renderings).
    """

    number: str
    agency: str
    display_time: datetime | None = None
    name: str = field(default="issued-attachment", init=False)

    def layout(self, page_sizes: list[tuple[float, float]], fields: dict[str, Any]) -> StampLayout:
        return _top_right(page_sizes, [self.number, self.agency, "2026-01-01T00:00:00+07:00"])

    def style(self, signing_time: datetime) -> Nd30StampStyle:
        moment = self.display_time or signing_time
        return Nd30StampStyle(
            top_lines=(nfc(self.number), nfc(self.agency), iso_time(moment)),
            font_size=10,
            align="right",
        )


@dataclass(frozen=True)
class CopyAppearance:
    """Bản sao điện tử: copy type, copying agency, ISO time; top right of page 1, no image."""

    copy_type: CopyType
    agency: str
    display_time: datetime | None = None
    name: str = field(default="copy", init=False)

    def layout(self, page_sizes: list[tuple[float, float]], fields: dict[str, Any]) -> StampLayout:
        return _top_right(
            page_sizes, [self.copy_type.value, self.agency, "2026-01-01T00:00:00+07:00"]
        )

    def style(self, signing_time: datetime) -> Nd30StampStyle:
        moment = self.display_time or signing_time
        return Nd30StampStyle(
            top_lines=(self.copy_type.value, nfc(self.agency), iso_time(moment)),
            font_size=10,
            align="right",
        )


def page_sizes(reader: Any) -> list[tuple[float, float]]:
    """Width and height in points of each page of a pyHanko ``PdfFileReader``."""
    sizes = []
    for page in reader.root["/Pages"].get_object().get("/Kids", []):
        sizes.extend(_leaf_sizes(page.get_object(), None))
    return sizes


def _leaf_sizes(node: generic.DictionaryObject, inherited: Any) -> list[tuple[float, float]]:
    box = node.get("/MediaBox", inherited)
    if node.get("/Type") == "/Pages":
        out: list[tuple[float, float]] = []
        for kid in node["/Kids"]:
            out.extend(_leaf_sizes(kid.get_object(), box))
        return out
    if box is None:
        return [(595.0, 842.0)]
    x1, y1, x2, y2 = (float(v) for v in box)
    return [(abs(x2 - x1), abs(y2 - y1))]
