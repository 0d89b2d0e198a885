"""The procedure catalogue of one-stop dossiers (thủ tục hành chính), keyed by national code.

The repository stores what the domain (server/dossiers/procedures.py) hands it: the code, the
competent agency and the procedure's JSON form (``body``), read back whole.
:meth:`ProcedureRepo.save` inserts or updates and says which it did, so that importing the same
file twice changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from storage.db import Tx
from storage.ids import from_db_time, to_db_time, utcnow

Saved = Literal["added", "updated", "unchanged"]


@dataclass(frozen=True)
class ProcedureRow:
    """One stored procedure: its code, competent agency and JSON form; times when stored."""

    code: str
    agency: str
    body: dict[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _row(row: sqlite3.Row) -> ProcedureRow:
    return ProcedureRow(
        row["code"],
        row["agency"],
        json.loads(row["body"]),
        from_db_time(row["created_at"]),
        from_db_time(row["updated_at"]),
    )


def _body(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class ProcedureRepo:
    """Reads and writes the procedures table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def get(self, code: str) -> ProcedureRow | None:
        """The procedure with this national code, or None."""
        row = await self.tx.fetchone(
            "SELECT code, agency, body, created_at, updated_at FROM procedures WHERE code = ?",
            (code,),
        )
        return None if row is None else _row(row)

    async def save(self, procedure: ProcedureRow) -> Saved:
        """Insert the procedure, or update the stored one with its code when it differs."""
        now = to_db_time(utcnow())
        known = await self.get(procedure.code)
        if known is not None and (known.agency, known.body) == (procedure.agency, procedure.body):
            return "unchanged"
        if known is None:
            await self.tx.execute(
                "INSERT INTO procedures (code, agency, body, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (procedure.code, procedure.agency, _body(procedure.body), now, now),
            )
            return "added"
        await self.tx.execute(
            "UPDATE procedures SET agency = ?, body = ?, updated_at = ? WHERE code = ?",
            (procedure.agency, _body(procedure.body), now, procedure.code),
        )
        return "updated"

    async def page(self, after: str | None, limit: int) -> list[ProcedureRow]:
        """Up to ``limit`` procedures with a code after ``after``, in code order."""
        rows = await self.tx.fetchall(
            "SELECT code, agency, body, created_at, updated_at FROM procedures"
            " WHERE code > ? ORDER BY code LIMIT ?",
            (after or "", limit),
        )
        return [_row(r) for r in rows]

    async def list(self) -> list[ProcedureRow]:
        """Every procedure, in code order."""
        return await self.page(None, 2**62)  # no limit (a negative one is SQLite's alone)
