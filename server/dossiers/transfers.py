"""One-stop dossiers across agencies (một cửa liên thông): a step at another agency over the axis.

**Out** (the originating unit's axis): :func:`transfer` sends a dossier to the agency of one of
its procedure's steps as an edXML package (``edxml.serialize``): the dossier as JSON in the
attachment ``ho-so.json``, its files as the other attachments, ``ApplicationType`` ``MCDT_LT``
and a subject and code saying it is a one-stop dossier. The package goes through
:meth:`Exchange.accept_document` as if the unit had sent it, so it is routed like any document:
to an agency of this axis, or forwarded to another axis.

**In** (the axis of the step's agency, this one or another): :meth:`Transfers.on_accepted` is
an arrival hook (``Exchange.on_accepted``). Every axis a package passes through accepts it with
``accept_document`` and calls its hooks, so the one that hosts the recipient records the
dossier there (``dossier_transfers``, direction ``in``), whichever axis it came from. The
agency then works it like its own dossier (:func:`dossier_view`, the lists in
``DossierRepo.page``, :meth:`Transfers.advance_copy`).

**Back**: the agency's moves on its copy (:meth:`Transfers.advance_transfer`, the lifecycle's
moves of a competent agency) are edXML status messages about the package
(``Exchange.accept_status``), routed back to the originating unit like any status. Their
``Description`` starts with ``[ho-so N TIME #K]`` (the DVCQG status, the moment, the move's
number on the transfer). Each is written with its move and sent after it, retried until the
exchange takes it, oldest first per transfer (:attr:`Transfers.outbox`, the one
:class:`~server.exchange.carried.Outbox` of records carried over the axis, topic
``dossier:report:<transfer id>``); at the originating axis
:meth:`Transfers.on_status` (``Exchange.on_status``) keeps each arrival and makes events of the
dossier in the order of K, with the supplement pause applied as for local moves. A hook that
never ran (a process stopped after the commit) is made up by :meth:`Transfers.catch_up` and
:meth:`Transfers.catch_up_arrivals` (:meth:`Transfers.retry_reports` runs them with the
outbox's rounds).

Each step's due date follows the procedure's split of days (:func:`step_due_dates`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from edxml import Attachment, Code, StatusCode
from server.calendar.clock import WorkingClock
from server.dossiers.catalogue import get_procedure
from server.dossiers.errors import DossierNotFound, InvalidDossier, TransferRefused
from server.dossiers.lifecycle import (
    ACCEPTED,
    DONE,
    FINANCIAL,
    LABELS,
    PROCESSING,
    REFUSED,
    STOPPED,
    SUPPLEMENT,
    check_move,
)
from server.dossiers.moves import MAX_NOTE, Move, dossier_of, finishes_late
from server.dossiers.procedures import Procedure, procedure_json
from server.exchange import Exchange
from server.exchange.carried import Carried, Outbox, Reply, carried_json, send_carried
from server.exchange.meta import document_meta
from server.exchange.results import AcceptedDocument, AcceptedStatus
from server.runtime.audit import record
from storage.db import Database, Tx
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import DocumentRepo
from storage.repos.dossier_transfers import (
    ArrivalRow,
    TransferEventRow,
    TransferRepo,
    TransferRow,
)
from storage.repos.dossiers import (
    ApologyRow,
    DossierEventRow,
    DossierFileRow,
    DossierRepo,
    DossierRow,
    TransferredIn,
)

log = logging.getLogger("lienthong.dossiers")

DOSSIER_FILE = "ho-so.json"  # the attachment that carries the dossier
APPLICATION_TYPE = "MCDT_LT"  # one-stop (một cửa) liên thông
CODE_NOTATION = "HSMC-LT"
SUBJECT = "Hồ sơ một cửa liên thông"
# The Description of a status message about a transfer, with the move's number on the
# transfer: "[ho-so 9 2026-03-09T10:00:00+07:00 #3] note" (without "#K": applied as it comes).
_MARK = re.compile(r"^\[ho-so (\d{1,2}) ([^\]\s]+)(?: #(\d{1,9}))?\] ?(.*)$", re.DOTALL)

# How a DVCQG status of the step's agency reads as an edXML status code.
EDXML_CODES = {
    ACCEPTED: StatusCode.ACCEPTED,
    REFUSED: StatusCode.REJECTED,
    PROCESSING: StatusCode.PROCESSING,
    SUPPLEMENT: StatusCode.PROCESSING,
    FINANCIAL: StatusCode.PROCESSING,
    STOPPED: StatusCode.REJECTED,
    DONE: StatusCode.COMPLETED,
}
TRANSFERABLE = frozenset({ACCEPTED, PROCESSING})
# The outbox topics of the status messages about an 'in' end's moves: one per transfer, sent in
# the order of its moves (server/exchange/carried.py).
REPORTS = "dossier:"


def report_topic(transfer_id: int) -> str:
    """The outbox topic of the status messages about the moves of the 'in' end ``transfer_id``."""
    return f"{REPORTS}report:{transfer_id}"


@dataclass(frozen=True)
class StepDue:
    """One step of a procedure with its due date for one dossier."""

    number: int
    agency: str
    days: int
    due_at: datetime


def step_due_dates(clock: WorkingClock, procedure: Procedure, dossier: DossierRow) -> list[StepDue]:
    """Each step's due date: the end of its share of the days, counted from receipt (working
    or calendar days as the procedure says), pushed by the dossier's supplement pauses."""
    out: list[StepDue] = []
    total = 0

    def due(days: int) -> datetime:
        if procedure.calendar_days:
            return clock.due_at_calendar_days(dossier.received_at, days)
        return clock.due_at(dossier.received_at, days)

    full = due(procedure.days)
    pushed = clock.working_time_between(full, dossier.due_at) if dossier.due_at > full else None
    for number, step in enumerate(procedure.steps, 1):
        total += step.days
        at = due(total)
        if pushed:
            at = clock.add_working_time(at, pushed)
        out.append(StepDue(number, step.agency, step.days, at))
    return out


