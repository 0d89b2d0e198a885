"""One-stop dossiers (migration 0014): the dossier rows, their files and their events.

The domain (server/dossiers/) decides; this module only reads and writes rows through a Tx.
:meth:`DossierRepo.next_seq` must be called in the write transaction that inserts the dossier:
SQLite's single writer (``BEGIN IMMEDIATE``, held across processes) makes "one more than the
highest number of the day" a gapless, repeat-free sequence.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Tx
from storage.dialects import json_field
from storage.ids import from_db_time, from_db_time_opt, to_db_time

FINAL_STATUSES = (3, 7, 8, 9, 10)  # never overdue (server/dossiers/lifecycle.py)
# As SQL literals: the partial indexes of migration 0018 name the same list.
_FINAL = ", ".join(str(s) for s in FINAL_STATUSES)

_COLUMNS = (
    "code, receiving_unit, day, seq, procedure, agency, channel, status, applicant,"
    " received_at, due_at, paused_at, idempotency_key, created_at, updated_at, late"
)

_MARKS = ", ".join("?" * 16)


@dataclass(frozen=True)
class TransferredIn:
    """What marks a dossier of another unit transferred to this agency for one of its steps
    (its ``dossier_transfers`` 'in' row): the dossier's status and due date are the step's."""

    id: int  # the transfer's id at this axis
    step: int
    origin: str  # who sent it (the originating unit)
    package: str  # the edXML package it came in (documents.id): its attachments are the files


@dataclass(frozen=True)
class DossierRow:
    """One stored dossier (or, with ``transfer``, one transferred to this agency)."""

    code: str
    receiving_unit: str
    day: str
    seq: int
    procedure: str
    agency: str
    channel: int
    status: int
    applicant: dict[str, Any]
    received_at: datetime
    due_at: datetime
    paused_at: datetime | None
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime
    late: bool = False  # an apology was issued: counted late in the KPIs, for good
    transfer: TransferredIn | None = None  # transferred in: not this axis's own dossier


@dataclass(frozen=True)
class DossierFileRow:
    """One file of a dossier; ``event`` is the move that brought it (None: the intake)."""

    component: str
    name: str
    content_type: str
    sha256: str
    size: int
    event: int | None = None
    attachment: int | None = None  # of a dossier transferred in: its index in the package


@dataclass(frozen=True)
class DossierEventRow:
    """One move of a dossier (``from_status`` None: its intake)."""

    id: int
    actor: str
    at: datetime
    from_status: int | None
    to_status: int
    note: str
    due_at: datetime | None = None  # the dossier's due date after it (None: not recorded)


def _dossier(row: sqlite3.Row, transfer: TransferredIn | None = None) -> DossierRow:
    return DossierRow(
        code=row["code"],
        receiving_unit=row["receiving_unit"],
        day=row["day"],
        seq=row["seq"],
        procedure=row["procedure"],
        agency=row["agency"],
        channel=row["channel"],
        status=row["status"],
        applicant=json.loads(row["applicant"]),
        received_at=from_db_time(row["received_at"]),
        due_at=from_db_time(row["due_at"]),
        paused_at=from_db_time_opt(row["paused_at"]),
        idempotency_key=row["idempotency_key"],
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
        late=bool(row["late"]),
        transfer=transfer,
    )


def _listed(row: sqlite3.Row) -> DossierRow:
    """A row of :func:`transferred_query`: the dossier, marked as transferred in."""
    mark = TransferredIn(
        row["transfer_id"], row["transfer_step"], row["transfer_origin"], row["transfer_package"]
    )
    return _dossier(row, mark)


# A dossier transferred to an agency (an 'in' row of dossier_transfers, migration 0019) in the
# shape of a dossier row: its status and due date are the step's, the rest is its ho-so.json.
def _transferred_columns(dialect: str) -> str:
    return (
        f"t.dossier AS code, {json_field(dialect, 't.body', 'receiving_unit')} AS receiving_unit,"
        " '' AS day, 0 AS seq, t.procedure AS procedure, t.agency AS agency,"
        f" {json_field(dialect, 't.body', 'channel', integer=True)} AS channel,"
        f" t.status AS status, {json_field(dialect, 't.body', 'applicant')} AS applicant,"
        " t.received_at AS received_at,"
        " t.due_at AS due_at, t.paused_at AS paused_at, NULL AS idempotency_key,"
        " t.created_at AS created_at, t.updated_at AS updated_at, 0 AS late"
    )


_TRANSFER_MARK = (
    "t.id AS transfer_id, t.step AS transfer_step, t.origin AS transfer_origin,"
    " t.package AS transfer_package"
)


@dataclass(frozen=True)
class ApologyRow:
    """An apology and new appointment of an overdue dossier (migration 0017)."""

    id: int
    event: int
    actor: str
    at: datetime
    old_due_at: datetime
    new_due_at: datetime
    reason: str


@dataclass(frozen=True)
class DossierFilter:
    """What a list of dossiers keeps: an agency's (received or to process) and the options."""

    agency: str
    status: int | None = None
    procedure: str | None = None
    overdue_at: datetime | None = None  # only dossiers overdue at this moment
    competent: str | None = None  # only dossiers this agency must process (``agency=``)
    received_after: datetime | None = None  # only dossiers received at or after this moment


