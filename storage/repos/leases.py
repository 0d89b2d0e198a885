"""The leases of the jobs that run on one node at a time (migration 0043, docs/scaling.md).

A lease is a row per job: who holds it, until when, and its fencing token. ``acquire`` takes a
free (or expired) lease and raises the token by one; ``renew`` pushes the expiry on while the
token is still the holder's; ``release`` ends it early (the row and its token stay: a token never
goes down). ``fence`` is the check every write transaction of a leased job starts with: it
refuses (``LeaseLost``) unless the job's token is still the row's and the lease has not expired,
and it is itself a write of the lease row, so the check and the job's writes commit together:
on SQLite the transaction holds the database's write lock from its start, on PostgreSQL the
UPDATE holds the row's lock until COMMIT, so a take-over waits for the fenced transaction and
never slips in between the check and the commit.

Times are the caller's clock (``now``), stored as fixed-width UTC text (storage/ids.py); nodes
keep their clocks in step (NTP), and a skew only moves when a take-over may start: a write with
a token older than the row's is refused whatever the clocks say.

All SQL here is portable (SQLite and PostgreSQL): ON CONFLICT, no dialect functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.db import Tx
from storage.errors import StorageError
from storage.ids import from_db_time, to_db_time


class LeaseLost(StorageError):
    """A leased job's write was refused: another holder took the lease over (a newer token),
    or the lease expired before it was renewed. Nothing of the transaction is kept."""


@dataclass(frozen=True)
class Lease:
    """A lease as its holder knows it: the job, who holds it and the token it got."""

    job: str
    holder: str
    token: int


@dataclass(frozen=True)
class LeaseRow:
    """A lease as stored: the last holder, its token and times."""

    job: str
    holder: str
    token: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def held_at(self, now: datetime) -> bool:
        """Whether the lease is still held at ``now`` (not expired nor released)."""
        return self.expires_at > now


_SELECT = "SELECT job, holder, token, acquired_at, renewed_at, expires_at FROM job_leases"


class LeaseRepo:
    """Reads and writes ``job_leases`` through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def acquire(self, job: str, holder: str, ttl: timedelta, now: datetime) -> Lease | None:
        """Take the lease of ``job`` for ``ttl`` from ``now`` when it is free, expired or
        ``holder``'s own; the lease with its new token (one more than any before), or None when
        another holder has it."""
        moment, until = to_db_time(now), to_db_time(now + ttl)
        await self.tx.execute(
            "INSERT INTO job_leases (job, holder, token, acquired_at, renewed_at, expires_at)"
            " VALUES (?, ?, 1, ?, ?, ?)"
            " ON CONFLICT (job) DO UPDATE SET holder = excluded.holder,"
            " token = job_leases.token + 1, acquired_at = excluded.acquired_at,"
            " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at"
            " WHERE job_leases.expires_at <= excluded.acquired_at"
            " OR job_leases.holder = excluded.holder",
            (job, holder, moment, moment, until),
        )
        row = await self.tx.fetchone("SELECT holder, token FROM job_leases WHERE job = ?", (job,))
        if row is None or str(row[0]) != holder:
            return None
        return Lease(job, holder, int(row[1]))

    async def renew(self, lease: Lease, ttl: timedelta, now: datetime) -> bool:
        """Hold ``lease`` for ``ttl`` from ``now``; False when its token is no longer the row's
        (another holder took it over: the caller must stop the job)."""
        changed = await self.tx.execute(
            "UPDATE job_leases SET renewed_at = ?, expires_at = ?"
            " WHERE job = ? AND holder = ? AND token = ?",
            (to_db_time(now), to_db_time(now + ttl), lease.job, lease.holder, lease.token),
        )
        return changed == 1

    async def release(self, lease: Lease, now: datetime) -> bool:
        """End ``lease`` at ``now`` (another holder may take it at once); False when it was not
        held any more. The token stays in the row."""
        moment = to_db_time(now)
        changed = await self.tx.execute(
            "UPDATE job_leases SET expires_at = ?"
            " WHERE job = ? AND holder = ? AND token = ? AND expires_at > ?",
            (moment, lease.job, lease.holder, lease.token, moment),
        )
        return changed == 1

    async def fence(self, lease: Lease, now: datetime) -> None:
        """Raise :class:`LeaseLost` unless ``lease`` is still held at ``now`` with its token.

        Call it first in a leased job's write transaction: it writes the lease row (changing
        nothing), which keeps a take-over out until the transaction ends (module docstring).
        """
        changed = await self.tx.execute(
            "UPDATE job_leases SET token = token"
            " WHERE job = ? AND holder = ? AND token = ? AND expires_at > ?",
            (lease.job, lease.holder, lease.token, to_db_time(now)),
        )
        if changed != 1:
            raise LeaseLost(
                f"the lease of job {lease.job!r} (token {lease.token}) is no longer held by"
                f" {lease.holder}: the write was refused"
            )

    async def get(self, job: str) -> LeaseRow | None:
        """The stored lease of ``job``, if it was ever taken."""
        row = await self.tx.fetchone(_SELECT + " WHERE job = ?", (job,))
        return None if row is None else _row(row)

    async def all(self) -> list[LeaseRow]:
        """Every lease ever taken, by job name."""
        rows = await self.tx.fetchall(_SELECT + " ORDER BY job")
        return [_row(r) for r in rows]


def _row(row: Sequence[Any]) -> LeaseRow:
    return LeaseRow(
        str(row[0]),
        str(row[1]),
        int(row[2]),
        from_db_time(str(row[3])),
        from_db_time(str(row[4])),
        from_db_time(str(row[5])),
    )