@dataclass(frozen=True)
class Transfers:
    """What transfers need: the axis's database, object store, exchange and calendar."""

    database: Database
    objects: ObjectStore
    exchange: Exchange
    clock: WorkingClock
    zone: ZoneInfo
    base_delay: float = 2.0  # seconds before the second attempt at a status message, doubled
    max_delay: float = 3600.0  # ... up to this

    @cached_property
    def outbox(self) -> Outbox:
        """The status messages about the moves of the 'in' ends (``dossier:report:<id>``),
        sent after their move committed, in order per transfer, until accepted."""
        return Outbox(self.database, self.exchange, REPORTS, base_delay=self.base_delay,
                      max_delay=self.max_delay)  # fmt: skip

    # -- out ---------------------------------------------------------------------------------

    async def transfer(self, actor: str, code: str, agency: str) -> TransferRow:
        """Send the dossier ``code`` to ``agency``, the agency of one of its procedure's steps."""
        async with self.database.reader() as tx:
            dossier = await dossier_of(tx, code, actor)
            procedure = await get_procedure(tx, dossier.procedure)
            files = await DossierRepo(tx).files(code)
            done = {t.step for t in await TransferRepo(tx).of_dossier(code)}
        if dossier.status not in TRANSFERABLE:
            raise TransferRefused(
                f"A dossier in status {dossier.status} ({LABELS[dossier.status]}) cannot be "
                "transferred: only one received (2) or in processing (4)."
            )
        steps = [s for s in step_due_dates(self.clock, procedure, dossier) if s.agency == agency]
        if not steps or agency == actor:
            named = ", ".join(s.agency for s in procedure.steps) or "none"
            raise InvalidDossier(
                "agency", f"{agency} is not another agency of the procedure's steps ({named})"
            )
        step = next((s for s in steps if s.number not in done), None)
        if step is None:
            raise TransferRefused(f"Step {steps[0].number} was transferred to {agency} already.")
        now = utcnow()
        body = self._body(dossier, procedure, step, files, actor, now)
        attachments = [
            Attachment(
                "ho-so",
                name=DOSSIER_FILE,
                content_type="application/json",
                data=json.dumps(body, ensure_ascii=False, indent=1).encode(),
            )
        ]
        for i, f in enumerate(files, 1):
            data = b"".join([chunk async for chunk in self.objects.open(f.sha256)])
            attachments.append(
                Attachment(f"tep{i}", name=f.name, content_type=f.content_type, data=data)
            )
        day = now.astimezone(self.zone)
        document_id = f"{actor},{day:%Y/%m/%d},{code}/{CODE_NOTATION}-{step.number}"
        carried = Carried(
            sender=actor,
            recipient=agency,
            document_id=document_id,
            subject=f"{SUBJECT} {code}: {procedure.name}",
            code=Code(f"{dossier.seq}", CODE_NOTATION),
            place="Bộ phận một cửa",
            day=day.date(),
            application_type=APPLICATION_TYPE,
            attachments=attachments,
            due_date=step.due_at.astimezone(self.zone).date(),
        )
        receipt = await send_carried(self.exchange, carried)
        row = TransferRow(
            0, "out", code, actor, agency, step.number, receipt.document.id,
            document_id, ACCEPTED, step.due_at, None, body, now, now,
            dossier.procedure, dossier.received_at,
        )  # fmt: skip
        async with self.database.transaction() as tx:
            transfer_id = await TransferRepo(tx).insert(row)
            details = {"agency": agency, "step": step.number, "package": receipt.document.id}
            await record(tx, actor, "dossier.transfer", [code], details)
            stored = await TransferRepo(tx).get(transfer_id)
        assert stored is not None
        return stored

    def _body(
        self,
        dossier: DossierRow,
        procedure: Procedure,
        step: StepDue,
        files: Any,
        actor: str,
        now: datetime,
    ) -> dict[str, Any]:
        """The dossier as ``ho-so.json`` carries it."""

        def t(moment: datetime) -> str:
            return moment.astimezone(self.zone).isoformat()

        return {
            "kind": "ho-so-mot-cua-lien-thong",
            "code": dossier.code,
            "receiving_unit": dossier.receiving_unit,
            "agency": dossier.agency,
            "sent_by": actor,
            "sent_at": t(now),
            "procedure": procedure_json(procedure),
            "applicant": dossier.applicant,
            "channel": dossier.channel,
            "status": dossier.status,
            "received_at": t(dossier.received_at),
            "due_at": t(dossier.due_at),
            "step": {
                "number": step.number,
                "agency": step.agency,
                "days": step.days,
                "due_at": t(step.due_at),
            },
            "files": [
                {
                    "component": f.component,
                    "name": f.name,
                    "content_type": f.content_type,
                    "sha256": f.sha256,
                    "size": f.size,
                    "attachment": i,
                }
                for i, f in enumerate(files, 1)
            ],
        }

    # -- in ----------------------------------------------------------------------------------

    def on_accepted(self, accepted: AcceptedDocument) -> Any:
        """Arrival hook: a one-stop dossier for an agency hosted here joins its transfers."""
        return self._arrived(accepted)

    async def catch_up_arrivals(self, days: int = 7) -> int:
        """Record the transfers of the last ``days`` whose arrival hook never ran (the process
        stopped between the package's commit and its hook): how many were recorded."""
        since = int((utcnow() - timedelta(days=days)).timestamp() * 1000)
        async with self.database.reader() as tx:
            ids = await TransferRepo(tx).unrecorded_packages(f"{since:012x}{0:020x}", SUBJECT)
        recorded = 0
        for package in ids:
            async with self.database.reader() as tx:
                doc = await DocumentRepo(tx).get(package)
                recipients = await DeliveryRepo(tx).recipients(package)
            if doc is not None:
                recorded += await self._arrived(
                    AcceptedDocument(doc, recipients, document_meta(doc))
                )
        return recorded

    async def _arrived(self, accepted: AcceptedDocument) -> int:
        """Record a one-stop dossier for each recipient hosted here; how many were new."""
        doc = accepted.document
        recorded = 0
        for recipient, body in await carried_json(self.exchange, accepted, DOSSIER_FILE, SUBJECT):
            step = body.get("step") or {}
            now = utcnow()
            row = TransferRow(
                0, "in", str(body["code"]), doc.sender, recipient, int(step.get("number", 1)),
                doc.id, doc.document_id, ACCEPTED, datetime.fromisoformat(step["due_at"]),
                None, body, now, now, str((body.get("procedure") or {}).get("code", "")),
                datetime.fromisoformat(body["received_at"]),
            )  # fmt: skip
            async with self.database.transaction() as tx:
                repo = TransferRepo(tx)
                if await repo.by_package("in", doc.id) is not None:
                    continue
                transfer_id = await repo.insert(row)
                await repo.add_event(transfer_id, recipient, now, None, ACCEPTED, "")
                details = {"from": doc.sender, "package": doc.id, "step": row.step}
                await record(tx, recipient, "dossier.transfer.received", [row.dossier], details)
            recorded += 1
        return recorded

    async def advance_transfer(
        self, actor: str, transfer_id: int, status: int, note: str = ""
    ) -> TransferRow:
        """The step's agency moves its copy; the move goes back as a status message."""
        if isinstance(status, bool) or status not in LABELS:
            raise InvalidDossier("status", "must be a status code from 1 to 10")
        if len(note) > MAX_NOTE:
            raise InvalidDossier("note", f"must be at most {MAX_NOTE} characters")
        now = utcnow()
        async with self.database.transaction() as tx:
            repo = TransferRepo(tx)
            current = await repo.get(transfer_id)
            if current is None or current.direction != "in" or current.agency != actor:
                raise DossierNotFound("No such dossier transferred to this agency.")
            check_move(current.status, status, receiving=False, competent=True)
            due_at, paused_at = self._paused(current.status, status, current, now)
            seq = len(await repo.events(transfer_id))  # the arrival's event, then the moves
            await repo.add_event(transfer_id, actor, now, current.status, status, note)
            await repo.move(transfer_id, status, due_at, paused_at, now)
            # The status message goes with the move, in its transaction: sent just after, and
            # again until the exchange accepts it (the outbox), so the move is never lost.
            reply = Reply(
                sender=actor,
                origin=current.origin,
                document_id=current.document_id,
                code=EDXML_CODES.get(status, StatusCode.PROCESSING),
                description=f"[ho-so {status} {now.astimezone(self.zone).isoformat()} #{seq}] "
                f"{note}"[:2000],
                at=now.astimezone(self.zone),
            )
            await self.outbox.put_reply(tx, report_topic(transfer_id), reply, now)
            details = {"from": current.status, "to": status, "note": note, "transfer": transfer_id}
            await record(tx, actor, "dossier.transfer.move", [current.dossier], details)
            after = await repo.get(transfer_id)
        assert after is not None
        await self.outbox.send(report_topic(transfer_id))
        return after

    async def advance_copy(self, move: Move) -> TransferRow:
        """A move on ``POST /api/v1/dossiers/{code}/events`` of a dossier transferred to the
        mover: its step moves (:meth:`advance_transfer`). Not with files nor a past ``at``:
        the status message carries neither."""
        async with self.database.reader() as tx:
            copy = await TransferRepo(tx).copy(move.actor, move.code)
        if copy is None:
            raise DossierNotFound("No such dossier among this agency's.")
        if move.files:
            raise InvalidDossier(
                move.files[0].component, "a transferred dossier's moves carry no files back"
            )
        if move.at is not None:
            raise InvalidDossier("at", "a transferred dossier's moves are recorded as they happen")
        return await self.advance_transfer(move.actor, copy.id, move.status, move.note)

    async def retry_reports(self, interval: float, catch_up_every: float = 60.0) -> None:
        """Until cancelled: at the start record the transfers whose arrival hook never ran;
        retry pending status messages every ``interval`` seconds (also those a crash left
        between the move's commit and the first attempt), and every ``catch_up_every`` seconds,
        from the start, apply the reports whose hook never ran."""
        caught_up = -math.inf
        try:
            await self.catch_up_arrivals()
        except Exception:
            log.exception("dossier transfers: the catch-up of arrivals failed")
        while True:
            try:
                if time.monotonic() - caught_up >= catch_up_every:
                    caught_up = time.monotonic()
                    await self.catch_up()
                await self.outbox.send_due()
            except Exception:
                log.exception("dossier status messages: a retry round failed")
            await asyncio.sleep(interval)

    def _paused(
        self, before: int, status: int, row: TransferRow | DossierRow, at: datetime
    ) -> tuple[datetime, datetime | None]:
        """The due date and pause mark after a move from ``before`` to ``status`` at ``at``."""
        if status == SUPPLEMENT:
            return row.due_at, at
        if before == SUPPLEMENT and row.paused_at is not None:
            paused = self.clock.working_time_between(row.paused_at, at)
            return self.clock.add_working_time(row.due_at, paused), None
        return row.due_at, row.paused_at

    # -- back --------------------------------------------------------------------------------

    def on_status(self, accepted: AcceptedStatus) -> Any:
        """Status hook: a move of a step's agency becomes an event of the dossier here."""
        return self._reported(accepted)

    async def _reported(self, accepted: AcceptedStatus) -> None:
        arrival = _arrival(accepted.message.description, accepted.package.id)
        if arrival is not None:
            await self._arrive(accepted.about.id, accepted.package.sender, arrival)

    async def _arrive(self, about: str, sender: str, arrival: ArrivalRow) -> None:
        """A report of ``sender`` about the package ``about`` (ours, an 'out' end)."""
        async with self.database.transaction() as tx:
            transfers = TransferRepo(tx)
            out = await transfers.by_package("out", about)
            if out is None or out.agency != sender or arrival.status not in LABELS:
                return
            if arrival.seq == 0:  # an older sender, without numbers: as it comes
                await self._apply(tx, out, arrival)
                return
            # Kept, then applied in the order of the moves: a message that overtook an
            # earlier one waits for it; a repeat is ignored.
            await transfers.add_arrival(out.id, arrival)
            while (following := await transfers.next_arrival(out.id)) is not None:
                current = await transfers.get(out.id)
                assert current is not None
                await self._apply(tx, current, following)
                await transfers.mark_applied(out.id, following.seq)

    async def catch_up(self) -> int:
        """Apply the reports whose status hook never ran (the process stopped between the
        status's commit and its hook): how many were found."""
        async with self.database.reader() as tx:
            missed = await TransferRepo(tx).unapplied_statuses()
        found = 0
        for about, sender, description, package in missed:
            arrival = _arrival(description, package)
            if arrival is not None and arrival.seq > 0:
                await self._arrive(about, sender, arrival)
                found += 1
        return found

    async def _apply(self, tx: Tx, out: TransferRow, arrival: ArrivalRow) -> None:
        """A move of the step's agency as an event of the dossier, with the supplement pause
        applied to the dossier's and the step's due dates as for a local move."""
        dossiers, transfers = DossierRepo(tx), TransferRepo(tx)
        dossier = await dossiers.get(out.dossier)
        if dossier is None:
            return
        status, at, note, sender = arrival.status, arrival.at, arrival.note, out.agency
        due_at, paused_at = self._paused(dossier.status, status, dossier, at)
        step_due, step_paused = self._paused(out.status, status, out, at)
        text = f"Bước {out.step} ({sender}): {LABELS[status]}" + (f". {note}" if note else "")
        late = finishes_late(dossier.status, status, at, due_at)
        await dossiers.add_event(
            dossier.code, sender, at, dossier.status, status, text, due_at=due_at
        )
        await dossiers.move(dossier.code, status, due_at, paused_at, utcnow(), late=late)
        await transfers.move(out.id, status, step_due, step_paused, utcnow())
        details = {
            "from": dossier.status,
            "to": status,
            "note": note,
            "at": at.isoformat(),
            "step": out.step,
            "status_package": arrival.package,
        }
        if late and not dossier.late:
            details["late"] = True  # marked late now: done after its due date
        await record(tx, sender, "dossier.move", [dossier.code], details)

    # -- reading -----------------------------------------------------------------------------

    async def steps(self, actor: str, code: str) -> tuple[list[StepDue], list[TransferRow]]:
        """The dossier's steps with their due dates, and its transfers (a party's view)."""
        async with self.database.reader() as tx:
            dossier = await dossier_of(tx, code, actor)
            procedure = await get_procedure(tx, dossier.procedure)
            transfers = await TransferRepo(tx).of_dossier(code)
        return step_due_dates(self.clock, procedure, dossier), transfers

    async def incoming(self, agency: str, after: int, limit: int) -> list[TransferRow]:
        """The dossiers transferred to ``agency``."""
        async with self.database.reader() as tx:
            return await TransferRepo(tx).incoming(agency, after, limit)

    async def incoming_one(
        self, agency: str, transfer_id: int
    ) -> tuple[TransferRow, list[TransferEventRow]]:
        """One dossier transferred to ``agency``, with its moves there."""
        async with self.database.reader() as tx:
            repo = TransferRepo(tx)
            row = await repo.get(transfer_id)
            if row is None or row.direction != "in" or row.agency != agency:
                raise DossierNotFound("No such dossier transferred to this agency.")
            return row, await repo.events(transfer_id)


