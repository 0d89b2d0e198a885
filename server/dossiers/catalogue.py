"""Storing procedures in the catalogue: agencies checked, each change audited, all or nothing.

:func:`store_procedures` runs inside the caller's transaction, so a whole file lands or nothing
of it does: the first bad procedure raises :class:`InvalidProcedure` (located in its file) and
the caller's transaction rolls back, audit entries included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from server.dossiers.errors import InvalidProcedure, ProcedureNotFound
from server.dossiers.procedures import Procedure, procedure_from_mapping, procedure_json
from server.runtime.audit import record
from storage.db import Tx
from storage.repos.agencies import AgencyRepo
from storage.repos.procedures import ProcedureRepo, ProcedureRow


@dataclass(frozen=True)
class Located:
    """A procedure and where it came from (``row 3`` of a CSV file, ``procedure 2``...)."""

    where: str
    procedure: Procedure


@dataclass
class StoreReport:
    """What storing procedures did, by national code."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """E.g. ``2 added, 1 updated, 0 unchanged``."""
        counts = (len(self.added), len(self.updated), len(self.unchanged))
        return "{} added, {} updated, {} unchanged".format(*counts)


def to_row(procedure: Procedure) -> ProcedureRow:
    """The stored form of a procedure."""
    return ProcedureRow(procedure.code, procedure.agency, procedure_json(procedure))


def from_row(row: ProcedureRow) -> Procedure:
    """The procedure a stored row holds."""
    return procedure_from_mapping(row.body)


async def store_procedures(
    tx: Tx, entries: Sequence[Located], actor: str, source: str
) -> StoreReport:
    """Add or update each procedure in ``tx``, recording ``procedure.add`` or
    ``procedure.update`` in the audit chain for each change (``source``: the file, or ``cli``).

    Refuses (:class:`InvalidProcedure`, naming the row and field) a code given twice and an
    agency this axis does not know; the caller's transaction then stores nothing.
    """
    seen: dict[str, str] = {}
    for entry in entries:
        code = entry.procedure.code
        if code in seen:
            raise InvalidProcedure("code", f"{code} is already given in {seen[code]}", entry.where)
        seen[code] = entry.where
    named = {a for e in entries for a in e.procedure.agencies}
    known = await AgencyRepo(tx).known(named)
    for entry in entries:
        _check_agencies(entry, known)
    report = StoreReport()
    repo = ProcedureRepo(tx)
    for entry in entries:
        procedure = entry.procedure
        outcome = await repo.save(to_row(procedure))
        getattr(report, outcome).append(procedure.code)
        if outcome != "unchanged":
            action = "procedure.add" if outcome == "added" else "procedure.update"
            details = {"source": source, "agency": procedure.agency, "days": procedure.days}
            await record(tx, actor, action, [procedure.code], details)
    return report


async def get_procedure(tx: Tx, code: str) -> Procedure:
    """The procedure with this national code; :class:`ProcedureNotFound` if there is none."""
    row = await ProcedureRepo(tx).get(code)
    if row is None:
        raise ProcedureNotFound(f"No procedure with code {code!r} in the catalogue.")
    return from_row(row)


def _check_agencies(entry: Located, known: set[str]) -> None:
    procedure = entry.procedure
    if procedure.agency not in known:
        raise InvalidProcedure(
            "agency", f"{procedure.agency} is not an agency of this axis", entry.where
        )
    for number, step in enumerate(procedure.steps, 1):
        if step.agency not in known:
            raise InvalidProcedure(
                "steps", f"item {number}: {step.agency} is not an agency of this axis", entry.where
            )
