"""Moving a dossier through its lifecycle, and reading it as one of its parties.

A move is checked against the state machine (server/dossiers/lifecycle.py), then written with
its event and audit entry in one transaction. Status 5 (supplement requested) pauses the clock;
the 5→4 move resumes it and pushes the due date by the working time the pause took.

**Late without an apology** (QĐ 766/QĐ-TTg, KPI 2.1, shared/ONE-STOP.md §5.1): a dossier is on
time when it ends by its due date, the end being the first move to 9 (done), or to 10 when it
never was 9; the supplement pauses are already in the due date (the 5→4 move put them there).
The move that ends it after that date marks it ``late`` for the KPIs, as an apology does, for
good (:func:`finishes_late`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from server.calendar.clock import WorkingClock
from server.dossiers.errors import DossierNotFound, InvalidDossier
from server.dossiers.intake import StagedFile
from server.dossiers.lifecycle import DONE, LABELS, PROCESSING, RETURNED, SUPPLEMENT, check_move
from server.runtime.audit import record
from server.runtime.staging import settle_objects, store_objects
from storage.db import Database, Tx
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.dossiers import DossierRepo, DossierRow

MAX_NOTE = 2000
# Moves that may bring files: the supplement (5→4), the result (→9) and the result as returned
# (→10, e.g. the signed receipt of the applicant). Stored like the intake's, with their event.
WITH_FILES = frozenset({PROCESSING, DONE, RETURNED})


@dataclass(frozen=True)
class Move:
    """A move asked for by ``actor`` (an organ id)."""

    actor: str
    code: str
    status: int
    note: str = ""
    at: datetime | None = None  # when it happened, if recorded afterwards; default now
    files: Sequence[StagedFile] = ()


def visible(dossier: DossierRow | None, organ_id: str) -> DossierRow:
    """The dossier if ``organ_id`` received it or must process it; else not found."""
    if dossier is None or organ_id not in (dossier.receiving_unit, dossier.agency):
        raise DossierNotFound("No such dossier among this agency's.")
    return dossier


async def dossier_of(tx: Tx, code: str, organ_id: str) -> DossierRow:
    """The dossier with this code, as one of its parties sees it."""
    return visible(await DossierRepo(tx).get(code), organ_id)


def finishes_late(from_status: int | None, to_status: int, at: datetime, due_at: datetime) -> bool:
    """Whether the move from ``from_status`` to ``to_status`` at ``at`` ends the dossier after
    ``due_at`` (its due date with the supplement pauses in it): the move to 9, or to 10 from
    anything but 9 (a result returned without a recorded 9), later than the due date. A
    refusal, withdrawal or stop is no late result; a move after the end (9→10) is not the end."""
    ends = to_status == DONE or (to_status == RETURNED and from_status != DONE)
    return ends and at > due_at


def check_request(move: Move, now: datetime) -> None:
    """The fields of a move: a known status, a short note, a time not in the future."""
    if isinstance(move.status, bool) or move.status not in LABELS:
        raise InvalidDossier("status", "must be a status code from 1 to 10")
    if len(move.note) > MAX_NOTE:
        raise InvalidDossier("note", f"must be at most {MAX_NOTE} characters")
    if move.at is not None and move.at > now:
        raise InvalidDossier("at", "is in the future")
    if move.files and move.status not in WITH_FILES:
        raise InvalidDossier(move.files[0].component, "files come only with a move to 4, 9 or 10")


async def advance(
    database: Database, objects: ObjectStore, clock: WorkingClock, move: Move
) -> DossierRow:
    """Make the move; the dossier as it is after it."""
    now = utcnow()
    check_request(move, now)
    async with database.reader() as tx:
        before = await dossier_of(tx, move.code, move.actor)
        last = await DossierRepo(tx).last_event_at(move.code)
    _check(before, move, now, last)
    await store_objects(database, objects, move.files)
    async with database.transaction() as tx:
        repo = DossierRepo(tx)
        current = visible(await repo.get(move.code), move.actor)
        _check(current, move, now, await repo.last_event_at(move.code))
        at = move.at or now
        due_at, paused_at = current.due_at, current.paused_at
        paused = None
        if move.status == SUPPLEMENT:
            paused_at = at
        elif current.status == SUPPLEMENT and current.paused_at is not None:
            paused = clock.working_time_between(current.paused_at, at)
            due_at = clock.add_working_time(current.due_at, paused)
            paused_at = None
        late = finishes_late(current.status, move.status, at, due_at)
        event = await repo.add_event(
            current.code, move.actor, at, current.status, move.status, move.note, due_at=due_at
        )
        await repo.move(current.code, move.status, due_at, paused_at, now, late=late)
        await repo.add_files(current.code, [f.row(event) for f in move.files], now)
        await settle_objects(tx, move.files)
        details: dict[str, object] = {
            "from": current.status,
            "to": move.status,
            "note": move.note,
            "at": at.isoformat(),
        }
        if paused is not None:
            details["paused_seconds"] = int(paused.total_seconds())
            details["due_at"] = due_at.isoformat()
        if late and not current.late:
            details["late"] = True  # marked late now: done after its due date
        if move.files:
            details["files"] = [f.sha256 for f in move.files]
        await record(tx, move.actor, "dossier.move", [current.code], details)
        after = await repo.get(current.code)
    assert after is not None
    return after


def _check(dossier: DossierRow, move: Move, now: datetime, last: datetime | None) -> None:
    check_move(
        dossier.status,
        move.status,
        receiving=move.actor == dossier.receiving_unit,
        competent=move.actor == dossier.agency,
    )
    at = move.at or now
    if last is not None and at < last:
        raise InvalidDossier("at", "is before the dossier's latest event")