@dataclass(frozen=True)
class DossierView:
    """A dossier as one agency sees it, with its files, events and apologies."""

    dossier: DossierRow
    files: list[DossierFileRow]
    events: list[DossierEventRow]
    apologies: list[ApologyRow]


async def dossier_view(tx: Tx, code: str, organ_id: str) -> DossierView:
    """The dossier ``code`` as ``organ_id`` sees it: its own (received or to process), else its
    copy of a dossier transferred to it (marked; the step's status, due date and moves; the
    files of the package); :class:`DossierNotFound` for any other agency."""
    repo = DossierRepo(tx)
    own = await repo.get(code)
    if own is not None and organ_id in (own.receiving_unit, own.agency):
        return DossierView(
            own, await repo.files(code), await repo.events(code), await repo.apologies(code)
        )
    transfers = TransferRepo(tx)
    copy = await transfers.copy(organ_id, code)
    if copy is None:
        raise DossierNotFound("No such dossier among this agency's.")
    return DossierView(copied(copy), copied_files(copy), await transfers.events(copy.id), [])


def copied(row: TransferRow) -> DossierRow:
    """An 'in' transfer as a dossier of its agency: what ho-so.json says, with the step's
    status, due date and pause."""
    body = row.body
    mark = TransferredIn(row.id, row.step, row.origin, row.package)
    return DossierRow(
        row.dossier, str(body.get("receiving_unit", row.origin)), "", 0, row.procedure,
        row.agency, int(body.get("channel", 1)), row.status, dict(body.get("applicant") or {}),
        row.received_at or datetime.fromisoformat(body["received_at"]), row.due_at,
        row.paused_at, None, row.created_at, row.updated_at, False, mark,
    )  # fmt: skip


def copied_files(row: TransferRow) -> list[DossierFileRow]:
    """The files of a dossier transferred in: the package's attachments, as ho-so.json lists
    them (``attachment``: the index in the package)."""
    return [
        DossierFileRow(
            component=str(f["component"]),
            name=str(f["name"]),
            content_type=str(f["content_type"]),
            sha256=str(f["sha256"]),
            size=int(f["size"]),
            attachment=int(f["attachment"]),
        )
        for f in row.body.get("files") or []
    ]


def _arrival(description: str | None, package: str) -> ArrivalRow | None:
    """The report a status message's Description carries (``seq`` 0: not numbered), or None."""
    mark = _MARK.match(description or "")
    if mark is None:
        return None
    status, at, seq, note = int(mark[1]), datetime.fromisoformat(mark[2]), mark[3], mark[4]
    return ArrivalRow(int(seq or 0), status, at, note, package)
