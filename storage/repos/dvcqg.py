"""The DVCQG sync marks (migration 0015): which dossiers and events the adapter accepted, the
back-off of failing dossiers and the dead-letter list. The domain (server/dossiers/dvcqg.py)
decides; this module reads and writes rows through a Tx."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.ids import from_db_time_opt, to_db_time


@dataclass(frozen=True)
class SyncState:
    """The sync state of one dossier."""

    dossier: str
    synced_version: str | None
    synced_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    dead_at: datetime | None


_STATE = "dossier, synced_version, synced_at, attempts, next_attempt_at, last_error, dead_at"


def _state(row: Sequence[object]) -> SyncState:
    return SyncState(
        dossier=str(row[0]),
        synced_version=None if row[1] is None else str(row[1]),
        synced_at=from_db_time_opt(None if row[2] is None else str(row[2])),
        attempts=int(str(row[3])),
        next_attempt_at=from_db_time_opt(None if row[4] is None else str(row[4])),
        last_error=str(row[5]),
        dead_at=from_db_time_opt(None if row[6] is None else str(row[6])),
    )


class DvcqgRepo:
    """Reads and writes the sync marks through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Codes of up to ``limit`` dossiers to push: never accepted, or changed since, and not
        dead nor waiting for their back-off; least recently changed first."""
        rows = await self.tx.fetchall(
            "SELECT d.code FROM dossiers d LEFT JOIN dvcqg_sync s ON s.dossier = d.code"
            " WHERE s.dead_at IS NULL"
            " AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= ?)"
            " AND (s.synced_version IS NULL OR s.synced_version <> d.updated_at)"
            " ORDER BY d.updated_at, d.code LIMIT ?",
            (to_db_time(now), limit),
        )
        return [str(r[0]) for r in rows]

    async def state(self, code: str) -> SyncState | None:
        """The dossier's sync state, or None when the sync never tried it."""
        row = await self.tx.fetchone(
            f"SELECT {_STATE} FROM dvcqg_sync WHERE dossier = ?",  # noqa: S608
            (code,),
        )
        return None if row is None else _state(tuple(row))

    async def synced_events(self, code: str) -> set[int]:
        """Ids of the dossier's events the adapter accepted."""
        rows = await self.tx.fetchall(
            "SELECT event FROM dvcqg_synced_events WHERE dossier = ?", (code,)
        )
        return {int(r[0]) for r in rows}

    async def mark_synced(
        self, code: str, version: datetime, events: Sequence[int], now: datetime
    ) -> None:
        """The adapter accepted the dossier as of ``version`` (its updated_at) and ``events``."""
        await self.tx.execute(
            "INSERT INTO dvcqg_sync (dossier, synced_version, synced_at, attempts,"
            " next_attempt_at, last_error, dead_at) VALUES (?, ?, ?, 0, NULL, '', NULL)"
            " ON CONFLICT (dossier) DO UPDATE SET synced_version = excluded.synced_version,"
            " synced_at = excluded.synced_at, attempts = 0, next_attempt_at = NULL,"
            " last_error = '', dead_at = NULL",
            (code, to_db_time(version), to_db_time(now)),
        )
        await self.tx.executemany(
            "INSERT INTO dvcqg_synced_events (event, dossier, synced_at)"
            " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [(event, code, to_db_time(now)) for event in events],
        )

    async def mark_failed(
        self, code: str, error: str, next_attempt_at: datetime, dead_at: datetime | None
    ) -> int:
        """Count one more failure; the number of failures since the last success."""
        await self.tx.execute(
            "INSERT INTO dvcqg_sync (dossier, attempts, next_attempt_at, last_error, dead_at)"
            " VALUES (?, 1, ?, ?, ?)"
            " ON CONFLICT (dossier) DO UPDATE SET attempts = attempts + 1,"
            " next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error,"
            " dead_at = excluded.dead_at",
            (
                code,
                to_db_time(next_attempt_at),
                error,
                None if dead_at is None else to_db_time(dead_at),
            ),
        )
        state = await self.state(code)
        return 0 if state is None else state.attempts

    async def dead(self) -> list[SyncState]:
        """The dead-letter list: dossiers given up after too many failures, oldest first."""
        rows = await self.tx.fetchall(
            f"SELECT {_STATE} FROM dvcqg_sync WHERE dead_at IS NOT NULL"  # noqa: S608
            " ORDER BY dead_at, dossier"
        )
        return [_state(tuple(r)) for r in rows]

    async def requeue(self, code: str) -> bool:
        """Take a dossier off the dead-letter list, to be pushed at the next pass; False if it
        was not on it."""
        row = await self.tx.fetchone(
            "SELECT 1 FROM dvcqg_sync WHERE dossier = ? AND dead_at IS NOT NULL", (code,)
        )
        if row is None:
            return False
        await self.tx.execute(
            "UPDATE dvcqg_sync SET dead_at = NULL, attempts = 0, next_attempt_at = NULL"
            " WHERE dossier = ?",
            (code,),
        )
        return True

    async def changed_since(self, since: datetime) -> list[str]:
        """Codes of the dossiers changed (or received) at or after ``since``, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT code FROM dossiers WHERE updated_at >= ? ORDER BY updated_at, code",
            (to_db_time(since),),
        )
        return [str(r[0]) for r in rows]
