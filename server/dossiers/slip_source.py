"""The data of a dossier's slip (server/dossiers/slips.py) read from the stored dossier.

:func:`slip_data` fills a :class:`SlipData` of one kind for one of the dossier's parties: the
receiving unit and its parent agency (the agencies table), the procedure (the catalogue), the
components received (the dossier's files), and the turn of the dossier the kind records:

- ``receipt``: the acceptance (the event that moved it to 2, at intake or later);
- ``supplement``: the latest supplement request (move to 5); each line of its note is an item
  to add, a line starting ``Ghi chú:`` is the note;
- ``refusal``: the refusal (move to 3), its note the reason;
- ``apology``: the latest apology (missed date, new date, reason).

A kind whose turn never happened is :class:`SlipNotApplicable`. Everything is read afresh on
each call: a slip shows the dossier as it is.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.dossiers.errors import SlipNotApplicable
from server.dossiers.lifecycle import ACCEPTED, REFUSED, SUPPLEMENT
from server.dossiers.moves import dossier_of
from server.dossiers.slips import KINDS, SlipComponent, SlipData, SlipKind
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.dossiers import DossierEventRow, DossierFileRow, DossierRepo, DossierRow
from storage.repos.procedures import ProcedureRepo

_MARKER = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s*")
_NOTE = re.compile(r"^\s*ghi chú\s*:\s*", re.IGNORECASE)
_PLACE = re.compile(r"\b(?:tỉnh|thành phố|tp\.?)\s+(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class SlipRequest:
    """A slip asked for by ``organ_id``; ``lookup_url`` is the dossier's public page."""

    organ_id: str
    code: str
    kind: str
    lookup_url: str
    officer_name: str = ""


def place_of(*names: str) -> str:
    """The place of the date line: the province or city a name holds (``UBND tỉnh Nghệ An``
    → ``Nghệ An``), else the first name."""
    for name in names:
        found = _PLACE.search(name)
        if found:
            return found.group(1).strip()
    return next((n for n in names if n), "")


def supplement_items(note: str) -> tuple[tuple[str, ...], str]:
    """The items to add (one a line, list markers dropped) and the note of a supplement request."""
    items: list[str] = []
    notes: list[str] = []
    for line in note.splitlines():
        if not line.strip():
            continue
        if _NOTE.match(line):
            notes.append(_NOTE.sub("", line).strip())
        else:
            items.append(_MARKER.sub("", line).strip())
    return tuple(i for i in items if i), " ".join(n for n in notes if n)


def _components(
    procedure: dict[str, Any], files: list[DossierFileRow], until: int | None
) -> tuple[SlipComponent, ...]:
    """The components received (files of the intake, and of moves up to event ``until``), one
    row per component in the procedure's order, each file counted as one copy."""
    names = {c.get("code"): c.get("name", c.get("code")) for c in procedure.get("components", [])}
    kept = [f for f in files if f.event is None or (until is None or f.event <= until)]
    counts = Counter(f.component for f in kept)
    order = [code for code in names if code in counts]
    order += sorted(code for code in counts if code not in names)
    return tuple(SlipComponent(str(names.get(c, c)), copies=counts[c]) for c in order)


def _last(events: list[DossierEventRow], status: int) -> DossierEventRow | None:
    moves = [e for e in events if e.to_status == status and e.from_status != status]
    return moves[-1] if moves else None


async def slip_data(database: Database, request: SlipRequest) -> SlipData:
    """The slip ``request.kind`` of the dossier, as it stands now."""
    if request.kind not in KINDS:
        raise ValueError(f"unknown slip kind {request.kind!r}")
    kind: SlipKind = request.kind
    async with database.reader() as tx:
        dossier = await dossier_of(tx, request.code, request.organ_id)
        repo = DossierRepo(tx)
        events = await repo.events(dossier.code)
        files = await repo.files(dossier.code)
        apologies = await repo.apologies(dossier.code)
        agencies = AgencyRepo(tx)
        unit = await agencies.get(dossier.receiving_unit)
        parent = await agencies.get(unit.parent_id) if unit is not None and unit.parent_id else None
        procedure_row = await ProcedureRepo(tx).get(dossier.procedure)
    procedure = procedure_row.body if procedure_row is not None else {}
    unit_name = unit.name if unit is not None else dossier.receiving_unit
    parent_name = parent.name if parent is not None else ""
    fields: dict[str, Any] = {}
    until: int | None = None
    if kind == "receipt":
        event = _last(events, ACCEPTED)
        if event is None:
            raise SlipNotApplicable("The dossier has not been accepted (status 2).", kind=kind)
        fields = {"issued_at": event.at, "due_at": dossier.due_at}
        until = event.id
    elif kind == "refusal":
        event = _last(events, REFUSED)
        if event is None:
            raise SlipNotApplicable("The dossier was not refused (status 3).", kind=kind)
        if not event.note.strip():
            raise SlipNotApplicable("The refusal recorded no reason (empty note).", kind=kind)
        fields = {"issued_at": event.at, "due_at": None, "reason": event.note.strip()}
        until = event.id
    elif kind == "supplement":
        event = _last(events, SUPPLEMENT)
        if event is None:
            raise SlipNotApplicable("No supplement was requested (status 5).", kind=kind)
        missing, note = supplement_items(event.note)
        if not missing:
            raise SlipNotApplicable("The supplement request named nothing to add.", kind=kind)
        fields = {"issued_at": event.at, "due_at": dossier.due_at, "missing": missing}
        fields["note"] = note
        until = event.id
    else:
        if not apologies:
            raise SlipNotApplicable("No apology was issued for this dossier.", kind=kind)
        apology = apologies[-1]
        fields = {
            "issued_at": apology.at,
            "due_at": apology.old_due_at,
            "new_due_at": apology.new_due_at,
            "reason": apology.reason,
        }
    return _data(kind, dossier, procedure, files, until, unit_name, parent_name, request, fields)


def _data(
    kind: SlipKind,
    dossier: DossierRow,
    procedure: dict[str, Any],
    files: list[DossierFileRow],
    until: int | None,
    unit_name: str,
    parent_name: str,
    request: SlipRequest,
    fields: dict[str, Any],
) -> SlipData:
    applicant = dossier.applicant
    received_at: datetime = dossier.received_at
    return SlipData(
        kind=kind,
        unit_name=unit_name,
        parent_name=parent_name,
        dossier_code=dossier.code,
        procedure_code=dossier.procedure,
        procedure_name=str(procedure.get("name", dossier.procedure)),
        applicant_name=str(applicant.get("name", "")),
        applicant_address=str(applicant.get("address") or ""),
        applicant_phone=str(applicant.get("phone") or ""),
        components=_components(procedure, files, until),
        received_at=received_at,
        place=place_of(unit_name, parent_name),
        officer_name=request.officer_name,
        lookup_url=request.lookup_url,
        **fields,
    )
