"""State of the national axis protocol (VDXP): credentials, transport state, registrations.

Three small tables of migration 0002: ``vdxp_credentials`` (one system id and encrypted secret
per agency), ``vdxp_transport`` (updateStatus of a pulled delivery) and ``vdxp_registrations``
(units added with registerAgency). Encryption happens in the server: this module only stores
the ciphertext text it is given.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.errors import Conflict
from storage.ids import from_db_time, from_db_time_opt, to_db_time, utcnow

TRANSPORT_STATES: frozenset[str] = frozenset({"processing", "fail", "done"})
_IN_CHUNK = 500


@dataclass(frozen=True)
class Credentials:
    """An agency's VDXP system id and its secret as stored (ciphertext text)."""

    organ_id: str
    system_id: str
    secret_ciphertext: str
    created_at: datetime
    rotated_at: datetime | None


@dataclass(frozen=True)
class TransportState:
    """The last updateStatus of one delivery (processing, fail or done)."""

    delivery_id: str
    state: str
    updated_at: datetime


@dataclass(frozen=True)
class Registration:
    """A unit registered through registerAgency by ``registered_by``."""

    organ_id: str
    registered_by: str
    registered_at: datetime
    deleted_at: datetime | None


_CRED_COLUMNS = "organ_id, system_id, secret_ciphertext, created_at, rotated_at"


def _credentials(row: sqlite3.Row) -> Credentials:
    return Credentials(
        organ_id=row["organ_id"],
        system_id=row["system_id"],
        secret_ciphertext=row["secret_ciphertext"],
        created_at=from_db_time(row["created_at"]),
        rotated_at=from_db_time_opt(row["rotated_at"]),
    )


class CredentialRepo:
    """Reads and writes ``vdxp_credentials`` through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(self, organ_id: str, system_id: str, secret_ciphertext: str) -> Credentials:
        """Store new credentials. Conflict if the agency already has some or the system id is
        taken; MissingReference if the agency does not exist."""
        now = utcnow()
        try:
            await self.tx.execute(
                f"INSERT INTO vdxp_credentials ({_CRED_COLUMNS}) VALUES (?, ?, ?, ?, NULL)",  # noqa: S608
                (organ_id, system_id, secret_ciphertext, to_db_time(now)),
            )
        except Conflict as exc:
            raise Conflict(
                f"agency {organ_id} already has a system id, or system id {system_id} is taken"
            ) from exc
        return Credentials(organ_id, system_id, secret_ciphertext, now, None)

    async def replace_secret(self, organ_id: str, secret_ciphertext: str) -> Credentials | None:
        """Replace an agency's secret (rotation); None when the agency has no credentials."""
        changed = await self.tx.execute(
            "UPDATE vdxp_credentials SET secret_ciphertext = ?, rotated_at = ? WHERE organ_id = ?",
            (secret_ciphertext, to_db_time(utcnow()), organ_id),
        )
        if not changed:
            return None
        return await self.by_organ(organ_id)

    async def all(self) -> list[Credentials]:
        """Every agency's credentials, by organ id."""
        rows = await self.tx.fetchall(
            f"SELECT {_CRED_COLUMNS} FROM vdxp_credentials ORDER BY organ_id"  # noqa: S608
        )
        return [_credentials(r) for r in rows]

    async def replace_ciphertext(self, organ_id: str, old: str, new: str) -> bool:
        """Store the same secret sealed under another key (secrets key rotation): unlike
        :meth:`replace_secret` the secret is unchanged, so ``rotated_at`` is left alone. False
        when the row no longer holds ``old``."""
        changed = await self.tx.execute(
            "UPDATE vdxp_credentials SET secret_ciphertext = ?"
            " WHERE organ_id = ? AND secret_ciphertext = ?",
            (new, organ_id, old),
        )
        return changed > 0

    async def by_system_id(self, system_id: str) -> Credentials | None:
        """The credentials with this system id, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_CRED_COLUMNS} FROM vdxp_credentials WHERE system_id = ?",  # noqa: S608
            (system_id,),
        )
        return None if row is None else _credentials(row)

    async def by_organ(self, organ_id: str) -> Credentials | None:
        """The credentials of this agency, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_CRED_COLUMNS} FROM vdxp_credentials WHERE organ_id = ?",  # noqa: S608
            (organ_id,),
        )
        return None if row is None else _credentials(row)


