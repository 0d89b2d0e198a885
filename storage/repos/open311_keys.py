"""API keys of Open311 apps (migration 0032). Only the SHA-256 hex of a key is stored."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, from_db_time_opt, to_db_time, utcnow


@dataclass(frozen=True)
class Open311Key:
    """One app's key as listed (never the key, never its hash)."""

    name: str
    created_at: datetime
    revoked_at: datetime | None


class Open311KeyRepo:
    """Reads and writes the open311_keys table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def create(self, name: str, key_hash: str) -> None:
        """Record the key of app ``name`` by its hash; Conflict if the app has an active key."""
        try:
            await self.tx.execute(
                "INSERT INTO open311_keys (name, key_hash, created_at) VALUES (?, ?, ?)",
                (name, key_hash, to_db_time(utcnow())),
            )
        except Conflict as exc:
            raise Conflict(f"app {name!r} already has an active key: revoke it first") from exc

    async def app_of(self, key_hash: str) -> str | None:
        """The app whose active key has this hash, or None (unknown or revoked)."""
        row = await self.tx.fetchone(
            "SELECT name FROM open311_keys WHERE key_hash = ? AND revoked_at IS NULL",
            (key_hash,),
        )
        return None if row is None else str(row["name"])

    async def revoke(self, name: str) -> bool:
        """Revoke the active key of app ``name``: False when it has none."""
        changed = await self.tx.execute(
            "UPDATE open311_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            (to_db_time(utcnow()), name),
        )
        return changed > 0

    async def list(self) -> list[Open311Key]:
        """Every key, revoked ones included, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT name, created_at, revoked_at FROM open311_keys ORDER BY id", ()
        )
        return [_key(r) for r in rows]


def _key(row: sqlite3.Row) -> Open311Key:
    return Open311Key(
        name=row["name"],
        created_at=from_db_time(row["created_at"]),
        revoked_at=from_db_time_opt(row["revoked_at"]),
    )
