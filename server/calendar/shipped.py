"""The corrections shipped with the code (``vn_overrides.json``): official schedules the
``holidays`` package gets wrong or has not confirmed, each with its source.

They sit between the package and the admin's override table: an admin's decision on a day wins
over them, and a release that ships a new correction applies it everywhere no admin decided.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from server.calendar.days import SHIPPED, DayDecision

RESOURCE = "vn_overrides.json"


@dataclass(frozen=True)
class CheckedYear:
    """A year whose package calendar was compared with the official schedule."""

    year: int
    checked: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Shipped:
    """The content of ``vn_overrides.json``."""

    holidays_version: str
    decisions: tuple[DayDecision, ...]
    checked_years: dict[int, CheckedYear]


@functools.cache
def shipped() -> Shipped:
    """The shipped corrections (read once; ValueError if the file is malformed)."""
    text = importlib.resources.files("server.calendar").joinpath(RESOURCE).read_text("utf-8")
    return parse(json.loads(text))


def parse(raw: dict[str, Any]) -> Shipped:
    """Check and read the JSON document of shipped corrections."""
    decisions = []
    for entry in raw["days"]:
        if not isinstance(entry["working"], bool) or not entry["name"] or not entry["source"]:
            raise ValueError(f"{RESOURCE}: {entry!r} needs working (true/false), name, source")
        decisions.append(
            DayDecision(
                day=date.fromisoformat(entry["date"]),
                working=entry["working"],
                name=entry["name"],
                source=entry["source"],
                origin=SHIPPED,
                unconfirmed=bool(entry.get("unconfirmed", False)),
            )
        )
    if len({d.day for d in decisions}) != len(decisions):
        raise ValueError(f"{RESOURCE}: a day is listed twice")
    years = {
        int(year): CheckedYear(int(year), value["checked"], tuple(value["sources"]))
        for year, value in raw.get("years", {}).items()
    }
    return Shipped(str(raw["holidays_version"]), tuple(decisions), years)