class DossierRepo:
    """Reads and writes the dossier tables through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def next_seq(self, unit: str, day: str) -> int:
        """The next number of ``unit``'s day ``day`` (YYMMDD): 1 for the first. Intakes of the
        same unit and day wait for each other from here to COMMIT, so two nodes never take
        the same number and a refused intake leaves no gap."""
        await self.tx.serialize(f"lienthong:dossier-seq:{unit}:{day}")
        row = await self.tx.fetchone(
            "SELECT COALESCE(MAX(seq), 0) FROM dossiers WHERE receiving_unit = ? AND day = ?",
            (unit, day),
        )
        return int(row[0] if row else 0) + 1

    async def insert(self, dossier: DossierRow) -> None:
        """Store a new dossier row."""
        d = dossier
        await self.tx.execute(
            f"INSERT INTO dossiers ({_COLUMNS}) VALUES ({_MARKS})",  # noqa: S608
            (
                d.code,
                d.receiving_unit,
                d.day,
                d.seq,
                d.procedure,
                d.agency,
                d.channel,
                d.status,
                json.dumps(d.applicant, ensure_ascii=False, sort_keys=True),
                to_db_time(d.received_at),
                to_db_time(d.due_at),
                None if d.paused_at is None else to_db_time(d.paused_at),
                d.idempotency_key,
                to_db_time(d.created_at),
                to_db_time(d.updated_at),
                int(d.late),
            ),
        )

    async def get(self, code: str) -> DossierRow | None:
        """The dossier with this code, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM dossiers WHERE code = ?",  # noqa: S608
            (code,),
        )
        return None if row is None else _dossier(row)

    async def public_record(self, code: str) -> tuple[DossierRow, str | None] | None:
        """The dossier with this code and its procedure's name (None if not in the catalogue),
        in one read (the public lookup); None when there is no such dossier."""
        columns = ", ".join(f"d.{c.strip()}" for c in _COLUMNS.split(","))
        row = await self.tx.fetchone(
            f"SELECT {columns}, {json_field(self.tx.dialect, 'p.body', 'name')}"  # noqa: S608
            " AS procedure_name"
            " FROM dossiers d LEFT JOIN procedures p ON p.code = d.procedure WHERE d.code = ?",
            (code,),
        )
        return None if row is None else (_dossier(row), row["procedure_name"])

    async def by_idempotency_key(self, unit: str, key: str) -> DossierRow | None:
        """The dossier ``unit`` received with this ``Idempotency-Key``, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM dossiers"  # noqa: S608
            " WHERE receiving_unit = ? AND idempotency_key = ?",
            (unit, key),
        )
        return None if row is None else _dossier(row)

    async def move(
        self,
        code: str,
        status: int,
        due_at: datetime,
        paused_at: datetime | None,
        now: datetime,
        *,
        late: bool = False,
    ) -> None:
        """Set a dossier's status, due date and pause mark; ``late`` marks it late (a mark
        never cleared: False leaves it as it is)."""
        await self.tx.execute(
            "UPDATE dossiers SET status = ?, due_at = ?, paused_at = ?, updated_at = ?,"
            " late = CASE WHEN late = 1 THEN 1 ELSE ? END WHERE code = ?",
            (
                status,
                to_db_time(due_at),
                None if paused_at is None else to_db_time(paused_at),
                to_db_time(now),
                int(late),
                code,
            ),
        )

    async def add_event(
        self,
        code: str,
        actor: str,
        at: datetime,
        from_status: int | None,
        to_status: int,
        note: str,
        *,
        due_at: datetime | None = None,
    ) -> int:
        """Append an event (``due_at``: the dossier's due date after it); its id."""
        row = await self.tx.fetchone(
            "INSERT INTO dossier_events"
            " (dossier, actor, at, from_status, to_status, note, due_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                code,
                actor,
                to_db_time(at),
                from_status,
                to_status,
                note,
                None if due_at is None else to_db_time(due_at),
            ),
        )
        return int(row[0]) if row else 0

    async def add_apology(
        self,
        code: str,
        event: int,
        actor: str,
        at: datetime,
        old_due_at: datetime,
        new_due_at: datetime,
        reason: str,
    ) -> None:
        """Record an apology, move the due date to ``new_due_at`` and mark the dossier late."""
        await self.tx.execute(
            "INSERT INTO dossier_apologies"
            " (dossier, event, actor, at, old_due_at, new_due_at, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                code,
                event,
                actor,
                to_db_time(at),
                to_db_time(old_due_at),
                to_db_time(new_due_at),
                reason,
            ),
        )
        await self.tx.execute(
            "UPDATE dossiers SET due_at = ?, late = 1, updated_at = ? WHERE code = ?",
            (to_db_time(new_due_at), to_db_time(at), code),
        )

    async def apologies(self, code: str) -> list[ApologyRow]:
        """The dossier's apologies, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT id, event, actor, at, old_due_at, new_due_at, reason FROM dossier_apologies"
            " WHERE dossier = ? ORDER BY id",
            (code,),
        )
        return [
            ApologyRow(
                r[0], r[1], r[2], from_db_time(r[3]), from_db_time(r[4]), from_db_time(r[5]), r[6]
            )
            for r in rows
        ]

    async def add_files(self, code: str, files: Sequence[DossierFileRow], now: datetime) -> None:
        """Name the stored objects of these files as the dossier's."""
        await self.tx.executemany(
            "INSERT INTO dossier_files"
            " (dossier, component, name, content_type, sha256, size, event, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    code,
                    f.component,
                    f.name,
                    f.content_type,
                    f.sha256,
                    f.size,
                    f.event,
                    to_db_time(now),
                )
                for f in files
            ],
        )

    async def files(self, code: str) -> list[DossierFileRow]:
        """The dossier's files, in the order they were stored."""
        rows = await self.tx.fetchall(
            "SELECT component, name, content_type, sha256, size, event FROM dossier_files"
            " WHERE dossier = ? ORDER BY rowid",
            (code,),
        )
        return [DossierFileRow(*tuple(r)) for r in rows]

    async def events(self, code: str) -> list[DossierEventRow]:
        """The dossier's events, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT id, actor, at, from_status, to_status, note, due_at FROM dossier_events"
            " WHERE dossier = ? ORDER BY id",
            (code,),
        )
        return [
            DossierEventRow(
                r[0], r[1], from_db_time(r[2]), r[3], r[4], r[5], from_db_time_opt(r[6])
            )
            for r in rows
        ]

    async def last_event_at(self, code: str) -> datetime | None:
        """When the dossier's latest event happened (its ``at``), or None."""
        row = await self.tx.fetchone(
            "SELECT MAX(at) FROM dossier_events WHERE dossier = ?", (code,)
        )
        return None if row is None or row[0] is None else from_db_time(row[0])

    async def page(self, where: DossierFilter, after: str | None, limit: int) -> list[DossierRow]:
        """Up to ``limit`` dossiers the filter keeps with a code after ``after``, in code order.

        The agency's own dossiers are the UNION of its two sides (received; to process), each
        walked in code order on its own index, so that SQLite merges them and stops at the page
        instead of reading every dossier of the agency and sorting them (migration 0018). The
        final statuses are literals, so the overdue list can use the partial indexes of the open
        dossiers. The dossiers transferred to it from another unit (marked) are a second query
        in code order on their own index (migration 0019), merged here: the UNION's plan stays
        as it was, and an agency with no transfers pays one empty index search."""
        own_sql, own_params = page_query(where, after, limit)
        moved_sql, moved_params = transferred_query(where, after, limit, self.tx.dialect)
        own = [_dossier(r) for r in await self.tx.fetchall(own_sql, own_params)]
        moved = [_listed(r) for r in await self.tx.fetchall(moved_sql, moved_params)]
        if not moved:
            return own
        return list(heapq.merge(own, moved, key=lambda d: d.code))[:limit]


