"""Slips (phiếu) of a one-stop dossier as A4 PDF in Vietnamese, and their seal.

Four kinds, after the forms of the one-stop framework (ONE-STOP.md §1.3; the numbers 01–04 are
the same in the 2018 circular and in the list claimed for Circular 03/2025/TT-VPCP):

- ``receipt``: Giấy tiếp nhận hồ sơ và hẹn trả kết quả (Mẫu số 01);
- ``supplement``: Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ (Mẫu số 02);
- ``refusal``: Phiếu từ chối tiếp nhận giải quyết hồ sơ (Mẫu số 03);
- ``apology``: Phiếu xin lỗi và hẹn lại ngày trả kết quả (Mẫu số 04).

:func:`render_slip` is pure: a :class:`SlipData` in, PDF bytes out, the same bytes for the same
data (no clock, no I/O but the fonts). Layout by fpdf2, the QR code (the public lookup URL) by
segno, drawn as vector squares. Text is Noto Serif (regular and bold, subset to Latin +
Vietnamese, ``signing/fonts/``), NFC-normalised. Times are shown in Vietnam time
(``dd/mm/yyyy HH:MM``, +07:00).

:func:`seal_slip` applies the unit's seal (PAdES, invisible, through :mod:`signing`) when one
is configured (``[seal]``, :func:`server.exchange.receipts.load_seal`).
"""

from __future__ import annotations

import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

VN_TZ = timezone(timedelta(hours=7))
FONT_DIR = Path(__file__).resolve().parents[2] / "signing" / "fonts"
FONT_REGULAR = FONT_DIR / "NotoSerif-Regular-vi.ttf"
FONT_BOLD = FONT_DIR / "NotoSerif-Bold-vi.ttf"

SlipKind = Literal["receipt", "supplement", "refusal", "apology"]
KINDS: tuple[SlipKind, ...] = ("receipt", "supplement", "refusal", "apology")

# kind -> (form number, title as the form prints it)
FORMS: dict[str, tuple[str, str]] = {
    "receipt": ("01", "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"),
    "supplement": ("02", "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ"),
    "refusal": ("03", "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ"),
    "apology": ("04", "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ"),
}

QUOC_HIEU = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
TIEU_NGU = "Độc lập - Tự do - Hạnh phúc"


class SlipError(ValueError):
    """The data cannot make the slip asked for (a field the kind needs is missing or wrong)."""


@dataclass(frozen=True)
class SlipComponent:
    """A component of the dossier as received: its name, how many originals and copies."""

    name: str
    originals: int = 0
    copies: int = 0


