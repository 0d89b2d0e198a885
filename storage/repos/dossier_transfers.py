"""Dossier transfers across agencies (migration 0016): both ends of a step sent over the axis.

The domain (server/dossiers/transfers.py) decides; this module only reads and writes rows.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from storage.db import Tx
from storage.ids import from_db_time, from_db_time_opt, to_db_time
from storage.repos.dossiers import DossierEventRow

Direction = Literal["out", "in"]

_COLUMNS = (
    "id, direction, dossier, origin, agency, step, package, document_id, status, due_at,"
    " paused_at, body, created_at, updated_at, procedure, received_at"
)


@dataclass(frozen=True)
class TransferRow:
    """One end of a transfer (``id`` 0 before it is inserted)."""

    id: int
    direction: Direction
    dossier: str
    origin: str
    agency: str
    step: int
    package: str
    document_id: str
    status: int
    due_at: datetime
    paused_at: datetime | None
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    # The dossier's procedure and reception, as the lists filter them (migration 0019).
    procedure: str = ""
    received_at: datetime | None = None


# One move the step's agency made on its copy: the same shape as a dossier's own event.
TransferEventRow = DossierEventRow


@dataclass(frozen=True)
class ArrivalRow:
    """A report of the step's agency as it arrived at the originating axis."""

    seq: int  # the move's number on the transfer, from 1
    status: int
    at: datetime
    note: str
    package: str  # the status package it came in


def _row(row: sqlite3.Row) -> TransferRow:
    return TransferRow(
        id=row["id"],
        direction=row["direction"],
        dossier=row["dossier"],
        origin=row["origin"],
        agency=row["agency"],
        step=row["step"],
        package=row["package"],
        document_id=row["document_id"],
        status=row["status"],
        due_at=from_db_time(row["due_at"]),
        paused_at=from_db_time_opt(row["paused_at"]),
        body=json.loads(row["body"]),
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
        procedure=row["procedure"],
        received_at=from_db_time(row["received_at"]) if row["received_at"] else None,
    )


