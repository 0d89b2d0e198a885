"""A record's events as the API shows them (dossiers, citizen feedback): who moved it from
which status to which, when, with what note."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo


class Event(Protocol):
    """One stored move of a record."""

    @property
    def id(self) -> int: ...

    @property
    def actor(self) -> str: ...

    @property
    def at(self) -> datetime: ...

    @property
    def from_status(self) -> Any: ...

    @property
    def to_status(self) -> Any: ...

    @property
    def note(self) -> str: ...


def event_json(e: Event, zone: ZoneInfo) -> dict[str, Any]:
    """``{id, actor, at, from, to, note}``, the time in ``zone``."""
    return {
        "id": e.id,
        "actor": e.actor,
        "at": e.at.astimezone(zone).isoformat(),
        "from": e.from_status,
        "to": e.to_status,
        "note": e.note,
    }
