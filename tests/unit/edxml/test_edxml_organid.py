"""OrganId: the classic 13-character form, the 2022 form, test ids, levels and parents."""

from __future__ import annotations

import pytest

import edxml
from edxml import InvalidOrganIdError, OrganId

# text, is_classic, is_test, level, parent (None at the top)
VALID = [
    ("000.00.00.G22", True, False, 1, None),  # Văn phòng Chính phủ
    ("000.00.00.H41", True, False, 1, None),  # UBND tỉnh Nghệ An
    ("000.00.14.H20", True, False, 2, "000.00.00.H20"),
    ("000.12.14.H20", True, False, 3, "000.00.14.H20"),
    ("001.12.14.H20", True, False, 4, "000.12.14.H20"),
    # A level-4 id whose level-3 group is empty: its parent is the level-2 organisation.
    ("001.00.14.H20", True, False, 4, "000.00.14.H20"),
    ("000.00.15.H51", True, False, 2, "000.00.00.H51"),
    # 2022 form (Thông tư 01/2022): dotted groups of [0-9A-Z], up to 35 characters.
    ("001.00.20.TT2", False, False, 4, "000.00.20.TT2"),
    ("01.02.G22", False, False, 3, "00.02.G22"),
    ("G22", False, False, 1, None),
    ("A1.B2.C3.D4.E5.F6", False, False, 6, "00.B2.C3.D4.E5.F6"),
    ("X" * 35, False, False, 1, None),
    # Test systems of the national axis.
    ("vxp.saas.03", False, True, 1, None),
    ("vxp.saas.02", False, True, 1, None),
]

INVALID = [
    ("", "empty"),
    ("null", "not an organisation id"),
    ("000.00.00.g22 ", "spaces"),
    (" 000.00.00.G22", "spaces"),
    ("000..00.G22", "not an organisation id"),
    ("000.00.00.G22.", "not an organisation id"),
    (".000.00.00.G22", "not an organisation id"),
    ("000-00-00-G22", "not an organisation id"),
    ("000.00.00.G2Ư", "not an organisation id"),
    ("X" * 36, "36 characters"),
    ("vxp.saas.03" + ".x" * 13, "characters"),
]


@pytest.mark.parametrize(("text", "classic", "test", "level", "parent"), VALID)
def test_valid_ids(text: str, classic: bool, test: bool, level: int, parent: str | None) -> None:
    oid = OrganId.parse(text)
    assert str(oid) == text
    assert oid.is_classic is classic
    assert oid.is_test is test
    assert oid.level == level
    if parent is None:
        assert oid.parent is None
    else:
        assert oid.parent == OrganId.parse(parent)
        assert str(oid.parent) == parent


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_ids_raise_a_plain_message(text: str, fragment: str) -> None:
    with pytest.raises(InvalidOrganIdError) as info:
        OrganId.parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, edxml.EdxmlError)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidOrganIdError, match="must be text"):
        OrganId.parse(13)  # type: ignore[arg-type]


def test_parent_chain_walks_up_to_level_one() -> None:
    chain = []
    current: OrganId | None = OrganId.parse("001.12.14.H20")
    while current is not None:
        chain.append((str(current), current.level))
        current = current.parent
    assert chain == [
        ("001.12.14.H20", 4),
        ("000.12.14.H20", 3),
        ("000.00.14.H20", 2),
        ("000.00.00.H20", 1),
    ]


def test_is_under() -> None:
    province = OrganId.parse("000.00.00.H20")
    commune = OrganId.parse("001.12.14.H20")
    assert commune.is_under(province)
    assert commune.is_under(commune)
    assert not province.is_under(commune)
    assert not commune.is_under(OrganId.parse("000.00.00.H41"))


def test_ids_are_values() -> None:
    assert OrganId.parse("000.00.00.G22") == OrganId.parse("000.00.00.G22")
    assert len({OrganId.parse("000.00.00.G22"), OrganId.parse("000.00.00.G22")}) == 1
    assert OrganId.parse("000.00.14.H20").groups == ("000", "00", "14", "H20")
