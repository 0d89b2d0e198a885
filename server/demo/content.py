"""Demo data of ``lienthong demo`` / ``make run``: a few real-looking agencies and one package.

The agencies follow the id rules of :class:`edxml.OrganId` (read right to left: province at
level 1, its departments and districts at level 2, communes at level 3), so every ``parent``
below is also the id's own parent:

- Văn phòng Chính phủ ``000.00.00.G22`` (central, level 1);
- UBND tỉnh Nghệ An ``000.00.00.H41`` (province, level 1);
- Sở Nội vụ tỉnh Nghệ An ``000.00.12.H41`` (department, level 2, under H41);
- UBND huyện Nam Đàn ``000.00.31.H41`` (district, level 2, under H41);
- UBND xã Kim Liên ``000.05.31.H41`` (commune, level 3, under the district).

The demo package is fixed (same DocumentId, same dates, same bytes at every run), so running the
demo twice and sending it twice is idempotent: the axis answers the second send with the same id.
So are the status package the recipient answers with (03, đã tiếp nhận) and the one-page
Vietnamese PDF the guide signs (``lienthong sign``).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import edxml
from edxml import (
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    Envelope,
    ManifestReference,
    MessageHeader,
    OrganId,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)
from edxml.model import VN_TZ


@dataclass(frozen=True)
class DemoAgency:
    """One agency the demo seeds."""

    organ_id: str
    name: str
    parent_id: str | None
    email: str | None


DEMO_AGENCIES: tuple[DemoAgency, ...] = (
    DemoAgency("000.00.00.G22", "Văn phòng Chính phủ", None, "vanthu@chinhphu.vn"),
    DemoAgency("000.00.00.H41", "UBND tỉnh Nghệ An", None, "vanthu@nghean.gov.vn"),
    DemoAgency("000.00.12.H41", "Sở Nội vụ tỉnh Nghệ An", "000.00.00.H41", "snv@nghean.gov.vn"),
    DemoAgency("000.00.31.H41", "UBND huyện Nam Đàn", "000.00.00.H41", "namdan@nghean.gov.vn"),
    DemoAgency("000.05.31.H41", "UBND xã Kim Liên", "000.00.31.H41", None),
)

DEMO_SENDER = "000.00.00.G22"
DEMO_RECIPIENT = "000.00.00.H41"
DEMO_CODE = Code("15", "VPCP-HC")
DEMO_DATE = date(2025, 1, 15)
DEMO_DOCUMENT_ID = f"{DEMO_SENDER},{DEMO_DATE:%Y/%m/%d},{DEMO_CODE}"
DEMO_ATTACHMENT_NAME = "Công văn mẫu.txt"
DEMO_ATTACHMENT = (
    "VĂN PHÒNG CHÍNH PHỦ\n"
    "Số: 15/VPCP-HC\n"
    "Hà Nội, ngày 15 tháng 01 năm 2025\n\n"
    "Kính gửi: Ủy ban nhân dân tỉnh Nghệ An\n\n"
    "Đây là văn bản mẫu của Liên Thông, gửi để thử trục liên thông văn bản.\n"
).encode()
# A few real procedures (national codes) at the demo agencies, in the form `procedure import`
# takes (docs/dossiers.md); `lienthong demo` imports it.
DEMO_PROCEDURES = Path(__file__).with_name("procedures.json")
DEMO_PACKAGE_NAME = "demo.edxml"
DEMO_STATUS_NAME = "status-03.edxml"
DEMO_PDF_NAME = "cong-van-mau.pdf"
DEMO_PDF_TEXT = (
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\n"
    "Độc lập - Tự do - Hạnh phúc\n"
    "\n"
    "VĂN PHÒNG CHÍNH PHỦ\n"
    "Số: 15/VPCP-HC\n"
    "V/v thử nghiệm trục liên thông văn bản\n"
    "Hà Nội, ngày 15 tháng 01 năm 2025\n"
    "\n"
    "Kính gửi: Ủy ban nhân dân tỉnh Nghệ An\n"
    "\n"
    "Văn phòng Chính phủ gửi văn bản mẫu này để thử trục liên thông văn bản Liên Thông:\n"
    "gửi, nhận, ký số và xác minh chữ ký số theo Nghị định 30/2020/NĐ-CP.\n"
    "\n"
    "Văn bản mẫu, không có giá trị pháp lý."
)


def check_demo_agencies() -> None:
    """Assert the invariant the module docstring promises: ids parse, parents match the ids."""
    for agency in DEMO_AGENCIES:
        organ = OrganId.parse(agency.organ_id)
        parent = organ.parent
        expected = None if parent is None else str(parent)
        if expected != agency.parent_id:
            raise AssertionError(f"{agency.organ_id}: parent {agency.parent_id} != {expected}")


def demo_envelope() -> Envelope:
    """The demo package: Văn phòng Chính phủ sends a công văn to UBND tỉnh Nghệ An."""
    names = {a.organ_id: a.name for a in DEMO_AGENCIES}
    content_id = "cong-van-mau"
    return Envelope(
        header=MessageHeader(
            from_=Organization(DEMO_SENDER, organ_name=names[DEMO_SENDER]),
            to=(Organization(DEMO_RECIPIENT, organ_name=names[DEMO_RECIPIENT]),),
            document_id=DEMO_DOCUMENT_ID,
            subject="V/v thử nghiệm trục liên thông văn bản Liên Thông",
            code=DEMO_CODE,
            promulgation_info=PromulgationInfo(place="Hà Nội", date=DEMO_DATE),
            document_type=DocumentType(type=1, type_detail=2, type_name="Công văn"),
            signer_info=SignerInfo(
                competence="KT. BỘ TRƯỞNG, CHỦ NHIỆM", position="PHÓ CHỦ NHIỆM", full_name="Demo"
            ),
            to_places=("Như trên", "Lưu: VT, HC"),
            other_info=OtherInfo(priority=Priority.NORMAL, promulgation_amount=1, page_amount=1),
        ),
        trace_headers=(TraceHeader(DEMO_SENDER, datetime(2025, 1, 15, 9, 0, tzinfo=VN_TZ)),),
        business=Business(doc_type=BusinessDocType.NEW, paper=0),
        manifest=(
            ManifestReference(
                content_id=content_id,
                content_type="text/plain",
                description="Công văn mẫu",
                attachment_name=DEMO_ATTACHMENT_NAME,
            ),
        ),
        attachments=(
            Attachment(
                content_id=content_id,
                name=DEMO_ATTACHMENT_NAME,
                description="Công văn mẫu",
                content_type="text/plain",
                data=DEMO_ATTACHMENT,
            ),
        ),
    )


def write_demo_package(directory: Path) -> Path:
    """Write ``directory/demo.edxml`` (same bytes every time), atomically; return its path."""
    return _write_valid(directory / DEMO_PACKAGE_NAME, demo_envelope(), "package")


def demo_status() -> StatusMessage:
    """The recipient's answer to the demo package: status 03 (đã tiếp nhận), fixed time."""
    return StatusMessage(
        from_=Organization(DEMO_RECIPIENT),
        response_for=ResponseFor(
            organ_id=DEMO_SENDER,
            code=str(DEMO_CODE),
            promulgation_date=DEMO_DATE,
            document_id=DEMO_DOCUMENT_ID,
        ),
        status_code=StatusCode.ACCEPTED,
        staff_info=StaffInfo(department="Văn thư", staff="Nguyễn Văn A"),
        description="Đã tiếp nhận, chuyển phòng Hành chính",
        timestamp=datetime(2025, 1, 16, 8, 30, tzinfo=VN_TZ),
    )


