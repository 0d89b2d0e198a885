"""Pure parts of signing/: PIN handling, levels, NĐ 30 layout rules and time formatting."""

from __future__ import annotations

import pickle
import unicodedata
from datetime import UTC, datetime

import pytest

from signing import (
    AppearanceError,
    CopyAppearance,
    CopyType,
    IssuedAttachmentAppearance,
    Level,
    Pin,
    PinError,
    SealAppearance,
    SignerAppearance,
    SigningError,
)
from signing.appearance import MM, iso_time, nfc, text_width

A4 = [(595.0, 842.0)]


def test_signing_pin_never_shows_itself(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    pin = Pin("s3cr3t-1234")
    assert "s3cr3t" not in repr(pin) and "s3cr3t" not in str(pin) and "s3cr3t" not in f"{pin}"
    assert "s3cr3t" not in repr({"pin": pin})
    assert pin.reveal() == "s3cr3t-1234"
    with pytest.raises(TypeError):
        pickle.dumps(pin)


def test_signing_pin_sources(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("LIENTHONG_PIN", "from-env")
    assert Pin.from_env().reveal() == "from-env"
    pin_file = tmp_path / "pin"
    pin_file.write_text("from-file\n")
    assert Pin.from_file(pin_file).reveal() == "from-file"
    # A file wins over the environment; the environment over a prompt.
    assert Pin.resolve(pin_file=str(pin_file)).reveal() == "from-file"
    assert Pin.resolve(interactive=False).reveal() == "from-env"
    monkeypatch.delenv("LIENTHONG_PIN")
    with pytest.raises(PinError, match="LIENTHONG_PIN"):
        Pin.resolve(interactive=False)
    with pytest.raises(PinError, match="cannot read"):
        Pin.from_file(tmp_path / "missing")
    pin_file.write_text("")
    with pytest.raises(PinError, match="empty"):
        Pin.from_file(pin_file)


@pytest.mark.parametrize(
    ("text", "level"),
    [("B-B", Level.B_B), ("b-t", Level.B_T), ("B_LT", Level.B_LT), ("BLTA", Level.B_LTA)],
)
def test_signing_level_parse(text: str, level: Level) -> None:
    assert Level.parse(text) is level


def test_signing_level_parse_rejects_unknown() -> None:
    with pytest.raises(SigningError, match="B-B, B-T, B-LT or B-LTA"):
        Level.parse("B-X")


def test_signing_iso_time_is_vietnam_time() -> None:
    assert iso_time(datetime(2026, 11, 23, 3, 15, 0, 123456, tzinfo=UTC)) == (
        "2026-11-23T10:15:00+07:00"
    )
    with pytest.raises(AppearanceError, match="timezone"):
        iso_time(datetime(2026, 11, 23, 3, 15))


def test_signing_signer_title_prefixes() -> None:
    for title in ("TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH", "KT. CHỦ TỊCH", "TL. CHỦ TỊCH", "Q. GIÁM ĐỐC",
                  "TUQ. CHỦ TỊCH", "CHỦ TỊCH"):  # fmt: skip
        SignerAppearance(title=title, full_name="Nguyễn Văn Ánh")
    with pytest.raises(AppearanceError, match=r"TM\., KT\., TL\., Q\., TUQ\."):
        SignerAppearance(title="TX. CHỦ TỊCH", full_name="Nguyễn Văn Ánh")
    with pytest.raises(AppearanceError, match="full name"):
        SignerAppearance(title="CHỦ TỊCH", full_name="  ")


def test_signing_signer_text_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Văn Ánh")
    assert decomposed != "Nguyễn Văn Ánh"
    style = SignerAppearance(title="KT. CHỦ TỊCH", full_name=decomposed).style(datetime.now(UTC))
    assert style.bottom_lines == ("Nguyễn Văn Ánh",)
    assert nfc(decomposed) == "Nguyễn Văn Ánh"


def test_signing_top_right_stamps_fit_their_text() -> None:
    short = IssuedAttachmentAppearance(number="Số: 1/UBND", agency="UBND tỉnh")
    long = CopyAppearance(
        copy_type=CopyType.TRICH_SAO, agency="Văn phòng Ủy ban nhân dân tỉnh Thừa Thiên Huế"
    )
    a, b = short.layout(A4, {}), long.layout(A4, {})
    assert a.page == b.page == 0
    # Right and top edges 20 pt from the page's top right corner, 10 pt text fits inside.
    for placement, lines in ((a, [short.number, short.agency]), (b, [long.agency])):
        x1, _, x2, y2 = placement.box
        assert (x2, y2) == (575.0, 822.0)
        assert x2 - x1 >= max(text_width(line, 10) for line in lines)
    assert b.box[2] - b.box[0] > a.box[2] - a.box[0]
    style = long.style(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert style.top_lines == (
        "TRÍCH SAO", "Văn phòng Ủy ban nhân dân tỉnh Thừa Thiên Huế", "2026-01-02T10:04:05+07:00",
    )  # fmt: skip
    assert style.font_size == 10 and style.image is None


def test_signing_seal_overlaps_left_third_of_signer() -> None:
    seal = SealAppearance(image=b"unused", over_field="NguoiKy", diameter_mm=36)
    placement = seal.layout(A4, {"NguoiKy": (0, (330.0, 60.0, 530.0, 200.0))})
    x1, y1, x2, y2 = placement.box
    assert placement.page == 0
    assert x2 == pytest.approx(330 + 200 / 3)
    assert x2 - x1 == pytest.approx(36 * MM) == pytest.approx(y2 - y1)
    assert (y1 + y2) / 2 == pytest.approx(130.0)
    with pytest.raises(AppearanceError, match="NguoiKy"):
        seal.layout(A4, {})
    with pytest.raises(AppearanceError, match="page 3"):
        SignerAppearance(title="CHỦ TỊCH", full_name="A", page=3).layout(A4, {})
