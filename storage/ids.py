"""Time-sortable identifiers and the UTC timestamp format of the metadata store.

`new_id()` returns 32 lowercase hex characters: 12 hex of the Unix time in milliseconds followed
by 20 hex of randomness. Ids sort in creation order, which is what makes `?after=<id>` cursor
pagination work. Within one process they are strictly increasing even when several are made in
the same millisecond (the random part is then incremented, as ULID's monotonic mode does), so
rows inserted under the single writer lock have ids in commit order and a cursor never skips one.
"""

import secrets
import threading
import time
from datetime import UTC, datetime

_RANDOM_BITS = 80
_RANDOM_MAX = (1 << _RANDOM_BITS) - 1

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def new_id() -> str:
    """Return a new 32-hex-character id, greater than every id this process made before."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same millisecond (or the clock stepped back): keep the previous time part and
            # count up, so ids stay strictly increasing.
            ms = _last_ms
            rand = _last_rand + 1
            if rand > _RANDOM_MAX:
                ms += 1
                rand = secrets.randbits(_RANDOM_BITS - 1)
        else:
            # Leave headroom (top bit clear) so increments within one millisecond don't overflow.
            rand = secrets.randbits(_RANDOM_BITS - 1)
        _last_ms, _last_rand = ms, rand
    return f"{ms:012x}{rand:020x}"


def utcnow() -> datetime:
    """Return the current time as an aware datetime in UTC."""
    return datetime.now(UTC)


def to_db_time(value: datetime) -> str:
    """Format an aware datetime as the stored text: fixed-width ISO-8601 UTC with microseconds.

    Fixed width (always `.ffffff` and `Z`) keeps text order equal to time order.
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime: storage keeps only timezone-aware times")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db_time(value: str) -> datetime:
    """Parse a stored time text back into an aware UTC datetime."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def from_db_time_opt(value: str | None) -> datetime | None:
    """Like from_db_time, passing None through (for nullable columns)."""
    return None if value is None else from_db_time(value)
