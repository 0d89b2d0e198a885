"""The procedure catalogue (danh mục thủ tục hành chính): what a procedure is, and its rules.

A procedure is known by its national code (mã thủ tục, ``1.001193``: one digit, a dot, six
digits, as the National Public Service Portal publishes them). It names its field (lĩnh vực),
its competent agency (cơ quan có thẩm quyền, an agency of this axis), its processing time
(thời hạn giải quyết) in working days or, where the procedure says so, calendar days, its
dossier components (thành phần hồ sơ) with their required flags, its fees (phí, lệ phí) in VND,
its online level (mức độ dịch vụ công trực tuyến: toàn trình, một phần, or none), and optionally
the steps across agencies (một cửa liên thông) with the days of each, which add up to the total.

:func:`procedure_from_mapping` builds a :class:`Procedure` from its JSON form (or a CSV row
whose cells are text) and refuses a bad one with :class:`InvalidProcedure` naming the field;
:func:`procedure_json` is the JSON form back. Whether the agencies are known is checked when the
procedure is stored (``catalogue.py``), since it needs the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from edxml import OrganId
from edxml.errors import EdxmlError
from server.dossiers.errors import InvalidProcedure

CODE_PATTERN = re.compile(r"^[0-9]\.[0-9]{6}$")
# A component's code names the file part of a dossier intake (multipart): keep it a plain token.
COMPONENT_CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_DAYS = 999
MAX_TEXT = 1000
FIELDS = (
    "code",
    "name",
    "field",
    "agency",
    "days",
    "calendar_days",
    "online_level",
    "components",
    "fees",
    "steps",
)


class OnlineLevel(StrEnum):
    """How far a procedure is offered online (mức độ dịch vụ công trực tuyến)."""

    FULL = "full"  # toàn trình: submitted, processed and returned online
    PARTIAL = "partial"  # một phần: some steps online, some at the counter
    NONE = "none"  # not offered online

    @property
    def label(self) -> str:
        """The Vietnamese name of the level."""
        return _LEVEL_LABELS[self]


_LEVEL_LABELS = {
    OnlineLevel.FULL: "Toàn trình",
    OnlineLevel.PARTIAL: "Một phần",
    OnlineLevel.NONE: "Không trực tuyến",
}
# What a file or the CLI may write for each level (compared without case or accents' spaces).
_LEVEL_NAMES = {
    "full": OnlineLevel.FULL,
    "toan-trinh": OnlineLevel.FULL,
    "toàn trình": OnlineLevel.FULL,
    "partial": OnlineLevel.PARTIAL,
    "mot-phan": OnlineLevel.PARTIAL,
    "một phần": OnlineLevel.PARTIAL,
    "none": OnlineLevel.NONE,
    "": OnlineLevel.NONE,
}


@dataclass(frozen=True)
class Component:
    """One dossier component (thành phần hồ sơ): its code, name, and whether it is required."""

    code: str
    name: str
    required: bool


@dataclass(frozen=True)
class Fee:
    """One fee or charge (phí, lệ phí): its amount in VND (0: free) and what it is for."""

    amount: int
    description: str


@dataclass(frozen=True)
class Step:
    """One step of a procedure across agencies: the agency that takes it and its days."""

    agency: str
    days: int


@dataclass(frozen=True)
class Procedure:
    """One administrative procedure of the catalogue (thủ tục hành chính)."""

    code: str
    name: str
    field: str | None
    agency: str
    days: int
    calendar_days: bool
    online_level: OnlineLevel
    components: tuple[Component, ...] = ()
    fees: tuple[Fee, ...] = ()
    steps: tuple[Step, ...] = ()

    @property
    def agencies(self) -> set[str]:
        """Every agency the procedure names: the competent one and those of its steps."""
        return {self.agency, *(s.agency for s in self.steps)}

    @property
    def time_text(self) -> str:
        """The processing time in words, e.g. ``15 working days``."""
        unit = "calendar" if self.calendar_days else "working"
        return f"{self.days} {unit} day{'' if self.days == 1 else 's'}"


# --- the rules ------------------------------------------------------------------------------


def check_code(value: object) -> str:
    """A national procedure code (``1.001193``), or :class:`InvalidProcedure` on field code."""
    code = _text(value, "code")
    if not CODE_PATTERN.match(code):
        raise InvalidProcedure("code", f"{code!r} is not a national procedure code like 1.001193")
    return code


def procedure_from_mapping(data: Mapping[str, Any]) -> Procedure:
    """The procedure ``data`` describes (its JSON form; numbers and flags may be text).

    Unknown keys are refused, so that a misspelt column is not silently dropped.
    """
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidProcedure(unknown[0], f"is not a field of a procedure (fields: {_names()})")
    code = check_code(data.get("code"))
    name = _text(data.get("name"), "name")
    field = _text(data.get("field"), "field", optional=True) or None
    agency = _organ_id(data.get("agency"), "agency")
    days = _whole(data.get("days"), "days")
    calendar_days = _flag(data.get("calendar_days"), "calendar_days")
    level = online_level(data.get("online_level"))
    components = tuple(
        _component(item, i) for i, item in enumerate(_list(data.get("components"), "components"), 1)
    )
    codes = [c.code for c in components]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise InvalidProcedure("components", f"component code {repeated[0]} appears twice")
    fees = tuple(_fee(item, i) for i, item in enumerate(_list(data.get("fees"), "fees"), 1))
    steps = tuple(_step(item, i) for i, item in enumerate(_list(data.get("steps"), "steps"), 1))
    if steps and sum(s.days for s in steps) != days:
        total = " + ".join(str(s.days) for s in steps)
        raise InvalidProcedure("steps", f"the steps' days ({total}) must add up to days ({days})")
    return Procedure(code, name, field, agency, days, calendar_days, level, components, fees, steps)


def online_level(value: object) -> OnlineLevel:
    """The online level a file or the CLI names (``full``, ``toàn trình``, ``toan-trinh``...)."""
    if value is None:
        return OnlineLevel.NONE
    if not isinstance(value, str):
        raise InvalidProcedure("online_level", "must be text")
    level = _LEVEL_NAMES.get(" ".join(value.split()).lower())
    if level is None:
        raise InvalidProcedure(
            "online_level", f"{value!r} is not one of full (toàn trình), partial (một phần), none"
        )
    return level


def procedure_json(procedure: Procedure) -> dict[str, Any]:
    """The JSON form of a procedure: what ``procedure import`` reads and the API answers."""
    return {
        "code": procedure.code,
        "name": procedure.name,
        "field": procedure.field,
        "agency": procedure.agency,
        "days": procedure.days,
        "calendar_days": procedure.calendar_days,
        "online_level": procedure.online_level.value,
        "components": [
            {"code": c.code, "name": c.name, "required": c.required} for c in procedure.components
        ],
        "fees": [{"amount": f.amount, "description": f.description} for f in procedure.fees],
        "steps": [{"agency": s.agency, "days": s.days} for s in procedure.steps],
    }


# --- the pieces -------------------------------------------------------------------------------


def _names() -> str:
    return ", ".join(FIELDS)


def _text(value: object, field: str, *, optional: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidProcedure(field, "must be text")
    text = " ".join(value.split())
    if not text and not optional:
        raise InvalidProcedure(field, "must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidProcedure(field, f"is longer than {MAX_TEXT} characters")
    return text


def _whole(value: object, field: str, *, limit: int = MAX_DAYS) -> int:
    """A whole number from 0 to ``limit``, given as a number or as digits."""
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        shown = "nothing" if value in (None, "") else repr(value)
        raise InvalidProcedure(field, f"must be a whole number, not {shown}")
    if not 0 <= value <= limit:
        raise InvalidProcedure(field, f"must be from 0 to {limit}, not {value}")
    return value


_TRUE = {"1", "true", "yes", "y", "x", "có"}
_FALSE = {"", "0", "false", "no", "n", "không"}


def _flag(value: object, field: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise InvalidProcedure(field, f"must be yes or no (1 or 0), not {value!r}")


def _organ_id(value: object, field: str) -> str:
    text = _text(value, field)
    try:
        return str(OrganId.parse(text))
    except EdxmlError:
        message = f"{text!r} is not an organisation id (mã định danh)"
        raise InvalidProcedure(field, message) from None


def _list(value: object, field: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidProcedure(field, "must be a list")
    return value


def _item(value: object, field: str, number: int) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidProcedure(field, f"item {number} must be an object")
    return value


def _component(value: object, number: int) -> Component:
    item = _item(value, "components", number)
    where = f"components item {number}"
    code = _text(item.get("code"), f"{where} code")
    if not COMPONENT_CODE_PATTERN.match(code):
        raise InvalidProcedure(
            "components", f"item {number}: code {code!r} must be letters, digits, '.', '_', '-'"
        )
    return Component(
        code=code,
        name=_text(item.get("name"), f"{where} name"),
        required=_flag(item.get("required", False), f"{where} required"),
    )


def _fee(value: object, number: int) -> Fee:
    item = _item(value, "fees", number)
    where = f"fees item {number}"
    return Fee(
        amount=_whole(item.get("amount"), f"{where} amount", limit=10**12),
        description=_text(item.get("description"), f"{where} description"),
    )


def _step(value: object, number: int) -> Step:
    item = _item(value, "steps", number)
    where = f"steps item {number}"
    return Step(
        agency=_organ_id(item.get("agency"), f"{where} agency"),
        days=_whole(item.get("days"), f"{where} days"),
    )
