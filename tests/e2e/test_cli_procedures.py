"""``lienthong procedure import | add | list`` on a temporary data directory.

Real SQLite files; the installed ``lienthong`` console script for the import and list (as an
administrator runs them), the in-process parser for the many refusals of ``add``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main
from server.cli.table import display_width

LIENTHONG = Path(sys.executable).parent / "lienthong"
TINH = "000.00.00.H41"
HUYEN = "000.00.31.H41"
XA = "000.05.31.H41"

CSV = (
    "code,name,field,agency,days,calendar_days,online_level,components,fees,steps\n"
    f"1.001193,Đăng ký khai sinh,Hộ tịch,{XA},1,,full,"
    '"TK*=Tờ khai đăng ký khai sinh; GCS*=Giấy chứng sinh; UQ=Văn bản ủy quyền",'
    "0=Miễn lệ phí,\n"
    f"2.000806,Đăng ký kết hôn có yếu tố nước ngoài,Hộ tịch,{HUYEN},15,0,partial,"
    f'TK*=Tờ khai,1000000=Lệ phí,"{XA}=2; {HUYEN}=13"\n'
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lienthong(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIENTHONG), *argv], capture_output=True, text=True, encoding="utf-8",
        timeout=120, check=False,
    )  # fmt: skip


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lienthong: error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("lienthong: error: ")


def rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data / "lienthong.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def stored(data: Path) -> dict[str, dict[str, object]]:
    return {
        code: json.loads(str(body))
        for code, body in rows(data, "SELECT code, body FROM procedures ORDER BY code")
    }


def audited(data: Path) -> list[tuple[object, ...]]:
    return rows(
        data, "SELECT action, objects FROM audit_log WHERE action LIKE 'procedure.%' ORDER BY seq"
    )


@pytest.fixture
def data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "data"
    assert run(capsys, "init", "--data-dir", str(directory))[0] == 0
    for organ, name, parent in [
        (TINH, "UBND tỉnh Nghệ An", None),
        (HUYEN, "UBND huyện Nam Đàn", TINH),
        (XA, "UBND xã Kim Liên", HUYEN),
    ]:
        extra = ["--parent", parent] if parent else []
        argv = ["agency", "add", organ, "--name", name, *extra, "--data-dir", str(directory)]
        assert run(capsys, *argv)[0] == 0
    return directory


def imported(capsys: pytest.CaptureFixture[str], data: Path, path: Path) -> str:
    """The summary line of an in-process ``procedure import``."""
    code, out, err = run(capsys, "procedure", "import", str(path), "--data-dir", str(data))
    assert code == 0, err
    return out.strip().split(": ", 1)[1].rstrip(".")


def test_import_csv_then_json_is_idempotent_by_code_and_list_aligns(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "thu-tuc.csv"
    csv_file.write_text(CSV, "utf-8")
    first = lienthong("procedure", "import", str(csv_file), "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    assert "2 added, 0 updated, 0 unchanged" in first.stdout
    catalogue = stored(data)
    assert catalogue["1.001193"]["components"][0] == {  # type: ignore[index]
        "code": "TK",
        "name": "Tờ khai đăng ký khai sinh",
        "required": True,
    }
    again = lienthong("procedure", "import", str(csv_file), "--data-dir", str(data))
    assert "0 added, 0 updated, 2 unchanged" in again.stdout
    assert stored(data) == catalogue and len(audited(data)) == 2

    # The same procedures as JSON change nothing; a changed one and a new one do.
    as_json = {"procedures": list(catalogue.values())}
    json_file = tmp_path / "thu-tuc.json"
    json_file.write_text(json.dumps(as_json, ensure_ascii=False), "utf-8")
    assert imported(capsys, data, json_file) == "0 added, 0 updated, 2 unchanged"
    as_json["procedures"][0] = {**catalogue["1.001193"], "days": 3, "calendar_days": True}
    as_json["procedures"].append(
        {"code": "2.001263", "name": "Đăng ký việc nuôi con nuôi trong nước", "agency": XA,
         "days": 30, "calendar_days": True, "fees": [{"amount": 400000, "description": "Lệ phí"}]}
    )  # fmt: skip
    json_file.write_text(json.dumps(as_json, ensure_ascii=False), "utf-8")
    assert imported(capsys, data, json_file) == "1 added, 1 updated, 1 unchanged"
    assert stored(data)["1.001193"]["days"] == 3
    assert [a for a, _ in audited(data)] == ["procedure.add"] * 2 + [
        "procedure.update",
        "procedure.add",
    ]

    listing = lienthong("procedure", "list", "--data-dir", str(data))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.rstrip("\n").splitlines()
    assert lines[0].split() == [
        "CODE", "NAME", "FIELD", "AGENCY", "TIME", "ONLINE", "REQUIRED", "COMPONENTS"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[2:]] == ["1.001193", "2.000806", "2.001263"]
    assert "3 calendar days" in lines[2] and "Toàn trình" in lines[2]
    assert "15 working days" in lines[3] and "Một phần" in lines[3]
    column = display_width(lines[0][: lines[0].index("AGENCY")])
    for line in lines[2:]:
        assert display_width(line[: line.index(".H41")]) == column + len("000.00.31")


def test_a_bad_row_refuses_the_whole_file(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "thu-tuc.csv"
    bad.write_text(CSV + f"2.001263,Nuôi con nuôi,,{XA},30 ngày,,,,,\n", "utf-8")
    result = lienthong("procedure", "import", str(bad), "--data-dir", str(data))
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"{bad}: row 4, field days: must be a whole number, not '30 ngày'"
    )
    assert stored(data) == {} and audited(data) == []


def test_add_and_its_refusals(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "procedure", "list", "--data-dir", str(data))
    assert code == 0 and "No procedures yet" in out
    where = ["--data-dir", str(data)]
    code, out, err = run(
        capsys, "procedure", "add", "2.000806", "--name", "Đăng ký kết hôn có yếu tố nước ngoài",
        "--agency", HUYEN, "--days", "15", "--field", "Hộ tịch", "--online-level", "partial",
        "--component", "TK*=Tờ khai đăng ký kết hôn", "--component", "HC=Bản sao hộ chiếu",
        "--fee", "1000000=Lệ phí", "--step", f"{XA}=2", "--step", f"{HUYEN}=13", *where,
    )  # fmt: skip
    assert code == 0, err
    assert out.strip() == (
        "Added procedure 2.000806 (Đăng ký kết hôn có yếu tố nước ngoài), 15 working days."
    )
    body = stored(data)["2.000806"]
    assert body["components"] == [
        {"code": "TK", "name": "Tờ khai đăng ký kết hôn", "required": True},
        {"code": "HC", "name": "Bản sao hộ chiếu", "required": False},
    ]
    assert body["steps"] == [{"agency": XA, "days": 2}, {"agency": HUYEN, "days": 13}]
    assert body["online_level"] == "partial" and body["calendar_days"] is False
    assert audited(data) == [("procedure.add", '["2.000806"]')]

    code, out, _ = run(
        capsys, "procedure", "add", "1.001193", "--name", "Đăng ký khai sinh", "--agency", XA,
        "--days", "1", "--calendar-days", *where,
    )  # fmt: skip
    assert code == 0 and "1 calendar day." in out

    refusals = [
        (["2.000806", "--name", "x", "--agency", XA, "--days", "1"],
         "procedure 2.000806 already exists (change it with `lienthong procedure import`)"),
        (["1.2", "--name", "x", "--agency", XA, "--days", "1"],
         "CODE: '1.2' is not a national procedure code like 1.001193"),
        (["2.001263", "--name", "x", "--agency", XA, "--days", "many"],
         "--days: must be a whole number, not 'many'"),
        (["2.001263", "--name", "x", "--agency", "UBND xã", "--days", "1"],
         "--agency: 'UBND xã' is not an organisation id (mã định danh)"),
        (["2.001263", "--name", "x", "--agency", "000.00.00.G22", "--days", "1"],
         "--agency: 000.00.00.G22 is not an agency of this axis"),
        (["2.001263", "--name", "x", "--agency", XA, "--days", "5", "--step", f"{XA}=4"],
         "--step: the steps' days (4) must add up to days (5)"),
        (["2.001263", "--name", "x", "--agency", XA, "--days", "1", "--fee", "free"],
         "--fee: item 1 'free' is not AMOUNT=Description"),
        (["2.001263", "--name", "x", "--agency", XA, "--days", "1", "--component", "=x"],
         "--component: item 1 '=x' is not CODE=Name (CODE*=Name when required)"),
    ]  # fmt: skip
    for argv, message in refusals:
        code, _, err = run(capsys, "procedure", "add", *argv, *where)
        assert (code, one_error_line(err)) == (1, message)
    assert sorted(stored(data)) == ["1.001193", "2.000806"]


def test_files_that_cannot_be_imported(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.csv"
    empty = tmp_path / "empty.json"
    empty.write_text("[]", "utf-8")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("code,name,agency,days\n1.001193,Đăng,x,1\n".encode("cp1258"))
    unknown = tmp_path / "unknown.json"
    outsider = {"code": "1.001193", "name": "x", "agency": "000.00.00.G22", "days": 1}
    unknown.write_text(json.dumps([outsider]), "utf-8")
    for path, message in [
        (missing, f"cannot read {missing}: No such file or directory"),
        (empty, f"{empty} holds no procedure"),
        (latin, f"{latin} is not UTF-8 text"),
        (unknown, f"{unknown}: procedure 1, field agency: 000.00.00.G22 is not an agency"
                  " of this axis"),
    ]:  # fmt: skip
        code, _, err = run(capsys, "procedure", "import", str(path), "--data-dir", str(data))
        assert (code, one_error_line(err)) == (1, message)
    assert stored(data) == {}
