"""Objects kept in the database (migration 0044): the bytes of small packages, by SHA-256.

Written by storage/objects/inline.py in the transaction of the row that names the object; read
whole or by byte range (``substr`` on a BLOB counts bytes, on SQLite as on PostgreSQL's BYTEA).
"""

from __future__ import annotations

from datetime import datetime

from storage.db import Tx
from storage.ids import to_db_time

_MAX_LENGTH = 2**31 - 1


class InlineObjectRepo:
    """The ``inline_objects`` table, through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def put(self, sha256: str, data: bytes, now: datetime) -> None:
        """Keep ``data`` under its digest; the same digest again writes nothing (same bytes)."""
        await self.tx.execute(
            "INSERT INTO inline_objects (sha256, size, data, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (sha256) DO NOTHING",
            (sha256, len(data), data, to_db_time(now)),
        )

    async def size(self, sha256: str) -> int | None:
        """The object's size, or None when it is not kept here."""
        row = await self.tx.fetchone("SELECT size FROM inline_objects WHERE sha256 = ?", (sha256,))
        return None if row is None else int(row[0])

    async def read(self, sha256: str, start: int = 0, end: int | None = None) -> bytes | None:
        """Bytes [start, end) of the object (end clipped to its size), or None when absent."""
        # SQLite reads substr's arguments as 32-bit ints: keep them there (objects here are
        # small; the end is clipped to the size anyway).
        first = min(start + 1, _MAX_LENGTH)
        params: list[object]
        if start == 0 and end is None:
            sql, params = "SELECT data FROM inline_objects WHERE sha256 = ?", [sha256]
        elif end is None:
            sql = "SELECT substr(data, ?) FROM inline_objects WHERE sha256 = ?"
            params = [first, sha256]
        else:
            sql = "SELECT substr(data, ?, ?) FROM inline_objects WHERE sha256 = ?"
            params = [first, min(end - start, _MAX_LENGTH), sha256]
        row = await self.tx.fetchone(sql, params)
        return None if row is None else bytes(row[0])

    async def delete(self, sha256: str) -> bool:
        """Remove the object (only the orphan sweep does); True if it was kept here."""
        return await self.tx.execute("DELETE FROM inline_objects WHERE sha256 = ?", (sha256,)) > 0
