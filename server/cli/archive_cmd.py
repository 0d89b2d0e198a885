"""``lienthong archive``: export archival packages and verify them (filled in below)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add ``archive`` to the ``lienthong`` parser."""
