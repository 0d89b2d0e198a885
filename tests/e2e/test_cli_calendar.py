"""``lienthong calendar off | on | clear | show | due`` through the installed console script, on a
temporary data directory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

LIENTHONG = Path(sys.executable).parent / "lienthong"


def lienthong(*argv: str, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(data)] if data is not None else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    return subprocess.run(
        [str(LIENTHONG), *argv, *extra], capture_output=True, text=True, env=env, check=False
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lienthong: error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("calendar") / "data"
    assert lienthong("init", data=directory).returncode == 0
    return directory


def test_due_prints_the_issue_examples(data: Path) -> None:
    result = lienthong("calendar", "due", "2026-03-06 17:30", "1", data=data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Due:          Thứ Hai 09/03/2026 17:00")
    assert "Clock starts: Thứ Hai 09/03/2026 07:00" in result.stdout
    result = lienthong("calendar", "due", "2026-03-09 09:00", "1", data=data)
    assert "Due:          Thứ Ba 10/03/2026 09:00" in result.stdout
    result = lienthong("calendar", "due", "2025-12-31 10:00", "6", data=data)
    assert "Thứ Bảy 10/01/2026 10:00" in result.stdout  # the make-up Saturday
    result = lienthong("calendar", "due", "2026-02-10 10:00", "7", "--calendar-days", data=data)
    assert result.stdout.startswith("Due:          Thứ Hai 23/02/2026 17:00")


def test_show_lists_days_with_names_and_sources(data: Path) -> None:
    result = lienthong("calendar", "show", "2026", data=data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["DATE", "DAY", "STATUS", "NAME", "FROM", "SOURCE"]
    table = [line for line in lines[2:] if line[2:3] == "/"]
    by_date = {line[:10]: line for line in table}
    assert "shipped" in by_date["02/01/2026"] and "12729/VPCP-KGVX" in by_date["02/01/2026"]
    assert "làm việc" in by_date["10/01/2026"]
    assert "Tết Nguyên Đán" in by_date["17/02/2026"] and "holidays 0.109" in by_date["17/02/2026"]
    assert "chưa xác nhận" in by_date["24/11/2026"]
    # Aligned: every column starts at the same place on every row.
    status_at = lines[0].index("STATUS")
    assert all(line[status_at - 2 : status_at] == "  " for line in table)
    assert "holidays 0.109" in result.stdout and "2026: checked" in result.stdout
    assert "2027: provisional" in lienthong("calendar", "show", "2027", data=data).stdout


def test_off_on_and_clear_change_due_dates_and_are_audited(data: Path) -> None:
    result = lienthong(
        "calendar", "off", "2027-03-09", "--name", "Nghỉ thử", "--source", "QĐ 1/2027", data=data
    )
    assert result.returncode == 0, result.stderr
    assert "09/03/2027 is now a day off" in result.stdout
    due = lienthong("calendar", "due", "2027-03-08 09:00", "1", data=data)
    assert "Thứ Tư 10/03/2027 09:00" in due.stdout
    result = lienthong("calendar", "on", "13/03/2027", "--name", "Làm bù", data=data)
    assert result.returncode == 0 and "13/03/2027 is now a working day" in result.stdout
    shown = lienthong("calendar", "show", "2027", data=data).stdout
    assert "Nghỉ thử" in shown and "QĐ 1/2027" in shown and "admin" in shown
    result = lienthong("calendar", "clear", "2027-03-09", data=data)
    assert result.returncode == 0, result.stderr
    due = lienthong("calendar", "due", "2027-03-08 09:00", "1", data=data)
    assert "Thứ Ba 09/03/2027 09:00" in due.stdout
    with sqlite3.connect(data / "lienthong.sqlite3") as conn:
        audit = conn.execute(
            "SELECT action, objects FROM audit_log WHERE action LIKE 'calendar.%' ORDER BY seq"
        ).fetchall()
    assert [a for a, _ in audit] == ["calendar.off", "calendar.on", "calendar.clear"]
    assert "2027-03-09" in audit[0][1]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("calendar", "off", "2026-02-30", "--name", "x"), "is not a date"),
        (("calendar", "on", "2026-03-09", "--name", "  "), "--name must not be empty"),
        (("calendar", "show", "20x6"), "is not a year"),
        (("calendar", "show", "3000"), "outside the working-day calendar"),
        (("calendar", "due", "09/03/2026 7h", "1"), "is not a time of receipt"),
        (("calendar", "due", "2026-03-09 09:00", "-1"), "is not a number of days"),
        (("calendar", "due", "2026-03-09 09:00", "99999999"), "beyond the last year"),
        (("calendar", "clear", "2026-03-03"), "no decision on 03/03/2026"),
    ],
)
def test_bad_input_is_one_line(data: Path, argv: tuple[str, ...], says: str) -> None:
    assert says in one_error_line(lienthong(*argv, data=data))


def test_no_database_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(lienthong("calendar", "due", "2026-03-09 09:00", "1", data=tmp_path))
    assert "no database" in line
