"""The outbox of packages and status messages carried over the axis (migration 0038; the
dossier transfers' status messages moved in by 0039): written in the transaction of the move
they carry, marked when the exchange has accepted them (server/exchange/carried.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.ids import to_db_time


@dataclass(frozen=True)
class OutboxRow:
    """A message not accepted by the exchange yet: the same bytes at every attempt."""

    id: int
    topic: str
    kind: str  # 'document' (an edXML package) or 'status' (a status message)
    actor: str
    message: bytes
    attempts: int


class OutboxRepo:
    """Reads and writes ``carried_outbox`` through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def put(self, topic: str, kind: str, actor: str, message: bytes, at: datetime) -> int:
        """Keep a message to send, due at once; its id."""
        moment = to_db_time(at)
        row = await self.tx.fetchone(
            "INSERT INTO carried_outbox (topic, kind, actor, message, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (topic, kind, actor, message, moment, moment),
        )
        return int(row[0]) if row else 0

    async def waiting(self, topic: str) -> list[OutboxRow]:
        """The messages of ``topic`` not accepted yet, in the order they were put."""
        rows = await self.tx.fetchall(
            "SELECT id, topic, kind, actor, message, attempts FROM carried_outbox"
            " WHERE topic = ? AND package IS NULL ORDER BY id",
            (topic,),
        )
        return [OutboxRow(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

    async def due_topics(self, prefix: str, now: datetime) -> list[str]:
        """The topics starting with ``prefix`` whose first waiting message is due at ``now``."""
        rows = await self.tx.fetchall(
            "SELECT o.topic FROM carried_outbox o WHERE o.package IS NULL"
            " AND o.next_attempt_at <= ? AND substr(o.topic, 1, ?) = ? AND NOT EXISTS"
            " (SELECT 1 FROM carried_outbox p WHERE p.topic = o.topic AND p.package IS NULL"
            " AND p.id < o.id) ORDER BY o.id",
            (to_db_time(now), len(prefix), prefix),
        )
        return [str(r[0]) for r in rows]

    async def accepted(self, outbox_id: int, package: str, at: datetime) -> None:
        """The exchange accepted the message as its package ``package``."""
        await self.tx.execute(
            "UPDATE carried_outbox SET package = ?, sent_at = ?, attempts = attempts + 1,"
            " last_error = NULL WHERE id = ?",
            (package, to_db_time(at), outbox_id),
        )

    async def postponed(self, outbox_id: int, until: datetime, error: str) -> None:
        """An attempt failed: count it, try again at ``until``."""
        await self.tx.execute(
            "UPDATE carried_outbox SET attempts = attempts + 1, next_attempt_at = ?,"
            " last_error = ? WHERE id = ?",
            (to_db_time(until), error, outbox_id),
        )

    async def package_of(self, outbox_id: int) -> str | None:
        """The package the exchange made of the message, once accepted."""
        row = await self.tx.fetchone(
            "SELECT package FROM carried_outbox WHERE id = ?", (outbox_id,)
        )
        return None if row is None or row[0] is None else str(row[0])
