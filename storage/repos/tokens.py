"""Bearer tokens of agencies. Only the SHA-256 hex of a token is stored, never the token."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, from_db_time_opt, new_id, to_db_time, utcnow


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for: the token, its agency and its roles."""

    token_id: str
    organ_id: str
    roles: frozenset[str]


@dataclass(frozen=True)
class TokenInfo:
    """One token as listed for its agency (no hash). Also readable like a dict: row["label"]."""

    token_id: str
    organ_id: str
    label: str | None
    roles: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> list[str]:
        """Field names, so that dict(info) works."""
        return [f.name for f in fields(self)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())


def _roles_text(roles: Iterable[str]) -> str:
    cleaned = sorted({r.strip() for r in roles if r.strip()})
    for role in cleaned:
        if " " in role:
            raise ValueError(f"a role name cannot contain spaces: {role!r}")
    return " ".join(cleaned)


def _roles(text: str) -> frozenset[str]:
    return frozenset(text.split())


class TokenRepo:
    """Reads and writes the tokens table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def create(
        self,
        organ_id: str,
        token_hash: str,
        label: str | None = None,
        roles: Iterable[str] = ("agency",),
    ) -> str:
        """Record a token by its hash for `organ_id`; return the new token id.

        MissingReference (a NotFound) if the agency is unknown; Conflict if the hash exists.
        """
        token_id = new_id()
        try:
            await self.tx.execute(
                "INSERT INTO tokens (token_id, organ_id, token_hash, label, roles, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, organ_id, token_hash, label, _roles_text(roles), to_db_time(utcnow())),
            )
        except Conflict as exc:
            raise Conflict("a token with this hash already exists") from exc
        return token_id

    async def find(self, token_hash: str) -> Principal | None:
        """The principal of a token by its hash; None if unknown or revoked."""
        row = await self.tx.fetchone(
            "SELECT token_id, organ_id, roles FROM tokens"
            " WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )
        if row is None:
            return None
        return Principal(row["token_id"], row["organ_id"], _roles(row["roles"]))

    async def revoke(self, token_id: str) -> bool:
        """Revoke a token. True if it was active and is now revoked; False if unknown or
        already revoked (revoking twice keeps the first revocation time)."""
        changed = await self.tx.execute(
            "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (to_db_time(utcnow()), token_id),
        )
        return changed > 0

    async def get(self, token_id: str) -> TokenInfo | None:
        """One token's listing row, or None."""
        row = await self.tx.fetchone(
            "SELECT token_id, organ_id, label, roles, created_at, revoked_at FROM tokens"
            " WHERE token_id = ?",
            (token_id,),
        )
        return None if row is None else _info(row)

    async def list(self, organ_id: str) -> list[TokenInfo]:
        """The agency's tokens (revoked ones included), oldest first."""
        rows = await self.tx.fetchall(
            "SELECT token_id, organ_id, label, roles, created_at, revoked_at FROM tokens"
            " WHERE organ_id = ? ORDER BY token_id",
            (organ_id,),
        )
        return [_info(r) for r in rows]


def _info(row: sqlite3.Row) -> TokenInfo:
    return TokenInfo(
        token_id=row["token_id"],
        organ_id=row["organ_id"],
        label=row["label"],
        roles=_roles(row["roles"]),
        created_at=from_db_time(row["created_at"]),
        revoked_at=from_db_time_opt(row["revoked_at"]),
    )
