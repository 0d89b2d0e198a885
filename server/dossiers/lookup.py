"""The public lookup of a dossier (tra cứu hồ sơ, the ``/tra-cuu`` page and its API): what anyone
holding a dossier's code may read, shaped here so that nothing else leaks.

It says the procedure, the status and its label, the dates (received, due, returned) and the
steps (each status and when; no note, no officer), and the applicant's name masked
(:func:`mask_name`). Never the ID number, phone, e-mail, address or files.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.dossiers.errors import DossierNotFound, InvalidDossierCode, TooManyLookups
from server.dossiers.lifecycle import LABELS, RETURNED
from server.runtime.names import mask_name
from server.runtime.ratelimit import TokenBuckets
from storage.db import Tx
from storage.repos.dossiers import DossierEventRow, DossierRepo, DossierRow

MAX_CODE = 80
# <receiving unit's organ id>-YYMMDD-NNNN (server/dossiers/intake.py dossier_code)
_CODE = re.compile(r"^[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*-\d{6}-\d{4,6}$")


def check_code(text: str) -> str:
    """The dossier code in ``text`` (spaces around it dropped), or InvalidDossierCode."""
    code = text.strip()
    if len(code) > MAX_CODE or not _CODE.match(code):
        raise InvalidDossierCode(
            "Not a dossier code: expected <organ id>-YYMMDD-NNNN, e.g. 000.00.01.H40-260105-0007."
        )
    return code


def _time(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(zone).isoformat()


def public_view(
    dossier: DossierRow,
    procedure_name: str | None,
    events: list[DossierEventRow],
    zone: ZoneInfo,
) -> dict[str, Any]:
    """The public answer for a dossier: built field by field (nothing copied whole)."""
    returned = [e.at for e in events if e.to_status == RETURNED]
    return {
        "code": dossier.code,
        "procedure": {"code": dossier.procedure, "name": procedure_name or dossier.procedure},
        "status": dossier.status,
        "status_label": LABELS[dossier.status],
        "applicant_name": mask_name(str(dossier.applicant.get("name", ""))),
        "received_at": _time(dossier.received_at, zone),
        "due_at": _time(dossier.due_at, zone),
        "returned_at": _time(returned[-1] if returned else None, zone),
        "steps": [
            {"status": e.to_status, "status_label": LABELS[e.to_status], "at": _time(e.at, zone)}
            for e in events
        ],
    }


async def look_up(tx: Tx, text: str, zone: ZoneInfo) -> dict[str, Any]:
    """The public view of the dossier whose code is ``text``: 400 if not a code, 404 if none."""
    code = check_code(text)
    repo = DossierRepo(tx)
    found = await repo.public_record(code)
    if found is None:
        raise DossierNotFound("No dossier has this code.")
    dossier, procedure_name = found
    return public_view(dossier, procedure_name, await repo.events(code), zone)


class LookupLimiter:
    """The budget of public lookups per client address (``[dossiers] lookup_per_minute``),
    divided among the ``workers`` server processes: each keeps its own share."""

    def __init__(self, per_minute: int, workers: int = 1) -> None:
        self.per_minute = per_minute
        self.workers = max(1, workers)
        share = max(1.0, per_minute / self.workers)
        self.buckets = TokenBuckets(share, burst=share)

    def check(self, address: str, now: float | None = None) -> None:
        """Take one lookup of ``address``'s budget, or TooManyLookups with the wait."""
        wait = self.buckets.take(address, now)
        if wait:
            raise TooManyLookups(wait)
