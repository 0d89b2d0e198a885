"""The files ``lienthong procedure import`` reads: CSV or JSON, documented in docs/dossiers.md.

JSON is the procedure's JSON form (:func:`~server.dossiers.procedures.procedure_json`): a list of
procedures, or an object ``{"procedures": [...]}`` (with an optional ``source`` and ``note``).

CSV (UTF-8, a BOM allowed as spreadsheets write it, comma-separated, a header row) has one row
per procedure and the columns ``code, name, field, agency, days, calendar_days, online_level,
components, fees, steps``; ``code, name, agency, days`` are required, the others may be left
out. The list cells hold ``key=value`` items separated by ``;``:

- components: ``CODE=Name``, ``CODE*=Name`` when the component is required;
- fees: ``AMOUNT=Description`` (the amount in VND, digits only);
- steps: ``ORGANID=DAYS``.

A bad row is refused as :class:`InvalidProcedure` naming the row as a spreadsheet shows it (the
header is row 1) and the field; a file that is no CSV or JSON at all as
:class:`ProcedureFileError`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from server.dossiers.catalogue import Located
from server.dossiers.errors import InvalidProcedure, ProcedureFileError
from server.dossiers.procedures import FIELDS, procedure_from_mapping

REQUIRED_COLUMNS = ("code", "name", "agency", "days")
_JSON_KEYS = {"procedures", "source", "note"}


def read_procedure_file(path: Path) -> list[Located]:
    """Every procedure of the CSV or JSON file at ``path`` (by its suffix, else its content)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProcedureFileError(f"{path} is not UTF-8 text") from None
    kind = path.suffix.lower()
    if kind not in {".csv", ".json"}:
        kind = ".json" if text.lstrip()[:1] in {"[", "{"} else ".csv"
    return parse_json(text, str(path)) if kind == ".json" else parse_csv(text, str(path))


def parse_json(text: str, name: str) -> list[Located]:
    """The procedures of a JSON procedure file (``name`` is for messages)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProcedureFileError(f"{name} is not JSON ({exc})") from None
    if isinstance(data, dict):
        unknown = sorted(set(data) - _JSON_KEYS)
        if unknown or "procedures" not in data:
            raise ProcedureFileError(
                f'{name}: expected a list of procedures or {{"procedures": [...]}}'
            )
        data = data["procedures"]
    if not isinstance(data, list):
        raise ProcedureFileError(f"{name}: expected a list of procedures")
    found = []
    for number, item in enumerate(data, 1):
        where = f"procedure {number}"
        if not isinstance(item, dict):
            raise ProcedureFileError(f"{name}: {where} is not an object")
        found.append(_located(item, where))
    return found


def parse_csv(text: str, name: str) -> list[Located]:
    """The procedures of a CSV procedure file (``name`` is for messages)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        _check_header(header, name)
        found = []
        for number, row in enumerate(reader, 2):  # as a spreadsheet shows it: header = row 1
            where = f"row {number}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise ProcedureFileError(f"{name}: {where} has more cells than the header")
            cells = dict(zip(header, row, strict=False))
            found.append(_located(cells, where, _from_cells))
    except csv.Error as exc:
        raise ProcedureFileError(f"{name}: not CSV ({exc})") from None
    return found


def _check_header(header: list[str], name: str) -> None:
    if not any(header):
        raise ProcedureFileError(f"{name}: no header row (columns: {', '.join(FIELDS)})")
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise ProcedureFileError(
            f"{name}: row 1, column {unknown[0]!r} is not one of {', '.join(FIELDS)}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ProcedureFileError(f"{name}: row 1, the column {missing[0]!r} is missing")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise ProcedureFileError(f"{name}: row 1, the column {twice[0]!r} appears twice")


def _located(
    data: Mapping[str, Any],
    where: str,
    prepare: Callable[[Mapping[str, str]], Mapping[str, Any]] | None = None,
) -> Located:
    """The procedure of one row or item; a refusal names ``where`` it is."""
    try:
        return Located(where, procedure_from_mapping(prepare(data) if prepare else data))
    except InvalidProcedure as exc:
        raise exc.at(where) from None


def _from_cells(cells: Mapping[str, str]) -> Mapping[str, Any]:
    """A CSV row as the JSON form: the list cells split into their items."""
    data: dict[str, Any] = dict(cells)
    for column, split in _LIST_CELLS.items():
        if column in data:
            data[column] = split(data[column])
    return data


def _items(cell: str, column: str, shape: str) -> list[tuple[str, str]]:
    pairs = []
    for number, item in enumerate((i.strip() for i in cell.replace("\n", ";").split(";")), 1):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidProcedure(column, f"item {number} {item!r} is not {shape}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def components_cell(cell: str) -> list[dict[str, Any]]:
    """``TK*=Tờ khai; UQ=Văn bản ủy quyền`` as component objects (``*``: required)."""
    return [
        {"code": key.rstrip("*").strip(), "name": value, "required": key.endswith("*")}
        for key, value in _items(cell, "components", "CODE=Name (CODE*=Name when required)")
    ]


def fees_cell(cell: str) -> list[dict[str, Any]]:
    """``0=Miễn lệ phí; 8000=Bản sao trích lục`` as fee objects (amounts in VND)."""
    return [
        {"amount": key, "description": value}
        for key, value in _items(cell, "fees", "AMOUNT=Description")
    ]


def steps_cell(cell: str) -> list[dict[str, Any]]:
    """``000.05.31.H41=2; 000.00.31.H41=13`` as step objects (agency and days)."""
    return [{"agency": key, "days": value} for key, value in _items(cell, "steps", "ORGANID=DAYS")]


_LIST_CELLS: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "components": components_cell,
    "fees": fees_cell,
    "steps": steps_cell,
}
