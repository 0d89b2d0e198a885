"""Citizen feedback across agencies: forwarded to the competent agency over the axis, answered
back over it (docs/feedback.md, "Forwarding over the axis").

**Out** (the receiving unit's axis): :meth:`Forwarding.forward` sends the feedback as an edXML
package (``ApplicationType`` ``PAKN``, subject ``Phản ánh, kiến nghị <code>``): the feedback as
JSON in the attachment ``phan-anh.json`` (sender's contacts included: the agency may need to
reach them), its photos as the other attachments. The package goes through
:meth:`Exchange.accept_document` as if the unit had sent it, so it is routed like any document:
to an agency of this axis, or forwarded to another axis. The feedback moves to ``transferred``
(its answer limit restarts: 15 working days from the transfer) in the same transaction as the
``out`` transfer row, the audit entry and the package's bytes in the outbox
(:class:`server.exchange.carried.Outbox`); the package is given to the exchange after the
commit and again until it is accepted (the transfer names it ``outbox:<id>`` until then), so
a failure after the commit loses nothing and a repeat gets the exchange's first receipt.

**In** (the axis hosting the agency, this one or another): :meth:`Forwarding.on_accepted` is an
arrival hook; the axis that hosts the recipient records the feedback there (``in``).

**Back**: the agency's moves on its copy (:meth:`Forwarding.reply`: ``processing``,
``supplement`` with what is missing, ``answered`` with the answer) are edXML status messages
about the package, written to the outbox with the copy's move and sent after it (retried
until accepted), and routed back like any status. Their ``Description`` is
``[phan-anh STATUS TIME] TEXT``; at the receiving unit's axis :meth:`Forwarding.on_status`
makes each the same move of the feedback, made by the agency (the answer becomes the
feedback's answer).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from edxml import (
    Attachment,
    Code,
    StatusCode,
)
from server.exchange import Exchange
from server.exchange.carried import Carried, Outbox, Reply, carried_json
from server.exchange.results import AcceptedDocument, AcceptedStatus, Receipt
from server.feedback.errors import FeedbackError, FeedbackNotFound, InvalidFeedback, MoveRefused
from server.feedback.intake import FeedbackServices
from server.feedback.lifecycle import (
    ANSWERED,
    MOVES,
    NOTE_REQUIRED,
    PROCESSING,
    SUPPLEMENT,
    TRANSFERRED,
    check_move,
)
from server.feedback.moves import MAX_NOTE, FeedbackMove, apply_move, feedback_of
from server.runtime.audit import record
from storage.db import Tx
from storage.ids import utcnow
from storage.repos.agencies import AgencyRepo
from storage.repos.carried_outbox import OutboxRow
from storage.repos.feedback import (
    CategoryRepo,
    FeedbackRepo,
    FeedbackRow,
    FeedbackTransferRepo,
    TransferRow,
)

log = logging.getLogger("lienthong.feedback")

FEEDBACK_FILE = "phan-anh.json"
APPLICATION_TYPE = "PAKN"
CODE_NOTATION = "PAKN"
SUBJECT = "Phản ánh, kiến nghị"
_MARK = re.compile(r"^\[phan-anh ([a-z_]+) ([^\]\s]+)\] ?(.*)$", re.DOTALL)
REPLIES = (PROCESSING, SUPPLEMENT, ANSWERED)
EDXML_CODES = {
    PROCESSING: StatusCode.PROCESSING,
    SUPPLEMENT: StatusCode.PROCESSING,
    ANSWERED: StatusCode.COMPLETED,
}


def waiting_package(outbox_id: int) -> str:
    """What an ``out`` transfer names as its package until the exchange has accepted it."""
    return f"outbox:{outbox_id}"


@dataclass(frozen=True)
class Forwarding:
    """What forwarding needs: the feedback services and the exchange."""

    services: FeedbackServices
    exchange: Exchange
    base_delay: float = 2.0  # seconds before a message's second attempt, doubled each time
    max_delay: float = 3600.0  # ... up to this

    @cached_property
    def outbox(self) -> Outbox:
        """Forwarded packages (``feedback:forward:<code>``) and the agency's replies
        (``feedback:reply:<transfer id>``), sent after their move committed, until accepted."""
        return Outbox(self.services.database, self.exchange, "feedback:", self._sent,
                      self.base_delay, self.max_delay)  # fmt: skip

    @staticmethod
    async def _sent(tx: Tx, row: OutboxRow, receipt: Receipt) -> None:
        if row.kind == "document":  # the forwarded package: its transfer now names it
            await FeedbackTransferRepo(tx).package_sent(
                waiting_package(row.id), receipt.document.id
            )

    # -- out ---------------------------------------------------------------------------------

    async def forward(self, actor: str, code: str, agency: str | None = None) -> TransferRow:
        """Send the feedback ``code`` to ``agency`` (default: its competent agency)."""
        database = self.services.database
        async with database.reader() as tx:
            row = await feedback_of(tx, code, actor)
            category = await CategoryRepo(tx).get(row.category)
            photos = await FeedbackRepo(tx).photos(code)
        target = agency or row.agency
        if target == actor:
            raise InvalidFeedback("agency", "the receiving unit cannot forward to itself")
        check_move(row, TRANSFERRED, receiving=actor == row.receiving_unit, competent=False,
                   forwarding=True)  # fmt: skip
        async with database.reader() as tx:
            if target not in await AgencyRepo(tx).known([target]):
                raise InvalidFeedback("agency", f"{target} is not an agency this axis reaches")
        now = utcnow()
        body = self._body(row, category.name if category else row.category, actor, now)
        attachments = [
            Attachment(
                "phan-anh",
                name=FEEDBACK_FILE,
                content_type="application/json",
                data=json.dumps(body, ensure_ascii=False, indent=1).encode(),
            )
        ]
        for p in photos:
            data = b"".join([chunk async for chunk in self.services.objects.open(p.sha256)])
            extension = "png" if p.content_type == "image/png" else "jpg"
            attachments.append(
                Attachment(f"anh{p.n}", name=f"anh-{p.n}.{extension}",
                           content_type=p.content_type, data=data)
            )  # fmt: skip
        day = now.astimezone(self.services.zone)
        document_id = f"{actor},{day:%Y/%m/%d},{code}/{CODE_NOTATION}"
        carried = Carried(
            sender=actor,
            recipient=target,
            document_id=document_id,
            subject=f"{SUBJECT} {code}: {row.title}",
            code=Code(f"{row.seq}", CODE_NOTATION),
            place="Bộ phận tiếp nhận phản ánh",
            day=day.date(),
            application_type=APPLICATION_TYPE,
            attachments=attachments,
        )
        async with database.transaction() as tx:
            current = await feedback_of(tx, code, actor)
            topic = f"forward:{code}"
            outbox_id = await self.outbox.put_document(tx, topic, carried, now)
            move = FeedbackMove(actor, code, TRANSFERRED, f"Chuyển {target}", target)
            await apply_move(tx, self.services.clock, current, move, now, forwarding=True,
                             details={"document_id": document_id})  # fmt: skip
            out = TransferRow(0, "out", code, actor, target, waiting_package(outbox_id),
                              document_id, TRANSFERRED, "", body, now, now)  # fmt: skip
            transfer_id = await FeedbackTransferRepo(tx).insert(out)
        await self.outbox.send(topic)
        async with database.reader() as tx:
            stored = await FeedbackTransferRepo(tx).get(transfer_id)
        assert stored is not None
        return stored

    def _body(self, row: FeedbackRow, category: str, actor: str, now: datetime) -> dict[str, Any]:
        zone = self.services.zone
        return {
            "kind": "phan-anh-kien-nghi",
            "code": row.code,
            "category": {"code": row.category, "name": category},
            "title": row.title,
            "content": row.content,
            "place": {"address": row.address, "lat": row.lat, "long": row.lon},
            "attributes": row.attributes,
            "sender": row.sender,
            "channel": row.channel,
            "receiving_unit": row.receiving_unit,
            "sent_by": actor,
            "sent_at": now.astimezone(zone).isoformat(),
            "received_at": row.received_at.astimezone(zone).isoformat(),
            "answer_due": self.services.clock.due_at(now, 15).astimezone(zone).isoformat(),
        }

    # -- in ----------------------------------------------------------------------------------

    def on_accepted(self, accepted: AcceptedDocument) -> Any:
        """Arrival hook: a feedback for an agency hosted here joins its incoming feedback."""
        return self._arrived(accepted)

    async def _arrived(self, accepted: AcceptedDocument) -> None:
        doc = accepted.document
        database = self.services.database
        found = await carried_json(self.exchange, accepted, FEEDBACK_FILE, SUBJECT)
        for recipient, body in found:
            now = utcnow()
            row = TransferRow(0, "in", str(body["code"]), doc.sender, recipient, doc.id,
                              doc.document_id, TRANSFERRED, "", body, now, now)  # fmt: skip
            async with database.transaction() as tx:
                repo = FeedbackTransferRepo(tx)
                if await repo.by_package("in", doc.id) is not None:
                    continue
                await repo.insert(row)
                details = {"from": doc.sender, "package": doc.id}
                await record(tx, recipient, "feedback.transfer.received", [row.feedback], details)

    async def reply(self, actor: str, transfer_id: int, status: str, note: str) -> TransferRow:
        """The agency moves its copy (processing, supplement, answered); the move goes back
        to the receiving unit as a status message.

        The message is written to the outbox with the copy's move, in its transaction, and
        sent after it, again until the exchange accepts it (:class:`Outbox`): a move recorded
        here always reaches the receiving unit, whatever fails after the commit."""
        if status not in REPLIES:
            raise InvalidFeedback("status", f"must be one of {', '.join(REPLIES)}")
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise InvalidFeedback("note", f"must be at most {MAX_NOTE} characters")
        if status in NOTE_REQUIRED and not note:
            raise InvalidFeedback("note", f"is required: {NOTE_REQUIRED[status]}")
        now = utcnow()
        moment = now.astimezone(self.services.zone)
        topic = f"reply:{transfer_id}"
        async with self.services.database.transaction() as tx:
            repo = FeedbackTransferRepo(tx)
            current = await self._copy(repo, actor, transfer_id, status)
            description = f"[phan-anh {status} {moment.isoformat()}] {note}"
            reply = Reply(actor, current.origin, current.document_id, EDXML_CODES[status],
                          description, moment)  # fmt: skip
            await self.outbox.put_reply(tx, topic, reply, now)
            await repo.move(transfer_id, status, note if status == ANSWERED else "", now)
            details = {"from": current.status, "to": status, "note": note}
            await record(tx, actor, "feedback.transfer.move", [current.feedback], details)
            after = await repo.get(transfer_id)
        assert after is not None
        await self.outbox.send(topic)
        return after

    @staticmethod
    async def _copy(
        repo: FeedbackTransferRepo, actor: str, transfer_id: int, status: str
    ) -> TransferRow:
        """The agency's copy, if the move to ``status`` is allowed from its status."""
        current = await repo.get(transfer_id)
        if current is None or current.direction != "in" or current.agency != actor:
            raise FeedbackNotFound("No such feedback forwarded to this agency.")
        allowed = sorted(set(MOVES.get(current.status, {})) & set(REPLIES))
        if status not in allowed:
            raise MoveRefused(f"From {current.status}, cannot move to {status}.", allowed)
        return current

    # -- back --------------------------------------------------------------------------------

    def on_status(self, accepted: AcceptedStatus) -> Any:
        """Status hook: the agency's move becomes the same move of the feedback here."""
        return self._reported(accepted)

    async def _reported(self, accepted: AcceptedStatus) -> None:
        mark = _MARK.match(accepted.message.description or "")
        if mark is None or mark[1] not in REPLIES:
            return
        status, note = mark[1], mark[3]
        try:
            at = datetime.fromisoformat(mark[2])
        except ValueError:
            return
        sender = accepted.package.sender
        async with self.services.database.transaction() as tx:
            transfers = FeedbackTransferRepo(tx)
            out = await transfers.by_package("out", accepted.about.id)
            if out is None or out.agency != sender:
                return
            current = await FeedbackRepo(tx).get(out.feedback)
            if current is None:
                return
            move = FeedbackMove(sender, current.code, status, note)
            try:
                await apply_move(tx, self.services.clock, current, move, at,
                                 details={"status_package": accepted.package.id})  # fmt: skip
            except FeedbackError as refused:
                log.warning("feedback move from %s refused: %s", sender, refused.detail)
                return
            await transfers.move(out.id, status, note if status == ANSWERED else out.answer,
                                 utcnow())  # fmt: skip

    # -- reading -----------------------------------------------------------------------------

    async def incoming(self, agency: str, after: int, limit: int) -> list[TransferRow]:
        """The feedback forwarded to ``agency``."""
        async with self.services.database.reader() as tx:
            return await FeedbackTransferRepo(tx).incoming(agency, after, limit)

    async def incoming_one(self, agency: str, transfer_id: int) -> TransferRow:
        """One feedback forwarded to ``agency``."""
        async with self.services.database.reader() as tx:
            row = await FeedbackTransferRepo(tx).get(transfer_id)
        if row is None or row.direction != "in" or row.agency != agency:
            raise FeedbackNotFound("No such feedback forwarded to this agency.")
        return row