@dataclass(frozen=True)
class SlipData:
    """What a slip shows. Datetimes must carry a time zone (shown in +07:00).

    ``issued_at`` dates the slip (the date line); it defaults to ``received_at``.
    Kind-specific: ``apology`` needs ``new_due_at`` and ``reason``; ``supplement`` needs
    ``missing`` (``note`` optional); ``refusal`` needs ``reason``.
    """

    kind: SlipKind
    unit_name: str
    parent_name: str
    dossier_code: str
    procedure_code: str
    procedure_name: str
    applicant_name: str
    applicant_address: str
    applicant_phone: str
    components: tuple[SlipComponent, ...]
    received_at: datetime
    due_at: datetime | None
    place: str
    officer_name: str
    lookup_url: str
    issued_at: datetime | None = None
    new_due_at: datetime | None = None
    reason: str = ""
    missing: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FORMS:
            raise SlipError(f"unknown slip kind {self.kind!r} (one of {', '.join(KINDS)})")
        for name in ("received_at", "due_at", "issued_at", "new_due_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise SlipError(f"{name} has no time zone")
        if not self.lookup_url.startswith(("https://", "http://")):
            raise SlipError("lookup_url must be an absolute http(s) URL")
        if self.kind in ("receipt", "supplement", "apology") and self.due_at is None:
            raise SlipError(f"a {self.kind} slip needs due_at")
        if self.kind == "apology" and (self.new_due_at is None or not self.reason.strip()):
            raise SlipError("an apology slip needs new_due_at and reason")
        if self.kind == "supplement" and not self.missing:
            raise SlipError("a supplement slip needs the missing items")
        if self.kind == "refusal" and not self.reason.strip():
            raise SlipError("a refusal slip needs reason")


def vn_datetime(value: datetime) -> str:
    """``dd/mm/yyyy HH:MM`` in Vietnam time, with the offset: ``05/01/2026 09:15 (+07:00)``."""
    return value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M") + " (+07:00)"


def date_line(place: str, value: datetime) -> str:
    """The date line of an administrative text: ``Nghệ An, ngày 05 tháng 01 năm 2026``."""
    local = value.astimezone(VN_TZ)
    return f"{place}, ngày {local:%d} tháng {local:%m} năm {local:%Y}"


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _count(n: int) -> str:
    return f"{n:02d}" if n else "-"


# --- layout --------------------------------------------------------------------------------

_FAMILY = "NotoSerif"
_MARGIN_L, _MARGIN_R, _MARGIN_T = 25.0, 15.0, 15.0
_LINE = 6.0  # mm, body leading at 12.5 pt
_QR_MODULE = 0.75  # mm a module: about 4.4 px at 150 dpi
_QR_QUIET = 4  # modules of white border (ISO/IEC 18004)


def _new_pdf(data: SlipData) -> Any:
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(_MARGIN_L, _MARGIN_T, _MARGIN_R)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(_FAMILY, "", str(FONT_REGULAR))
    pdf.add_font(_FAMILY, "B", str(FONT_BOLD))
    pdf.set_lang("vi")
    title = FORMS[data.kind][1]
    pdf.set_title(_nfc(f"{title.capitalize()} {data.dossier_code}"))
    pdf.set_author(_nfc(data.unit_name))
    pdf.set_creator("Liên Thông")
    pdf.set_creation_date(data.issued_at or data.received_at)
    return pdf


class _Writer:
    """fpdf2 with the few moves a slip needs."""

    def __init__(self, pdf: Any) -> None:
        self.pdf = pdf
        self.width = pdf.w - _MARGIN_L - _MARGIN_R

    def font(self, size: float, bold: bool = False, underline: bool = False) -> None:
        style = ("B" if bold else "") + ("U" if underline else "")
        self.pdf.set_font(_FAMILY, style, size)

    def centered(self, x: float, w: float, text: str, size: float, bold: bool = False,
                 underline: bool = False, height: float = 5.5) -> None:  # fmt: skip
        self.font(size, bold, underline)
        self.pdf.set_x(x)
        self.pdf.multi_cell(w, height, _nfc(text), align="C", new_x="LMARGIN", new_y="NEXT")

    def para(self, text: str, size: float = 12.5, bold: bool = False, indent: float = 0.0,
             align: str = "J") -> None:  # fmt: skip
        self.font(size, bold)
        self.pdf.set_x(_MARGIN_L + indent)
        self.pdf.multi_cell(self.width - indent, _LINE, _nfc(text), align=align,
                            new_x="LMARGIN", new_y="NEXT")  # fmt: skip

    def labelled(self, label: str, value: str, indent: float = 0.0) -> None:
        """``label`` then ``value`` on one flowing line (the label in bold)."""
        self.font(12.5, bold=True)
        self.pdf.set_x(_MARGIN_L + indent)
        self.pdf.write(_LINE, _nfc(label + " "))
        self.font(12.5)
        self.pdf.write(_LINE, _nfc(value))
        self.pdf.ln(_LINE)

    def gap(self, mm: float) -> None:
        self.pdf.ln(mm)


def _header(w: _Writer, data: SlipData) -> None:
    pdf = w.pdf
    left_w, right_w = 72.0, w.width - 72.0
    right_x = _MARGIN_L + left_w
    top = pdf.get_y()
    # Left: the parent agency, the unit (bold), a short rule, the dossier number.
    w.centered(_MARGIN_L - 8, left_w + 4, data.parent_name.upper(), 11.5)
    w.centered(_MARGIN_L - 8, left_w + 4, data.unit_name.upper(), 11.5, bold=True)
    rule_y = pdf.get_y() + 0.8
    mid = _MARGIN_L - 8 + (left_w + 4) / 2
    pdf.set_line_width(0.3)
    pdf.line(mid - 12, rule_y, mid + 12, rule_y)
    left_bottom = rule_y
    # Right: quốc hiệu, tiêu ngữ underlined (its own width), the date line.
    pdf.set_y(top)
    w.centered(right_x - 4, right_w + 8, QUOC_HIEU, 11.5, bold=True)
    w.centered(right_x - 4, right_w + 8, TIEU_NGU, 12.5, bold=True, underline=True, height=6)
    right_bottom = pdf.get_y()
    pdf.set_y(max(left_bottom, right_bottom) + 3)
    y = pdf.get_y()
    w.centered(_MARGIN_L - 8, left_w + 4, f"Mã hồ sơ: {data.dossier_code}", 11)
    pdf.set_y(y)
    w.font(12)
    pdf.set_x(right_x - 4)
    issued = data.issued_at or data.received_at
    pdf.multi_cell(right_w + 8, 5.5, _nfc(date_line(data.place, issued)), align="C",
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.set_y(max(pdf.get_y(), y + 5.5) + 6)


def _title(w: _Writer, data: SlipData) -> None:
    number, title = FORMS[data.kind]
    w.centered(_MARGIN_L, w.width, title, 14, bold=True, height=7)
    w.centered(_MARGIN_L, w.width, f"(Mẫu số {number})", 11)
    w.gap(4)


def _applicant(w: _Writer, data: SlipData, lead: str) -> None:
    w.para(lead)
    w.labelled("Ông/bà:", data.applicant_name)
    w.labelled("Địa chỉ:", data.applicant_address)
    w.labelled("Số điện thoại:", data.applicant_phone)
    w.labelled("Nội dung yêu cầu giải quyết:",
               f"{data.procedure_name} (mã thủ tục {data.procedure_code})")  # fmt: skip


def _components(w: _Writer, data: SlipData, heading: str) -> None:
    from fpdf.fonts import FontFace

    w.para(heading, bold=True)
    w.gap(1)
    if not data.components:
        w.para("(không có thành phần hồ sơ)", indent=5)
        return
    w.font(11.5)
    head = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
    with w.pdf.table(
        col_widths=(12, 110, 24, 24),
        text_align=("CENTER", "LEFT", "CENTER", "CENTER"),
        line_height=5.5,
        headings_style=head,
        padding=1.2,
        first_row_as_headings=True,
        align="LEFT",
        width=w.width,
    ) as table:
        row = table.row()
        for text in ("STT", "Tên giấy tờ", "Bản chính", "Bản sao"):
            row.cell(_nfc(text))
        for i, component in enumerate(data.components, start=1):
            row = table.row()
            row.cell(str(i))
            row.cell(_nfc(component.name))
            row.cell(_count(component.originals))
            row.cell(_count(component.copies))
    w.gap(3)


def _body(w: _Writer, data: SlipData) -> None:
    received = vn_datetime(data.received_at)
    unit = data.unit_name
    if data.kind == "receipt":
        _applicant(w, data, f"{unit} tiếp nhận hồ sơ của:")
        _components(w, data, "1. Thành phần hồ sơ nộp gồm:")
        w.labelled("2. Số lượng hồ sơ:", "01 bộ")
        w.labelled("3. Thời gian nhận hồ sơ:", received)
        assert data.due_at is not None
        w.labelled("4. Thời gian trả kết quả giải quyết hồ sơ:", vn_datetime(data.due_at))
    elif data.kind == "supplement":
        _applicant(w, data, f"{unit} tiếp nhận hồ sơ của:")
        w.labelled("Thời gian nhận hồ sơ:", received)
        _components(w, data, "Thành phần hồ sơ đã nhận:")
        w.para("Sau khi xem xét, hồ sơ cần bổ sung, hoàn thiện những nội dung sau:", bold=True)
        for i, item in enumerate(data.missing, start=1):
            w.para(f"{i}. {item}", indent=5, align="L")
        if data.note.strip():
            w.labelled("Ghi chú:", data.note)
        assert data.due_at is not None
        w.labelled("Hạn giải quyết hiện tại:", vn_datetime(data.due_at))
        w.para("(Thời gian chờ bổ sung không tính vào thời hạn giải quyết.)", size=11.5)
        w.para("Trong quá trình hoàn thiện hồ sơ, nếu có vướng mắc, ông/bà liên hệ "
               f"{unit} để được hướng dẫn.")  # fmt: skip
    elif data.kind == "refusal":
        _applicant(w, data, f"{unit} tiếp nhận hồ sơ của:")
        w.labelled("Thời gian nhận hồ sơ:", received)
        _components(w, data, "Thành phần hồ sơ đã nhận:")
        w.para(f"{unit} từ chối tiếp nhận, giải quyết hồ sơ này với lý do sau:", bold=True)
        w.para(data.reason, indent=5)
        w.para(f"Xin thông báo để ông/bà được biết và thực hiện. {unit} xin trả lại hồ sơ.")
    else:  # apology
        assert data.due_at is not None and data.new_due_at is not None
        _applicant(w, data, f"{unit} tiếp nhận hồ sơ của:")
        w.labelled("Thời gian nhận hồ sơ:", received)
        _components(w, data, "Thành phần hồ sơ đã nhận:")
        w.labelled("Thời gian hẹn trả kết quả:", vn_datetime(data.due_at))
        w.para(f"Tuy nhiên đến nay, {unit} chưa trả kết quả giải quyết hồ sơ cho ông/bà đúng "
               "thời hạn.")  # fmt: skip
        w.labelled("Lý do:", data.reason)
        w.para(f"{unit} xin lỗi ông/bà và hẹn lại thời gian trả kết quả:", bold=True)
        w.labelled("Thời gian hẹn trả kết quả mới:", vn_datetime(data.new_due_at), indent=5)
        w.para(f"{unit} xin thông báo để ông/bà được biết. Rất mong nhận được sự thông cảm "
               "của ông/bà.")  # fmt: skip


def _qr(w: _Writer, data: SlipData, x: float, y: float) -> float:
    """Draw the QR code of the lookup URL at (x, y) with its quiet zone; return its side."""
    import segno

    code = segno.make(data.lookup_url, error="m", micro=False)
    matrix = code.matrix
    side = (len(matrix) + 2 * _QR_QUIET) * _QR_MODULE
    pdf = w.pdf
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, side, side, style="F")
    pdf.set_fill_color(0, 0, 0)
    origin = _QR_QUIET * _QR_MODULE
    for r, row in enumerate(matrix):
        c = 0
        while c < len(row):  # one rectangle per run of dark modules in a row
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                pdf.rect(x + origin + start * _QR_MODULE, y + origin + r * _QR_MODULE,
                         (c - start) * _QR_MODULE, _QR_MODULE, style="F")  # fmt: skip
            else:
                c += 1
    return side


def _footer(w: _Writer, data: SlipData) -> None:
    pdf = w.pdf
    w.gap(4)
    # Signatures: left the applicant (receipt, supplement), right the officer.
    y = pdf.get_y()
    if pdf.will_page_break(45):
        pdf.add_page()
        y = pdf.get_y()
    half = w.width / 2
    right_role = "NGƯỜI TIẾP NHẬN HỒ SƠ" if data.kind != "apology" else "ĐẠI DIỆN BỘ PHẬN TIẾP NHẬN"
    if data.kind in ("receipt", "supplement"):
        w.centered(_MARGIN_L, half, "NGƯỜI NỘP HỒ SƠ", 12, bold=True)
        w.centered(_MARGIN_L, half, "(Ký và ghi rõ họ tên)", 11)
        pdf.set_y(y)
    w.centered(_MARGIN_L + half, half, right_role, 12, bold=True)
    w.centered(_MARGIN_L + half, half, "(Ký và ghi rõ họ tên)", 11)
    pdf.set_y(y + 28)
    w.centered(_MARGIN_L + half, half, data.officer_name, 12, bold=True)
    pdf.set_y(pdf.get_y() + 6)
    # The QR code and what it opens.
    size = (len(_qr_matrix(data.lookup_url)) + 2 * _QR_QUIET) * _QR_MODULE
    if pdf.will_page_break(size + 2):
        pdf.add_page()
    y = pdf.get_y()
    side = _qr(w, data, _MARGIN_L, y)
    text_x = _MARGIN_L + side + 4
    pdf.set_xy(text_x, y + 4)
    w.font(11, bold=True)
    pdf.multi_cell(w.width - side - 4, 5.5, _nfc("Tra cứu tình trạng hồ sơ"),
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    w.font(11)
    pdf.set_x(text_x)
    pdf.multi_cell(w.width - side - 4, 5.5,
                   _nfc(f"Quét mã QR hoặc mở địa chỉ sau (mã hồ sơ {data.dossier_code}):"),
                   align="L", new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    w.font(9.5)
    pdf.set_x(text_x)
    pdf.multi_cell(w.width - side - 4, 5, data.lookup_url, link=data.lookup_url, align="L",
                   new_x="LMARGIN", new_y="NEXT")  # fmt: skip


def _qr_matrix(url: str) -> tuple[bytearray, ...]:
    import segno

    return tuple(segno.make(url, error="m", micro=False).matrix)


def qr_matrix(url: str) -> tuple[tuple[bool, ...], ...]:
    """The QR matrix (dark = True) a slip draws for ``url``, without the quiet zone."""
    return tuple(tuple(bool(v) for v in row) for row in _qr_matrix(url))


def render_slip(data: SlipData) -> bytes:
    """The slip of ``data`` as an A4 PDF (bytes)."""
    pdf = _new_pdf(data)
    pdf.add_page()
    w = _Writer(pdf)
    _header(w, data)
    _title(w, data)
    _body(w, data)
    _footer(w, data)
    return bytes(pdf.output())


# --- sealing -------------------------------------------------------------------------------


async def seal_slip(
    pdf: bytes,
    seal: Any,
    *,
    services: Any = None,
    level: Any = None,
    reason: str = "Phiếu hồ sơ một cửa",
    location: str | None = None,
) -> bytes:
    """``pdf`` with the unit's PAdES seal (invisible), or unchanged when ``seal`` is None.

    ``seal`` is a loaded :class:`server.exchange.receipts.Seal`; ``services`` the
    :class:`signing.SigningServices` (trust roots, TSA); ``level`` a :class:`signing.Level`
    (B-T when ``services`` has a TSA, else B-B). Raises :class:`signing.SigningError`.
    """
    if seal is None:
        return pdf
    from signing import Level, SigningServices, async_sign_pdf

    services = services or SigningServices()
    if level is None:
        level = Level.B_T if services.tsa_url else Level.B_B
    with tempfile.TemporaryDirectory(prefix="slip-") as tmp:
        source, target = Path(tmp) / "slip.pdf", Path(tmp) / "slip-sealed.pdf"
        source.write_bytes(pdf)
        await async_sign_pdf(source, target, seal.signer, level=level, services=services,
                             reason=reason, location=location, durable=False)  # fmt: skip
        return target.read_bytes()


@dataclass(frozen=True)
class SlipSealer:
    """The seal and signing services an application loaded (``[seal]``, ``[tsa]``); seals
    slips with them, or leaves them unsealed when no seal is configured."""

    seal: Any = None
    services: Any = None

    @property
    def enabled(self) -> bool:
        """True when slips are sealed."""
        return self.seal is not None

    async def __call__(self, pdf: bytes, *, location: str | None = None) -> bytes:
        """``pdf`` sealed (:func:`seal_slip`), or unchanged without a seal."""
        return await seal_slip(pdf, self.seal, services=self.services, location=location)


__all__ = [
    "FORMS",
    "KINDS",
    "QUOC_HIEU",
    "TIEU_NGU",
    "SlipComponent",
    "SlipData",
    "SlipError",
    "SlipKind",
    "SlipSealer",
    "date_line",
    "qr_matrix",
    "render_slip",
    "seal_slip",
    "vn_datetime",
]