class TransportRepo:
    """Reads and writes ``vdxp_transport`` (updateStatus of pulled deliveries)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def set(self, delivery_id: str, state: str) -> TransportState:
        """Record the latest transport state of a delivery (insert or replace)."""
        if state not in TRANSPORT_STATES:
            raise ValueError(f"unknown transport state {state!r}")
        now = utcnow()
        await self.tx.execute(
            "INSERT INTO vdxp_transport (delivery_id, state, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (delivery_id) DO UPDATE SET state = excluded.state,"
            " updated_at = excluded.updated_at",
            (delivery_id, state, to_db_time(now)),
        )
        return TransportState(delivery_id, state, now)

    async def states(self, delivery_ids: Iterable[str]) -> dict[str, TransportState]:
        """The recorded transport state of each of these deliveries that has one."""
        wanted = sorted(set(delivery_ids))
        found: dict[str, TransportState] = {}
        for i in range(0, len(wanted), _IN_CHUNK):
            part = wanted[i : i + _IN_CHUNK]
            marks = ", ".join("?" for _ in part)
            rows = await self.tx.fetchall(
                f"SELECT delivery_id, state, updated_at FROM vdxp_transport WHERE delivery_id IN ({marks})",  # noqa: S608,E501 (only ? marks)
                part,
            )
            for r in rows:
                found[r["delivery_id"]] = TransportState(
                    r["delivery_id"], r["state"], from_db_time(r["updated_at"])
                )
        return found


def _registration(row: sqlite3.Row) -> Registration:
    return Registration(
        organ_id=row["organ_id"],
        registered_by=row["registered_by"],
        registered_at=from_db_time(row["registered_at"]),
        deleted_at=from_db_time_opt(row["deleted_at"]),
    )


class RegistrationRepo:
    """Reads and writes ``vdxp_registrations`` (units added with registerAgency)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(self, organ_id: str, registered_by: str) -> Registration:
        """Record that ``registered_by`` registered ``organ_id``. Conflict if already recorded."""
        now = utcnow()
        await self.tx.execute(
            "INSERT INTO vdxp_registrations (organ_id, registered_by, registered_at, deleted_at)"
            " VALUES (?, ?, ?, NULL)",
            (organ_id, registered_by, to_db_time(now)),
        )
        return Registration(organ_id, registered_by, now, None)

    async def get(self, organ_id: str) -> Registration | None:
        """The registration of this unit, or None (it was added by an administrator)."""
        row = await self.tx.fetchone(
            "SELECT organ_id, registered_by, registered_at, deleted_at"
            " FROM vdxp_registrations WHERE organ_id = ?",
            (organ_id,),
        )
        return None if row is None else _registration(row)

    async def mark_deleted(self, organ_id: str) -> bool:
        """Mark a registered unit deleted (idempotent); False when it was never registered."""
        changed = await self.tx.execute(
            "UPDATE vdxp_registrations SET deleted_at = COALESCE(deleted_at, ?) WHERE organ_id = ?",
            (to_db_time(utcnow()), organ_id),
        )
        return changed > 0

    async def restore(self, organ_id: str) -> bool:
        """Clear the deleted mark of a registered unit (registered again); False if unknown."""
        changed = await self.tx.execute(
            "UPDATE vdxp_registrations SET deleted_at = NULL WHERE organ_id = ?", (organ_id,)
        )
        return changed > 0

    async def deleted(self) -> dict[str, datetime]:
        """Every unit marked deleted, with the time it was."""
        rows = await self.tx.fetchall(
            "SELECT organ_id, deleted_at FROM vdxp_registrations WHERE deleted_at IS NOT NULL"
        )
        return {r["organ_id"]: from_db_time(r["deleted_at"]) for r in rows}
