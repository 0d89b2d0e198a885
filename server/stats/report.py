"""The monthly report (báo cáo tháng) as an .xlsx workbook: one sheet per figure group
(exchange, dossiers, feedback), each with the month by agency (and its totals) and the twelve
months up to it (and their totals), the very tables :func:`server.stats.query.stats` gives the
API, with Vietnamese headers and number formats (percent for shares).

``lienthong report monthly`` (server/cli/report_cmd.py) and ``GET /api/v1/stats/report.xlsx``
(server/http/stats_report.py) write it. docs/dashboard.md, "The monthly report".
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date, timedelta

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from server.stats.errors import InvalidStatsQuery
from server.stats.figures import FIGURES, Column
from server.stats.query import StatsTable, Viewer, stats
from storage.db import Database

SHEETS = {"exchange": "Văn bản", "dossiers": "Hồ sơ", "feedback": "Phản ánh"}
TITLES = {
    "exchange": "Gửi, nhận văn bản điện tử",
    "dossiers": "Giải quyết hồ sơ thủ tục hành chính",
    "feedback": "Tiếp nhận, trả lời phản ánh, kiến nghị",
}
FORMATS = {"count": "#,##0", "share": "0.0%", "seconds": "#,##0", "days": "0.0"}
UNITS = {"seconds": " (giây)", "days": " (ngày)"}
TRAILING_MONTHS = 12
BY_AGENCY = "Theo cơ quan"
BY_MONTH = "Theo tháng"
TOTAL = "Tổng cộng"
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_HEADER = Font(bold=True)
_FILL = PatternFill("solid", fgColor="DDEBF7")


def parse_month(text: str) -> tuple[date, date]:
    """``YYYY-MM``: its first and last day; InvalidStatsQuery naming ``month`` otherwise."""
    match = _MONTH.fullmatch(text)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise InvalidStatsQuery("month", "must be a month YYYY-MM")
    first = date(int(match[1]), int(match[2]), 1)
    return first, _next_month(first) - timedelta(days=1)


def _next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def trailing_start(first: date) -> date:
    """The first day of the twelve months ending with the month starting on ``first``."""
    month = first.month - (TRAILING_MONTHS - 1)
    year = first.year
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, 1)


async def monthly_tables(
    database: Database, month: str, *, agency: str | None, viewer: Viewer
) -> dict[str, tuple[StatsTable, StatsTable]]:
    """For each figure group: the month by agency, and the twelve months up to it by month."""
    first, last = parse_month(month)
    tables = {}
    for figure in FIGURES:
        by_agency = await stats(
            database, figure, start=first, end=last, level=None, agency=agency,
            group_by="agency", viewer=viewer,
        )  # fmt: skip
        by_month = await stats(
            database, figure, start=trailing_start(first), end=last, level=None, agency=agency,
            group_by="month", viewer=viewer,
        )  # fmt: skip
        tables[figure] = (by_agency, by_month)
    return tables


def _header(column: Column) -> str:
    return column.label + UNITS.get(column.unit, "")


def _table(sheet: Worksheet, top: int, heading: str, keys: Sequence[str], table: StatsTable) -> int:
    """Write ``table`` with its heading from row ``top``; the next free row."""
    sheet.cell(top, 1, heading).font = _HEADER
    header = [*keys, *(_header(c) for c in table.columns)]
    for n, text in enumerate(header, 1):
        cell = sheet.cell(top + 1, n, text)
        cell.font = _HEADER
        cell.fill = _FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    row = top + 2
    lines = [(r.key, r.label, r.values) for r in table.rows]
    lines.append((TOTAL, "", table.totals))
    for key, label, values in lines:
        sheet.cell(row, 1, key)
        sheet.cell(row, 2, label)
        for n, column in enumerate(table.columns, 3):
            cell = sheet.cell(row, n, values.get(column.key))
            cell.number_format = FORMATS[column.unit]
        if key == TOTAL:
            for n in range(1, len(header) + 1):
                sheet.cell(row, n).font = _HEADER
        row += 1
    return row + 1


def workbook_bytes(
    tables: dict[str, tuple[StatsTable, StatsTable]], month: str, scope_name: str
) -> bytes:
    """The workbook of :func:`monthly_tables`, as .xlsx bytes."""
    first, last = parse_month(month)
    book = Workbook()
    book.remove(book.worksheets[0])  # the default sheet
    for figure, (by_agency, by_month) in tables.items():
        sheet = book.create_sheet(SHEETS[figure])
        sheet.cell(1, 1, f"Báo cáo tháng {first:%m/%Y}: {TITLES[figure]}").font = Font(
            bold=True, size=13
        )
        sheet.cell(2, 1, f"Đơn vị: {scope_name}")
        sheet.cell(3, 1, f"Kỳ báo cáo: {first:%d/%m/%Y} - {last:%d/%m/%Y}")
        keys = ("Mã định danh", "Cơ quan")
        row = _table(sheet, 5, f"{BY_AGENCY}, tháng {first:%m/%Y}", keys, by_agency)
        since = by_month.start
        _table(sheet, row, f"{BY_MONTH}, {since:%m/%Y} - {last:%m/%Y}", ("Tháng", ""), by_month)
        sheet.column_dimensions["A"].width = 16
        sheet.column_dimensions["B"].width = 28
        for n in range(3, 3 + len(by_agency.columns)):
            sheet.column_dimensions[get_column_letter(n)].width = 14
        sheet.freeze_panes = "C7"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def scope_name(table: StatsTable) -> str:
    """Whom a table covers: its root agency (name and OrganId), or every agency (admin)."""
    if table.agency is None:
        return "Tất cả cơ quan trên trục"
    names = {r.key: r.label for r in table.rows}
    name = names.get(table.agency)
    return f"{name} ({table.agency})" if name else table.agency


async def monthly_report(
    database: Database, month: str, *, agency: str | None, viewer: Viewer
) -> bytes:
    """The monthly workbook of ``agency`` (default: the viewer's scope) as .xlsx bytes."""
    tables = await monthly_tables(database, month, agency=agency, viewer=viewer)
    return workbook_bytes(tables, month, scope_name(tables["exchange"][0]))