def write_demo_status(directory: Path) -> Path:
    """Write ``directory/status-03.edxml`` (same bytes every time), atomically; return its path."""
    return _write_valid(directory / DEMO_STATUS_NAME, demo_status(), "status package")


def _write_valid(path: Path, message: Envelope | StatusMessage, what: str) -> Path:
    """Validate ``message`` and write it to ``path`` if its bytes changed."""
    errors = [p for p in edxml.validate(message) if p.is_error]
    if errors:  # a bug in this module, not a user error
        raise AssertionError(f"the demo {what} is invalid: {errors}")
    return write_if_changed(path, edxml.serialize(message))


def demo_pdf() -> bytes:
    """A one-page A4 PDF with the demo công văn in Vietnamese (the font subset embedded).

    Made with pyHanko's text box and the signing font (Noto Serif, Latin + Vietnamese), so the
    text is real, extractable NFC text; unsigned, ready for ``lienthong sign``.
    """
    import io

    from pyhanko.pdf_utils import layout
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.text import TextBox, TextBoxStyle
    from pyhanko.pdf_utils.writer import PdfFileWriter

    from signing.appearance import FONT_PATH, nfc

    # pyHanko's PDF object layer is untyped: reached through Any rather than one ignore a line.
    generic: Any = importlib.import_module("pyhanko.pdf_utils.generic")
    writer: Any = PdfFileWriter(init_page_tree=True)  # type: ignore[no-untyped-call]
    style = TextBoxStyle(font=GlyphAccumulatorFactory(str(FONT_PATH)), font_size=11)
    box = TextBox(style, writer=writer, box=layout.BoxConstraints(width=460, height=260))
    box.content = nfc(DEMO_PDF_TEXT)
    form = writer.add_object(box.as_form_xobject())
    contents = generic.StreamObject(stream_data=b"q 1 0 0 1 60 520 cm /Fm0 Do Q")
    name = generic.pdf_name
    page = generic.DictionaryObject(
        {
            name("/Type"): name("/Page"),
            name("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 595, 842)]
            ),
            name("/Resources"): generic.DictionaryObject(
                {name("/XObject"): generic.DictionaryObject({name("/Fm0"): form})}
            ),
            name("/Contents"): writer.add_object(contents),
        }
    )
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_demo_pdf(directory: Path) -> Path:
    """Write ``directory/cong-van-mau.pdf`` unless it is there already; return its path.

    Kept once written: PDF writers add a random file id, and a demo PDF that changes under a
    user who already signed it would only confuse.
    """
    path = directory / DEMO_PDF_NAME
    if path.is_file():
        return path
    return write_if_changed(path, demo_pdf())


def write_if_changed(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename) unless it holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return path
    temp = path.with_name(path.name + ".tmp")
    with temp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    temp.replace(path)
    return path
