"""The procedure catalogue's rules and files (server/dossiers/procedures.py, procedure_files.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.dossiers.errors import INVALID_PROCEDURE, InvalidProcedure, ProcedureFileError
from server.dossiers.procedure_files import (
    components_cell,
    parse_csv,
    parse_json,
    read_procedure_file,
)
from server.dossiers.procedures import (
    Component,
    Fee,
    OnlineLevel,
    Procedure,
    Step,
    check_code,
    online_level,
    procedure_from_mapping,
    procedure_json,
)

XA = "000.05.31.H41"
HUYEN = "000.00.31.H41"
DEMO_FILE = Path(__file__).resolve().parents[3] / "server" / "demo" / "procedures.json"


def valid(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "2.000806",
        "name": "Đăng ký kết hôn có yếu tố nước ngoài",
        "field": "Hộ tịch",
        "agency": HUYEN,
        "days": 15,
        "online_level": "partial",
        "components": [{"code": "TK", "name": "Tờ khai", "required": True}],
        "fees": [{"amount": 1000000, "description": "Lệ phí"}],
        "steps": [{"agency": XA, "days": 2}, {"agency": HUYEN, "days": 13}],
    }
    data.update(changes)
    return data


def refusal(data: dict[str, Any]) -> InvalidProcedure:
    with pytest.raises(InvalidProcedure) as caught:
        procedure_from_mapping(data)
    return caught.value


def test_a_procedure_and_its_json_form_round_trip() -> None:
    procedure = procedure_from_mapping(valid())
    assert procedure == Procedure(
        "2.000806",
        "Đăng ký kết hôn có yếu tố nước ngoài",
        "Hộ tịch",
        HUYEN,
        15,
        False,
        OnlineLevel.PARTIAL,
        (Component("TK", "Tờ khai", True),),
        (Fee(1000000, "Lệ phí"),),
        (Step(XA, 2), Step(HUYEN, 13)),
    )
    assert procedure_from_mapping(procedure_json(procedure)) == procedure
    assert procedure.agencies == {XA, HUYEN}
    assert procedure.time_text == "15 working days"


def test_only_what_is_required_and_text_values_as_a_csv_gives_them() -> None:
    procedure = procedure_from_mapping(
        {"code": "1.001193", "name": " Đăng  ký khai sinh ", "agency": XA, "days": "1"}
    )
    assert (procedure.name, procedure.days, procedure.field) == ("Đăng ký khai sinh", 1, None)
    assert (procedure.calendar_days, procedure.online_level) == (False, OnlineLevel.NONE)
    assert procedure.components == procedure.fees == procedure.steps == ()
    assert procedure.time_text == "1 working day"
    assert procedure_from_mapping(valid(calendar_days="có", steps=[])).calendar_days is True


@pytest.mark.parametrize("code", ["1.001193", "2.000806", "3.000123"])
def test_national_codes(code: str) -> None:
    assert check_code(code) == code


@pytest.mark.parametrize("code", ["1.00119", "1.0011933", "10.001193", "1-001193", "", "x.001193"])
def test_codes_that_are_not_national_codes(code: str) -> None:
    with pytest.raises(InvalidProcedure) as caught:
        check_code(code)
    assert caught.value.field == "code"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "1.1"}, "code"),
        ({"name": "  "}, "name"),
        ({"agency": "UBND xã"}, "agency"),
        ({"days": -1}, "days"),
        ({"days": "15 ngày"}, "days"),
        ({"days": True}, "days"),
        ({"days": 1000}, "days"),
        ({"calendar_days": "maybe"}, "calendar_days"),
        ({"online_level": "level 4"}, "online_level"),
        ({"components": "TK"}, "components"),
        ({"components": [{"code": "T K", "name": "x"}]}, "components"),
        ({"components": [{"code": "TK", "name": ""}]}, "components item 1 name"),
        ({"components": [{"code": "A", "name": "x"}, {"code": "A", "name": "y"}]}, "components"),
        ({"fees": [{"amount": "400.000", "description": "x"}]}, "fees item 1 amount"),
        ({"fees": [{"amount": 1}]}, "fees item 1 description"),
        ({"steps": [{"agency": XA, "days": 2}, {"agency": HUYEN, "days": 12}]}, "steps"),
        ({"steps": [{"agency": "xã", "days": 15}]}, "steps item 1 agency"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_rule_names_its_field(changes: dict[str, Any], field: str) -> None:
    error = refusal(valid(**changes))
    assert error.field == field
    assert error.problem is INVALID_PROCEDURE and error.extra == {"field": field}
    assert error.detail.startswith(f"field {field}: ")


def test_the_steps_must_add_up_and_the_message_shows_the_sum() -> None:
    error = refusal(valid(days=16))
    assert error.message == "the steps' days (2 + 13) must add up to days (16)"
    assert error.at("row 4").detail == f"row 4, field steps: {error.message}"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("full", OnlineLevel.FULL),
        ("Toàn trình", OnlineLevel.FULL),
        ("toan-trinh", OnlineLevel.FULL),
        ("một  phần", OnlineLevel.PARTIAL),
        ("partial", OnlineLevel.PARTIAL),
        ("", OnlineLevel.NONE),
        (None, OnlineLevel.NONE),
    ],
)
def test_online_levels(text: str | None, level: OnlineLevel) -> None:
    assert online_level(text) is level


CSV = (
    "code,name,field,agency,days,calendar_days,online_level,components,fees,steps\n"
    f"1.001193,Đăng ký khai sinh,Hộ tịch,{XA},1,,full,"
    '"TK*=Tờ khai đăng ký khai sinh; GCS*=Giấy chứng sinh; UQ=Văn bản ủy quyền",'
    "0=Miễn lệ phí,\n"
    "\n"
    f"2.000806,Đăng ký kết hôn có yếu tố nước ngoài,Hộ tịch,{HUYEN},15,0,partial,,"
    f'1000000=Lệ phí,"{XA}=2; {HUYEN}=13"\n'
)


def test_a_csv_file_gives_the_same_procedures_as_json() -> None:
    rows = parse_csv(CSV, "p.csv")
    assert [r.where for r in rows] == ["row 2", "row 4"]
    birth, marriage = (r.procedure for r in rows)
    assert birth.components == (
        Component("TK", "Tờ khai đăng ký khai sinh", True),
        Component("GCS", "Giấy chứng sinh", True),
        Component("UQ", "Văn bản ủy quyền", False),
    )
    assert birth.fees == (Fee(0, "Miễn lệ phí"),) and birth.online_level is OnlineLevel.FULL
    assert marriage.steps == (Step(XA, 2), Step(HUYEN, 13))
    as_json = json.dumps({"procedures": [procedure_json(birth), procedure_json(marriage)]})
    assert [r.procedure for r in parse_json(as_json, "p.json")] == [birth, marriage]


def test_a_bad_csv_row_is_named_by_its_spreadsheet_row_and_field() -> None:
    bad = CSV.replace(f"{HUYEN},15,0", f"{HUYEN},15 ngày,0")
    with pytest.raises(InvalidProcedure) as caught:
        parse_csv(bad, "p.csv")
    assert caught.value.detail.startswith("row 4, field days: must be a whole number")
    with pytest.raises(InvalidProcedure) as caught:
        parse_csv(CSV.replace("GCS*=Giấy", "GCS*Giấy"), "p.csv")
    assert caught.value.where == "row 2" and caught.value.field == "components"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no header row"),
        ("code,name,agency\n", "'days' is missing"),
        ("code,name,agency,days,colour\n", "column 'colour'"),
        ("code,name,agency,days,days\n", "'days' appears twice"),
        (f"code,name,agency,days\n1.001193,x,{XA},1,extra\n", "more cells than the header"),
    ],
)
def test_csv_files_that_cannot_be_read(text: str, words: str) -> None:
    with pytest.raises(ProcedureFileError, match=words):
        parse_csv(text, "p.csv")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", "not JSON"),
        ('{"items": []}', "expected a list"),
        ('"x"', "expected a list"),
        ("[1]", "procedure 1 is not an object"),
    ],
)
def test_json_files_that_cannot_be_read(text: str, words: str) -> None:
    with pytest.raises(ProcedureFileError, match=words):
        parse_json(text, "p.json")


def test_components_cell_marks_required_ones() -> None:
    assert components_cell("A*=x;\nB = y ;;") == [
        {"code": "A", "name": "x", "required": True},
        {"code": "B", "name": "y", "required": False},
    ]


def test_files_by_suffix_or_content_with_a_bom(tmp_path: Path) -> None:
    csv_file = tmp_path / "thu-tuc.txt"
    csv_file.write_bytes(b"\xef\xbb\xbf" + CSV.encode())
    assert [r.procedure.code for r in read_procedure_file(csv_file)] == ["1.001193", "2.000806"]
    latin = tmp_path / "p.csv"
    latin.write_bytes("code,name\n1.001193,Đăng".encode("cp1258"))
    with pytest.raises(ProcedureFileError, match="not UTF-8"):
        read_procedure_file(latin)


def test_the_demo_catalogue_is_valid() -> None:
    procedures = [r.procedure for r in read_procedure_file(DEMO_FILE)]
    assert {p.code for p in procedures} >= {"1.001193", "2.000806"}
    assert any(p.steps for p in procedures)
