"""The apology and new appointment of an overdue dossier (phiếu xin lỗi và hẹn lại ngày trả
kết quả, Mẫu số 04).

Either party of an overdue dossier (docs/dossiers.md, "Reading dossiers") may issue it: the
apology is an event (from = to = the dossier's status, the reason as note), an apology row
(the date missed, the new one, the reason) and an audit entry ``dossier.apology``, written in
one transaction that moves the due date to the new one and marks the dossier late for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.dossiers.errors import DossierNotOverdue, InvalidDossier
from server.dossiers.intake import read_time
from server.dossiers.lifecycle import FINAL
from server.dossiers.moves import MAX_NOTE, visible
from server.runtime.audit import record
from storage.db import Database
from storage.ids import utcnow
from storage.repos.dossiers import DossierRepo, DossierRow


@dataclass(frozen=True)
class Apology:
    """An apology asked for by ``actor`` (an organ id)."""

    actor: str
    code: str
    new_due_at: datetime
    reason: str


def is_overdue(dossier: DossierRow, now: datetime) -> bool:
    """Past its due date, not paused for a supplement, not in a final status."""
    return dossier.status not in FINAL and dossier.paused_at is None and dossier.due_at < now


def read_apology(actor: str, code: str, data: Any) -> Apology:
    """The JSON body ``{new_due_at, reason}``, checked field by field (:class:`InvalidDossier`)."""
    if not isinstance(data, dict):
        raise InvalidDossier("apology", "must be a JSON object")
    unknown = set(data) - {"new_due_at", "reason"}
    if unknown:
        raise InvalidDossier(sorted(unknown)[0], "is not a known field")
    if data.get("new_due_at") is None:
        raise InvalidDossier("new_due_at", "is required")
    new_due_at = read_time(data["new_due_at"], "new_due_at")
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidDossier("reason", "is required (the reason of the delay)")
    if len(reason) > MAX_NOTE:
        raise InvalidDossier("reason", f"must be at most {MAX_NOTE} characters")
    return Apology(actor, code, new_due_at, reason.strip())


def _check(dossier: DossierRow, apology: Apology, now: datetime) -> None:
    if not is_overdue(dossier, now):
        raise DossierNotOverdue(
            "The dossier is not overdue: an apology is for a dossier past its due date, "
            "not waiting for a supplement and not in a final status.",
            due_at=dossier.due_at.isoformat(),
        )
    if apology.new_due_at <= dossier.due_at:
        raise InvalidDossier("new_due_at", "must be later than the dossier's due date")
    if apology.new_due_at <= now:
        raise InvalidDossier("new_due_at", "is in the past")


async def apologize(database: Database, apology: Apology) -> DossierRow:
    """Issue the apology; the dossier as it is after it."""
    now = utcnow()
    async with database.transaction() as tx:
        repo = DossierRepo(tx)
        dossier = visible(await repo.get(apology.code), apology.actor)
        _check(dossier, apology, now)
        at = now  # never before the latest event: no move is dated in the future
        event = await repo.add_event(
            dossier.code, apology.actor, at, dossier.status, dossier.status, apology.reason,
            due_at=apology.new_due_at,
        )  # fmt: skip
        await repo.add_apology(
            dossier.code, event, apology.actor, at, dossier.due_at, apology.new_due_at,
            apology.reason,
        )  # fmt: skip
        details = {
            "event": event,
            "status": dossier.status,
            "old_due_at": dossier.due_at.isoformat(),
            "new_due_at": apology.new_due_at.isoformat(),
            "reason": apology.reason,
        }
        await record(tx, apology.actor, "dossier.apology", [dossier.code], details)
        after = await repo.get(dossier.code)
    assert after is not None
    return after