def page_query(where: DossierFilter, after: str | None, limit: int) -> tuple[str, list[Any]]:
    """The SQL of the agency's own dossiers in :meth:`DossierRepo.page`, and its parameters
    (also explained by bench/dossier_bench.py)."""
    own, params = _conditions(where, after, "")
    sql = (
        f"SELECT {_COLUMNS} FROM dossiers WHERE receiving_unit = ? AND {own}"  # noqa: S608
        f" UNION SELECT {_COLUMNS} FROM dossiers WHERE agency = ? AND {own}"
        " ORDER BY code LIMIT ?"
    )
    return sql, [where.agency, *params, where.agency, *params, limit]


def transferred_query(
    where: DossierFilter, after: str | None, limit: int, dialect: str
) -> tuple[str, list[Any]]:
    """The SQL (of `dialect`) of the dossiers transferred to the agency in
    :meth:`DossierRepo.page`, and its parameters: one row per dossier, its latest step at this
    agency, and none when the agency is a party of the dossier itself (both on this axis: it
    sees the dossier)."""
    moved, params = _conditions(where, after, "t.")
    sql = (
        f"SELECT {_transferred_columns(dialect)}, {_TRANSFER_MARK}"  # noqa: S608
        " FROM dossier_transfers t"
        f" WHERE t.direction = 'in' AND t.agency = ? AND {moved}"
        " AND NOT EXISTS (SELECT 1 FROM dossier_transfers l WHERE l.direction = 'in'"
        " AND l.agency = t.agency AND l.dossier = t.dossier AND l.id > t.id)"
        " AND NOT EXISTS (SELECT 1 FROM dossiers d WHERE d.code = t.dossier"
        " AND (d.receiving_unit = t.agency OR d.agency = t.agency))"
        " ORDER BY t.dossier LIMIT ?"
    )
    return sql, [where.agency, *params, limit]


def _conditions(where: DossierFilter, after: str | None, t: str) -> tuple[str, list[Any]]:
    """The filter's conditions on one side of the list; ``t`` prefixes the columns of a
    transfer ('t.'), whose code column is ``dossier``."""
    code = "t.dossier" if t else "code"
    conditions = [f"{code} > ?"]
    params: list[Any] = [after or ""]
    if where.status is not None:
        conditions.append(f"{t}status = ?")
        params.append(where.status)
    if where.procedure is not None:
        conditions.append(f"{t}procedure = ?")
        params.append(where.procedure)
    if where.competent is not None:
        conditions.append(f"{t}agency = ?")
        params.append(where.competent)
    if where.received_after is not None:
        conditions.append(f"{t}received_at >= ?")
        params.append(to_db_time(where.received_after))
    if where.overdue_at is not None:
        conditions.append(f"{t}due_at < ? AND {t}paused_at IS NULL AND {t}status NOT IN ({_FINAL})")
        params.append(to_db_time(where.overdue_at))
    return " AND ".join(conditions), params
