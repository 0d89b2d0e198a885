"""Feedback categories: the Open311 GeoReport v2 *services* of this axis.

A category has a ``service_code`` (letters, digits, ``.``, ``_``, ``-``), a name, a description,
a group, keywords, a type (``realtime``, ``batch``, ``blackbox``), the responsible agency (an
OrganId, the competent agency of its feedback) and optional attributes: an Open311 *service
definition*'s ``attributes`` list, checked here when the category is added
(:func:`read_attributes`), and against which a feedback's attribute values are checked
(:func:`check_values`).

How to call it::

    category = read_category({"code": "DUONG", "name": "Đường hư hỏng", "agency": "000.00.12.H40"})
    async with database.transaction() as tx:
        await add_category(tx, category, actor=ADMIN)
    async with database.reader() as tx:
        categories = await list_categories(tx)        # every category, by code
        one = await get_category(tx, "DUONG")         # or FeedbackNotFound
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from edxml import InvalidOrganIdError, OrganId
from server.feedback.errors import FeedbackNotFound, InvalidCategory, InvalidFeedback
from server.runtime.audit import record
from storage.db import Tx
from storage.ids import utcnow
from storage.repos.feedback import CategoryRepo, CategoryRow

TYPES = ("realtime", "batch", "blackbox")
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LISTS = ("singlevaluelist", "multivaluelist")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
_ATTRIBUTE_KEYS = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}
MAX_VALUE = 2000


def _str(data: Mapping[str, Any], key: str, field: str, limit: int, *, required: bool) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InvalidCategory(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidCategory(field, "must be a string")
    value = value.strip()
    if len(value) > limit:
        raise InvalidCategory(field, f"must be at most {limit} characters")
    return value


def _attribute(data: Any, index: int) -> dict[str, Any]:
    where = f"attributes[{index}]"
    if not isinstance(data, Mapping):
        raise InvalidCategory(where, "must be an object")
    unknown = set(data) - _ATTRIBUTE_KEYS
    if unknown:
        raise InvalidCategory(f"{where}.{sorted(unknown)[0]}", "is not an Open311 attribute field")
    code = _str(data, "code", f"{where}.code", 50, required=True)
    if not _CODE.match(code):
        raise InvalidCategory(f"{where}.code", "letters, digits, '.', '_' or '-' only")
    datatype = data.get("datatype")
    if datatype not in DATATYPES:
        raise InvalidCategory(f"{where}.datatype", f"must be one of {', '.join(DATATYPES)}")
    for flag in ("variable", "required"):
        if not isinstance(data.get(flag, flag == "variable"), bool):
            raise InvalidCategory(f"{where}.{flag}", "must be true or false")
    order = data.get("order", index + 1)
    if not isinstance(order, int) or isinstance(order, bool) or order < 0:
        raise InvalidCategory(f"{where}.order", "must be a whole number")
    values: list[dict[str, str]] = []
    raw_values = data.get("values")
    if datatype in LISTS:
        if not isinstance(raw_values, list) or not raw_values:
            raise InvalidCategory(f"{where}.values", "a list attribute needs its values")
        for j, v in enumerate(raw_values):
            if not isinstance(v, Mapping) or set(v) != {"key", "name"}:
                raise InvalidCategory(f"{where}.values[{j}]", "must be {key, name}")
            key, name = str(v["key"]).strip(), str(v["name"]).strip()
            if not key or not name:
                raise InvalidCategory(f"{where}.values[{j}]", "key and name must not be empty")
            values.append({"key": key, "name": name})
        if len({v["key"] for v in values}) != len(values):
            raise InvalidCategory(f"{where}.values", "two values share a key")
    elif raw_values not in (None, []):
        raise InvalidCategory(
            f"{where}.values", f"only list datatypes ({', '.join(LISTS)}) have values"
        )
    return {
        "variable": data.get("variable", True),
        "code": code,
        "datatype": datatype,
        "required": data.get("required", False),
        "datatype_description": _str(
            data, "datatype_description", f"{where}.datatype_description", 500, required=False
        ),
        "order": order,
        "description": _str(data, "description", f"{where}.description", 500, required=True),
        "values": values,
    }


def read_attributes(definition: Any) -> tuple[dict[str, Any], ...]:
    """The attributes of an Open311 service definition object (``{"attributes": [...]}``, a
    ``service_code`` member allowed), each checked and completed; :class:`InvalidCategory`."""
    if not isinstance(definition, Mapping) or not isinstance(definition.get("attributes"), list):
        raise InvalidCategory("attributes", 'must be a service definition {"attributes": [...]}')
    attributes = [_attribute(a, i) for i, a in enumerate(definition["attributes"])]
    codes = [a["code"] for a in attributes]
    if len(set(codes)) != len(codes):
        raise InvalidCategory("attributes", "two attributes share a code")
    return tuple(sorted(attributes, key=lambda a: a["order"]))


def read_category(data: Mapping[str, Any]) -> CategoryRow:
    """A category from its fields (``code``, ``name``, ``agency``, ``description``, ``group``,
    ``keywords`` (list or comma-separated), ``type``, ``attributes`` (a service definition));
    :class:`InvalidCategory` naming the field."""
    code = _str(data, "code", "code", 50, required=True)
    if not _CODE.match(code):
        raise InvalidCategory("code", "letters, digits, '.', '_' or '-' only (one URL segment)")
    agency = _str(data, "agency", "agency", 50, required=True)
    try:
        OrganId.parse(agency)
    except InvalidOrganIdError:
        raise InvalidCategory("agency", f"{agency!r} is not an OrganId") from None
    kind = data.get("type") or "realtime"
    if kind not in TYPES:
        raise InvalidCategory("type", f"must be one of {', '.join(TYPES)}")
    keywords = data.get("keywords") or ()
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    if not isinstance(keywords, Sequence) or not all(isinstance(k, str) for k in keywords):
        raise InvalidCategory("keywords", "must be a list of words")
    attributes = data.get("attributes")
    return CategoryRow(
        code=code,
        name=_str(data, "name", "name", 200, required=True),
        agency=agency,
        description=_str(data, "description", "description", 2000, required=False),
        group=_str(data, "group", "group", 200, required=False),
        keywords=tuple(k.strip() for k in keywords if k.strip()),
        type=kind,
        attributes=() if attributes is None else read_attributes(attributes),
    )


async def add_category(tx: Tx, category: CategoryRow, actor: str) -> bool:
    """Store (or replace) a category, audited in ``tx``; True when it is new."""
    created = await CategoryRepo(tx).upsert(category, utcnow())
    details = {"name": category.name, "agency": category.agency, "type": category.type}
    await record(tx, actor, "feedback.category", [category.code], details)
    return created


async def get_category(tx: Tx, code: str) -> CategoryRow:
    """The category with this service code; :class:`FeedbackNotFound` if there is none."""
    found = await CategoryRepo(tx).get(code)
    if found is None:
        raise FeedbackNotFound(f"No feedback category {code!r}.")
    return found


async def list_categories(tx: Tx) -> list[CategoryRow]:
    """Every category, by service code."""
    return await CategoryRepo(tx).all()


def category_json(c: CategoryRow) -> dict[str, Any]:
    """A category as the API and the CLI show it."""
    return {
        "code": c.code,
        "name": c.name,
        "description": c.description,
        "group": c.group,
        "keywords": list(c.keywords),
        "type": c.type,
        "agency": c.agency,
        "attributes": list(c.attributes),
    }


def _value(attribute: Mapping[str, Any], value: Any, field: str) -> Any:
    datatype = attribute["datatype"]
    keys = {v["key"] for v in attribute["values"]}
    if datatype == "multivaluelist":
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(i, str) and i in keys for i in items):
            raise InvalidFeedback(field, f"must be among {', '.join(sorted(keys))}")
        return items
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise InvalidFeedback(field, "must be a single value")
    text = str(value).strip()
    if len(text) > MAX_VALUE:
        raise InvalidFeedback(field, f"must be at most {MAX_VALUE} characters")
    if datatype == "singlevaluelist" and text not in keys:
        raise InvalidFeedback(field, f"must be one of {', '.join(sorted(keys))}")
    if datatype == "number":
        try:
            return float(text)
        except ValueError:
            raise InvalidFeedback(field, "must be a number") from None
    if datatype == "datetime":
        try:
            datetime.fromisoformat(text)
        except ValueError:
            raise InvalidFeedback(field, "must be an ISO 8601 date and time") from None
    return text


def check_values(category: CategoryRow, values: Mapping[str, Any]) -> dict[str, Any]:
    """A feedback's attribute values against its category: every required one given, each of
    its datatype (list values by key), no unknown code; :class:`InvalidFeedback` naming
    ``attribute[CODE]`` (Open311's spelling)."""
    known = {a["code"]: a for a in category.attributes}
    out: dict[str, Any] = {}
    for code, value in values.items():
        field = f"attribute[{code}]"
        if code not in known:
            raise InvalidFeedback(field, f"is not an attribute of category {category.code}")
        if value in (None, "", []):
            continue
        out[code] = _value(known[code], value, field)
    for code, attribute in known.items():
        if attribute["required"] and attribute["variable"] and code not in out:
            raise InvalidFeedback(f"attribute[{code}]", f"is required: {attribute['description']}")
    return out
