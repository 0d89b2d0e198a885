"""Receiving a dossier (tiếp nhận hồ sơ): the checks, its code, its due date, storing it.

Everything is checked before anything is stored: the request's fields (:func:`read_request`),
then the procedure, the agency and the files against the procedure's components. Only then are
the files stored in the object store (each with an intent record first, as the exchange does, so
that the orphan sweep removes the objects of an intake that died half-way), and the dossier row,
its files, its first event and its audit entry are written in one transaction that also
allocates the number of its code: an intake refused at any step takes no number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from server.calendar.clock import WorkingClock
from server.dossiers.catalogue import get_procedure
from server.dossiers.errors import InvalidDossier, ProcedureNotFound
from server.dossiers.lifecycle import ACCEPTED, NEW
from server.dossiers.procedures import Procedure
from server.runtime.audit import record
from server.runtime.contacts import EMAIL, IDEMPOTENCY_KEY, PHONE, PHONE_RULE, phone_digits
from server.runtime.staging import settle_objects, store_objects
from storage.db import Database
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.agencies import AgencyRepo
from storage.repos.dossiers import DossierFileRow, DossierRepo, DossierRow

MAX_BACKDATE = timedelta(days=30)
CHANNELS = {1: "counter", 2: "online", 3: "postal"}
KINDS = ("citizen", "business")

_CITIZEN_ID = re.compile(r"^(\d{9}|\d{12})$")  # CMND (9) or CCCD / personal number (12)
_TAX_CODE = re.compile(r"^\d{10}(-\d{3})?$")  # mã số doanh nghiệp / thuế


@dataclass(frozen=True)
class StagedFile:
    """A received file on disk, not yet in the object store."""

    component: str
    name: str
    content_type: str
    path: Path
    sha256: str
    size: int

    def row(self, event: int | None = None) -> DossierFileRow:
        """The stored form once the object is in the store."""
        return DossierFileRow(
            self.component, self.name, self.content_type, self.sha256, self.size, event
        )


@dataclass(frozen=True)
class IntakeRequest:
    """The checked ``dossier`` part of an intake."""

    procedure: str
    applicant: dict[str, str]
    channel: int
    agency: str | None
    received_at: datetime | None


def _text(data: Mapping[str, Any], key: str, field: str, *, required: bool, limit: int) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InvalidDossier(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidDossier(field, "must be a string")
    value = " ".join(value.split())
    if len(value) > limit:
        raise InvalidDossier(field, f"must be at most {limit} characters")
    if required and not value:
        raise InvalidDossier(field, "is required")
    return value


def read_applicant(data: Any) -> dict[str, str]:
    """The applicant: name, ID number (9 or 12 digits for a citizen, a 10 or 10-3 digit tax
    code for a business), phone, optional e-mail and address, kind."""
    if not isinstance(data, Mapping):
        raise InvalidDossier("applicant", "must be an object")
    unknown = set(data) - {"name", "id_number", "phone", "email", "address", "kind"}
    if unknown:
        raise InvalidDossier(f"applicant.{sorted(unknown)[0]}", "is not a known field")
    kind = data.get("kind", "citizen")
    if kind not in KINDS:
        raise InvalidDossier("applicant.kind", "must be citizen or business")
    name = _text(data, "name", "applicant.name", required=True, limit=200)
    id_number = _text(data, "id_number", "applicant.id_number", required=True, limit=20)
    pattern, what = (
        (_CITIZEN_ID, "9 or 12 digits") if kind == "citizen" else (_TAX_CODE, "a tax code")
    )
    if not pattern.match(id_number):
        raise InvalidDossier("applicant.id_number", f"must be {what}, not {id_number!r}")
    phone = phone_digits(_text(data, "phone", "applicant.phone", required=True, limit=30))
    if not PHONE.match(phone):
        raise InvalidDossier("applicant.phone", PHONE_RULE)
    email = _text(data, "email", "applicant.email", required=False, limit=254)
    if email and not EMAIL.match(email):
        raise InvalidDossier("applicant.email", f"{email!r} is not an e-mail address")
    address = _text(data, "address", "applicant.address", required=False, limit=500)
    return {
        "name": name,
        "id_number": id_number,
        "phone": phone,
        "email": email,
        "address": address,
        "kind": kind,
    }


def read_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time with its offset."""
    if not isinstance(value, str):
        raise InvalidDossier(field, "must be an ISO 8601 time with its offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidDossier(field, f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidDossier(field, "must carry its offset (e.g. +07:00)")
    return moment


def read_request(data: Any, now: datetime) -> IntakeRequest:
    """The ``dossier`` JSON part, checked field by field (:class:`InvalidDossier`)."""
    if not isinstance(data, Mapping):
        raise InvalidDossier("dossier", "must be a JSON object")
    unknown = set(data) - {"procedure", "applicant", "channel", "agency", "received_at"}
    if unknown:
        raise InvalidDossier(sorted(unknown)[0], "is not a known field")
    procedure = data.get("procedure")
    if not isinstance(procedure, str) or not procedure:
        raise InvalidDossier("procedure", "is required (the procedure's national code)")
    applicant = read_applicant(data.get("applicant"))
    channel = data.get("channel", 1)
    if isinstance(channel, bool) or channel not in CHANNELS:
        raise InvalidDossier("channel", "must be 1 (counter), 2 (online) or 3 (postal)")
    agency = data.get("agency")
    if agency is not None and (not isinstance(agency, str) or not agency):
        raise InvalidDossier("agency", "must be an organ id")
    received_at = None
    if data.get("received_at") is not None:
        received_at = read_time(data["received_at"], "received_at")
        if received_at > now:
            raise InvalidDossier("received_at", "is in the future")
        if received_at < now - MAX_BACKDATE:
            raise InvalidDossier("received_at", "is more than 30 days ago")
    return IntakeRequest(procedure, applicant, channel, agency, received_at)


def check_files(procedure: Procedure, files: Sequence[StagedFile]) -> None:
    """Every file part names a component of the procedure; every required one is there."""
    codes = {c.code for c in procedure.components}
    for staged in files:
        if staged.component not in codes:
            raise InvalidDossier(
                staged.component, f"is not a component of procedure {procedure.code}"
            )
    given = {f.component for f in files}
    for component in procedure.components:
        if component.required and component.code not in given:
            raise InvalidDossier(
                component.code, f"the required component {component.name!r} is missing"
            )


def due_date(clock: WorkingClock, procedure: Procedure, received_at: datetime) -> datetime:
    """The appointment date of a dossier received then (working or calendar days)."""
    if procedure.calendar_days:
        return clock.due_at_calendar_days(received_at, procedure.days)
    return clock.due_at(received_at, procedure.days)


def dossier_code(unit: str, day: str, seq: int) -> str:
    """``<unit>-YYMMDD-NNNN``."""
    return f"{unit}-{day}-{seq:04d}"


@dataclass(frozen=True)
class Intake:
    """Everything one intake needs besides the database and the stores."""

    unit: str
    request: IntakeRequest
    files: Sequence[StagedFile]
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Received:
    """What an intake answered: the dossier, and whether it was created now."""

    dossier: DossierRow
    created: bool


def check_key(key: str | None) -> str | None:
    """An ``Idempotency-Key``: 1–200 visible ASCII characters."""
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise InvalidDossier("Idempotency-Key", "must be 1 to 200 visible ASCII characters")
    return key


async def earlier(database: Database, unit: str, key: str | None) -> DossierRow | None:
    """The dossier an earlier intake with this key made, if any."""
    if key is None:
        return None
    async with database.reader() as tx:
        return await DossierRepo(tx).by_idempotency_key(unit, key)


async def _procedure_and_agency(database: Database, intake: Intake) -> tuple[Procedure, str]:
    async with database.reader() as tx:
        try:
            procedure = await get_procedure(tx, intake.request.procedure)
        except ProcedureNotFound:
            raise InvalidDossier(
                "procedure", f"{intake.request.procedure!r} is not in the procedure catalogue"
            ) from None
        agency = intake.request.agency or procedure.agency
        if agency not in await AgencyRepo(tx).known([agency]):
            raise InvalidDossier("agency", f"{agency} is not an agency of this axis")
    return procedure, agency


async def receive(
    database: Database,
    objects: ObjectStore,
    clock: WorkingClock,
    zone: ZoneInfo,
    intake: Intake,
) -> Received:
    """Check and store a dossier; :class:`InvalidDossier` (nothing stored) when it breaks a
    rule. A retried intake with the same ``Idempotency-Key`` answers the first dossier."""
    known = await earlier(database, intake.unit, intake.idempotency_key)
    if known is not None:
        return Received(known, created=False)
    procedure, agency = await _procedure_and_agency(database, intake)
    check_files(procedure, intake.files)
    now = utcnow()
    received_at = intake.request.received_at or now
    due_at = due_date(clock, procedure, received_at)
    day = received_at.astimezone(zone).strftime("%y%m%d")
    await store_objects(database, objects, intake.files)
    async with database.transaction() as tx:
        repo = DossierRepo(tx)
        if intake.idempotency_key is not None:
            known = await repo.by_idempotency_key(intake.unit, intake.idempotency_key)
            if known is not None:  # a concurrent retry won: its intent records stay for
                return Received(known, created=False)  # the sweep (these bytes may be unnamed)
        seq = await repo.next_seq(intake.unit, day)
        status = ACCEPTED if intake.request.channel == 1 else NEW
        dossier = DossierRow(
            code=dossier_code(intake.unit, day, seq),
            receiving_unit=intake.unit,
            day=day,
            seq=seq,
            procedure=procedure.code,
            agency=agency,
            channel=intake.request.channel,
            status=status,
            applicant=intake.request.applicant,
            received_at=received_at,
            due_at=due_at,
            paused_at=None,
            idempotency_key=intake.idempotency_key,
            created_at=now,
            updated_at=now,
        )
        await repo.insert(dossier)
        await repo.add_event(
            dossier.code, intake.unit, received_at, None, status, "", due_at=dossier.due_at
        )
        await repo.add_files(dossier.code, [f.row() for f in intake.files], now)
        await settle_objects(tx, intake.files)
        await record(
            tx,
            intake.unit,
            "dossier.intake",
            [dossier.code],
            {
                "procedure": procedure.code,
                "agency": agency,
                "channel": intake.request.channel,
                "status": status,
                "due_at": due_at.isoformat(),
                "files": [f.sha256 for f in intake.files],
            },
        )
    return Received(dossier, created=True)