class TransferRepo:
    """Reads and writes the transfer tables through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def insert(self, t: TransferRow) -> int:
        """Store one end of a transfer; its id (an existing row's, for the same package).

        An incoming one is inserted under its agency's lock (held until COMMIT on PostgreSQL):
        its id, drawn from the sequence at the INSERT, is then above every incoming transfer
        of the agency committed before, and :meth:`incoming`'s ``after`` cursor never skips
        one committed later (docs/operations.md, "The database")."""
        if t.direction == "in":
            await self.tx.serialize(f"lienthong:dossier-transfers-in:{t.agency}")
        await self.tx.execute(
            "INSERT INTO dossier_transfers (direction, dossier, origin, agency, step, package,"
            " document_id, status, due_at, paused_at, body, created_at, updated_at, procedure,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (direction, package) DO NOTHING",
            (
                t.direction,
                t.dossier,
                t.origin,
                t.agency,
                t.step,
                t.package,
                t.document_id,
                t.status,
                to_db_time(t.due_at),
                None if t.paused_at is None else to_db_time(t.paused_at),
                json.dumps(t.body, ensure_ascii=False, sort_keys=True),
                to_db_time(t.created_at),
                to_db_time(t.updated_at),
                t.procedure,
                "" if t.received_at is None else to_db_time(t.received_at),
            ),
        )
        row = await self.tx.fetchone(
            "SELECT id FROM dossier_transfers WHERE direction = ? AND package = ?",
            (t.direction, t.package),
        )
        return int(row[0]) if row else 0

    async def get(self, transfer_id: int) -> TransferRow | None:
        """One end by id, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM dossier_transfers WHERE id = ?",  # noqa: S608
            (transfer_id,),
        )
        return None if row is None else _row(row)

    async def by_package(self, direction: Direction, package: str) -> TransferRow | None:
        """The end of a transfer whose package (documents.id) this is, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM dossier_transfers"  # noqa: S608
            " WHERE direction = ? AND package = ?",
            (direction, package),
        )
        return None if row is None else _row(row)

    async def of_dossier(self, code: str, direction: Direction = "out") -> list[TransferRow]:
        """A dossier's transfers at this end, oldest first."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM dossier_transfers"  # noqa: S608
            " WHERE dossier = ? AND direction = ? ORDER BY id",
            (code, direction),
        )
        return [_row(r) for r in rows]

    async def copy(self, agency: str, code: str) -> TransferRow | None:
        """The latest 'in' end of the dossier ``code`` at ``agency`` (its copy there), or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM dossier_transfers"  # noqa: S608
            " WHERE direction = 'in' AND agency = ? AND dossier = ? ORDER BY id DESC LIMIT 1",
            (agency, code),
        )
        return None if row is None else _row(row)

    async def incoming(self, agency: str, after: int, limit: int) -> list[TransferRow]:
        """The dossiers transferred to ``agency``, by id after ``after``."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM dossier_transfers"  # noqa: S608
            " WHERE direction = 'in' AND agency = ? AND id > ? ORDER BY id LIMIT ?",
            (agency, after, limit),
        )
        return [_row(r) for r in rows]

    async def move(
        self,
        transfer_id: int,
        status: int,
        due_at: datetime,
        paused_at: datetime | None,
        now: datetime,
    ) -> None:
        """Set one end's status, due date and pause mark."""
        await self.tx.execute(
            "UPDATE dossier_transfers SET status = ?, due_at = ?, paused_at = ?, updated_at = ?"
            " WHERE id = ?",
            (
                status,
                to_db_time(due_at),
                None if paused_at is None else to_db_time(paused_at),
                to_db_time(now),
                transfer_id,
            ),
        )

    async def add_event(
        self,
        transfer_id: int,
        actor: str,
        at: datetime,
        from_status: int | None,
        to_status: int,
        note: str,
    ) -> None:
        """Append a move of the step's agency."""
        await self.tx.execute(
            "INSERT INTO dossier_transfer_events (transfer, actor, at, from_status, to_status,"
            " note) VALUES (?, ?, ?, ?, ?, ?)",
            (transfer_id, actor, to_db_time(at), from_status, to_status, note),
        )

    async def events(self, transfer_id: int) -> list[TransferEventRow]:
        """The moves of one 'in' end, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT id, actor, at, from_status, to_status, note FROM dossier_transfer_events"
            " WHERE transfer = ? ORDER BY id",
            (transfer_id,),
        )
        return [TransferEventRow(r[0], r[1], from_db_time(r[2]), r[3], r[4], r[5]) for r in rows]

    # -- arrivals: the step's agency's reports at the originating axis, applied in order
    # (migration 0020; they are sent through carried_outbox, migration 0039) --

    async def add_arrival(self, transfer_id: int, arrival: ArrivalRow) -> None:
        """Keep a report that arrived (a repeat of the same number is ignored)."""
        await self.tx.execute(
            "INSERT INTO dossier_transfer_arrivals (transfer, seq, status, at, note, package)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (transfer, seq) DO NOTHING",
            (
                transfer_id,
                arrival.seq,
                arrival.status,
                to_db_time(arrival.at),
                arrival.note,
                arrival.package,
            ),
        )

    async def next_arrival(self, transfer_id: int) -> ArrivalRow | None:
        """The report that comes next on the 'out' end ``transfer_id``, if it has arrived."""
        row = await self.tx.fetchone(
            "SELECT a.seq, a.status, a.at, a.note, a.package FROM dossier_transfer_arrivals a"
            " JOIN dossier_transfers t ON t.id = a.transfer"
            " WHERE a.transfer = ? AND a.seq = t.applied + 1",
            (transfer_id,),
        )
        return None if row is None else ArrivalRow(row[0], row[1], from_db_time(row[2]), *row[3:])

    async def mark_applied(self, transfer_id: int, seq: int) -> None:
        """The report number ``seq`` is an event of the dossier now."""
        await self.tx.execute(
            "UPDATE dossier_transfers SET applied = ? WHERE id = ?", (seq, transfer_id)
        )

    async def unapplied_statuses(self) -> list[tuple[str, str, str, str]]:
        """Statuses from the step's agency about this axis's open 'out' transfers that are not
        among their arrivals (their hook did not run): (the transfer's package, the sender,
        the description, the status package), oldest first."""
        rows = await self.tx.fetchall(
            "SELECT DISTINCT t.package, s.sender, s.description, s.package_id, s.received_at"
            " FROM dossier_transfers t JOIN statuses s ON s.document_id = t.package"
            " AND s.sender = t.agency"
            " WHERE t.direction = 'out' AND t.status NOT IN (3, 7, 8, 9, 10)"
            " AND s.package_id IS NOT NULL AND s.description LIKE '[ho-so %'"
            " AND NOT EXISTS (SELECT 1 FROM dossier_transfer_arrivals a"
            " WHERE a.transfer = t.id AND a.package = s.package_id)"
            " ORDER BY s.received_at"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def unrecorded_packages(self, since_id: str, subject_prefix: str) -> list[str]:
        """Document packages from ``since_id`` on (ids grow with time) whose subject starts
        with ``subject_prefix`` and that have no 'in' end here: a transfer whose arrival hook
        did not run, or one this axis only forwarded."""
        rows = await self.tx.fetchall(
            "SELECT d.id FROM documents d WHERE d.id >= ? AND d.kind = 'document'"
            " AND substr(d.subject, 1, ?) = ? AND NOT EXISTS (SELECT 1 FROM dossier_transfers t"
            " WHERE t.direction = 'in' AND t.package = d.id) ORDER BY d.id",
            (since_id, len(subject_prefix), subject_prefix),
        )
        return [str(r[0]) for r in rows]
