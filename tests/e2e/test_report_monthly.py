"""The monthly workbook (issue 19): ``GET /api/v1/stats/report.xlsx`` and ``lienthong report
monthly``, opened by LibreOffice (headless ``soffice --convert-to csv``, every sheet in one
conversion) and compared, cell by cell, with what ``GET /api/v1/stats/{figure}`` answers.

Real parts: ``lienthong demo`` (its months of traffic, server/cli/demo_traffic.py), ``lienthong
serve``, ``lienthong stats fold``, the installed console script, LibreOffice Calc from Debian
(``libreoffice-calc-nogui``, in the Makefile's APT_PACKAGES). One conversion per session.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from server.stats.report import BY_AGENCY, BY_MONTH, SHEETS, TOTAL, trailing_start
from tests.e2e.test_cli_client import LIENTHONG, Axis, start_axis, stop_axis

SOFFICE = shutil.which("soffice")
PROVINCE = "TOKEN_H41"  # UBND tỉnh Nghệ An: sees itself and its department, district, commune
# Every sheet to its own CSV file (token 12 = -1), UTF-8 (76), raw values, not as shown.
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,false,false,false,false,-1"

pytestmark = pytest.mark.skipif(
    SOFFICE is None, reason="libreoffice-calc-nogui is in the Makefile's APT_PACKAGES"
)


def last_month() -> str:
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    return f"{today.replace(day=1) - timedelta(days=1):%Y-%m}"


@dataclass
class Report:
    axis: Axis
    month: str
    first: date
    last: date
    xlsx: bytes
    sheets: dict[str, list[list[str]]]  # as LibreOffice read them


def fetch(axis: Axis, path: str, token: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        axis.url + path, headers={"Authorization": f"Bearer {axis.tokens[token]}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def open_in_libreoffice(xlsx: Path) -> dict[str, list[list[str]]]:
    """Every sheet of ``xlsx`` as LibreOffice Calc reads it, by sheet name."""
    out = xlsx.parent / "csv"
    profile = xlsx.parent / "lo-profile"
    result = subprocess.run(
        [str(SOFFICE), "--headless", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", CSV_FILTER, "--outdir", str(out), str(xlsx)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sheets = {}
    for path in out.glob(f"{xlsx.stem}-*.csv"):
        name = path.stem.removeprefix(f"{xlsx.stem}-")
        sheets[name] = list(csv.reader(io.StringIO(path.read_text("utf-8"))))
    return sheets


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    work = tmp_path_factory.mktemp("report")
    axis = start_axis(work / "data")
    try:
        folded = subprocess.run(
            [str(LIENTHONG), "stats", "fold", "--data-dir", str(axis.data)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert folded.returncode == 0, folded.stderr
        month = last_month()
        code, ctype, body = fetch(axis, f"/api/v1/stats/report.xlsx?month={month}", PROVINCE)
        assert code == 200, body
        assert ctype.startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
        path = work / "bao-cao.xlsx"
        path.write_bytes(body)
        first = date.fromisoformat(f"{month}-01")
        last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        yield Report(axis, month, first, last, body, open_in_libreoffice(path))
    finally:
        stop_axis(axis)


def api(report: Report, figure: str, start: date, group_by: str) -> dict[str, Any]:
    query = f"from={start.isoformat()}&to={report.last.isoformat()}&group_by={group_by}"
    code, _, body = fetch(report.axis, f"/api/v1/stats/{figure}?{query}", PROVINCE)
    assert code == 200, body
    return dict(json.loads(body))


def section(rows: list[list[str]], heading: str) -> list[list[str]]:
    """The table under the row starting with ``heading``: its header, then its rows up to and
    including the totals."""
    start = next(i for i, r in enumerate(rows) if r and r[0].startswith(heading))
    end = next(i for i in range(start, len(rows)) if rows[i][0] == TOTAL)
    return rows[start + 1 : end + 1]


def read_number(text: str) -> float | None:
    """A cell as LibreOffice wrote it: empty (null), a number, or a percent."""
    if text == "":
        return None
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text)


def same(sheet: list[list[str]], table: dict[str, Any]) -> int:
    """Compare a section as LibreOffice read it with the API's table; the values compared."""
    header, *lines = sheet
    columns = table["columns"]
    assert header[2 : 2 + len(columns)] == [
        c["label"] + {"seconds": " (giây)", "days": " (ngày)"}.get(c["unit"], "") for c in columns
    ]
    expected = [(r["key"], r["label"], r["values"]) for r in table["rows"]]
    expected.append((TOTAL, "", table["totals"]))
    assert [(line[0], line[1]) for line in lines] == [(k, label) for k, label, _ in expected]
    compared = 0
    for line, (_, _, values) in zip(lines, expected, strict=True):
        for n, column in enumerate(columns, 2):
            want = values[column["key"]]
            got = read_number(line[n])
            if want is None:
                assert got is None, (line[0], column["key"])
            else:
                assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (line[0], column["key"])
                compared += 1
    return compared


@pytest.mark.parametrize("figure", list(SHEETS))
def test_libreoffice_reads_the_api_numbers(report: Report, figure: str) -> None:
    sheet = report.sheets[SHEETS[figure]]
    assert sheet[0][0] == f"Báo cáo tháng {report.first:%m/%Y}: " + sheet[0][0].split(": ", 1)[1]
    assert "UBND tỉnh Nghệ An (000.00.00.H41)" in sheet[1][0]
    by_agency = api(report, figure, report.first, "agency")
    assert {r["key"] for r in by_agency["rows"]} == {
        "000.00.00.H41", "000.00.12.H41", "000.00.31.H41", "000.05.31.H41",
    }  # fmt: skip
    assert same(section(sheet, BY_AGENCY), by_agency) > 0
    by_month = api(report, figure, trailing_start(report.first), "month")
    assert len(by_month["rows"]) == 12
    assert same(section(sheet, BY_MONTH), by_month) > 0
    assert by_month["totals"]["received"] > 0  # the demo traffic is in it


def test_demo_traffic_fills_months_of_exchange(report: Report) -> None:
    months = [r for r in report.sheets[SHEETS["exchange"]] if r and r[0][:4].isdigit()]
    with_documents = [r for r in months if r[2] not in ("", "0")]
    assert len(with_documents) >= 3  # the dashboard's charts have months to show


def test_number_formats_and_the_cli_workbook(report: Report, tmp_path: Path) -> None:
    book = load_workbook(io.BytesIO(report.xlsx))
    assert book.sheetnames == list(SHEETS.values())
    sheet = book[SHEETS["exchange"]]
    header_row = next(r for r in sheet.iter_rows() if r[0].value == "Mã định danh")
    formats = {c.value: sheet.cell(c.row + 1, c.column).number_format for c in header_row[2:]}
    assert formats["Tỷ lệ không kèm bản giấy"] == "0.0%"
    assert formats["Văn bản gửi đi"] == "#,##0"

    # The CLI (an operator on the axis: every agency) has the same cells for the province's.
    out = tmp_path / "thang.xlsx"
    result = subprocess.run(
        [str(LIENTHONG), "report", "monthly", "--month", report.month, "-o", str(out),
         "--data-dir", str(report.axis.data)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Monthly report {report.month} written to {out}" in result.stdout
    mine = load_workbook(out)
    for name in SHEETS.values():
        rows_of = {
            r[0]: r for r in book[name].iter_rows(values_only=True) if str(r[0]).startswith("000.")
        }
        all_rows = {
            r[0]: r for r in mine[name].iter_rows(values_only=True) if str(r[0]).startswith("000.")
        }
        assert "000.00.00.G22" in all_rows and "000.00.00.G22" not in rows_of
        for key, values in rows_of.items():
            assert all_rows[key] == values


def test_bad_requests_are_named_and_nothing_is_written(report: Report, tmp_path: Path) -> None:
    code, ctype, body = fetch(report.axis, "/api/v1/stats/report.xlsx?month=2026-13", PROVINCE)
    assert code == 400 and ctype.startswith("application/problem+json")
    assert json.loads(body)["parameter"] == "month"
    code, ctype, body = fetch(report.axis, "/api/v1/stats/report.xlsx", PROVINCE)
    assert code == 400 and json.loads(body)["parameter"] == "month"
    path = f"/api/v1/stats/report.xlsx?month={report.month}&agency=000.00.00.G22"
    code, ctype, _ = fetch(report.axis, path, PROVINCE)  # not under the province
    assert code == 404 and ctype.startswith("application/problem+json")

    out = tmp_path / "x.xlsx"
    result = subprocess.run(
        [str(LIENTHONG), "report", "monthly", "--month", "11-2026", "-o", str(out),
         "--data-dir", str(report.axis.data)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "lienthong: error: parameter month: must be a month YYYY-MM"
    ]
    assert not out.exists()
