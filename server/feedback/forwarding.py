"""Citizen feedback across agencies: forwarded to the competent agency over the axis, answered
back over it (docs/feedback.md, "Forwarding over the axis").

**Out** (the receiving unit's axis): :meth:`Forwarding.forward` sends the feedback as an edXML
package (``ApplicationType`` ``PAKN``, subject ``Phản ánh, kiến nghị <code>``): the feedback as
JSON in the attachment ``phan-anh.json`` (sender's contacts included: the agency may need to
reach them), its photos as the other attachments. The package goes through
:meth:`Exchange.accept_document` as if the unit had sent it, so it is routed like any document:
to an agency of this axis, or forwarded to another axis. The feedback moves to ``transferred``
(its answer limit restarts: 15 working days from the transfer) in the same transaction as the
``out`` transfer row and the audit entry.

**In** (the axis hosting the agency, this one or another): :meth:`Forwarding.on_accepted` is an
arrival hook; the axis that hosts the recipient records the feedback there (``in``).

**Back**: the agency's moves on its copy (:meth:`Forwarding.reply`: ``processing``,
``supplement`` with what is missing, ``answered`` with the answer) are edXML status messages
about the package, accepted by the exchange before the copy's move is written, and routed back
like any status. Their ``Description`` is
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
from typing import Any

from edxml import (
    Attachment,
    Code,
    StatusCode,
)
from server.exchange import Exchange
from server.exchange.carried import Carried, Reply, carried_json, send_carried, send_reply
from server.exchange.results import AcceptedDocument, AcceptedStatus
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
from storage.ids import utcnow
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


@dataclass(frozen=True)
class Forwarding:
    """What forwarding needs: the feedback services and the exchange."""

    services: FeedbackServices
    exchange: Exchange

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
        receipt = await send_carried(self.exchange, carried)
        package = receipt.document.id
        async with database.transaction() as tx:
            current = await feedback_of(tx, code, actor)
            move = FeedbackMove(actor, code, TRANSFERRED, f"Chuyển {target}", target)
            await apply_move(tx, self.services.clock, current, move, now, forwarding=True,
                             details={"package": package})  # fmt: skip
            repo = FeedbackTransferRepo(tx)
            transfer_id = await repo.insert(
                TransferRow(
                    0,
                    "out",
                    code,
                    actor,
                    target,
                    package,
                    document_id,
                    TRANSFERRED,
                    "",
                    body,
                    now,
                    now,
                )
            )
            stored = await repo.get(transfer_id)
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

        The message is accepted by the exchange (stored, then delivered with retries) *before*
        the copy's move is written: a move recorded here is never one the receiving unit
        cannot get. Should the write fail after the send, the agency sends the move again and
        the receiving unit, which has it already, refuses the repeat (logged)."""
        if status not in REPLIES:
            raise InvalidFeedback("status", f"must be one of {', '.join(REPLIES)}")
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise InvalidFeedback("note", f"must be at most {MAX_NOTE} characters")
        if status in NOTE_REQUIRED and not note:
            raise InvalidFeedback("note", f"is required: {NOTE_REQUIRED[status]}")
        database = self.services.database
        async with database.reader() as tx:
            current = await self._copy(FeedbackTransferRepo(tx), actor, transfer_id, status)
        now = utcnow()
        moment = now.astimezone(self.services.zone)
        reply = Reply(
            actor,
            current.origin,
            current.document_id,
            EDXML_CODES[status],
            f"[phan-anh {status} {moment.isoformat()}] {note}",
            moment,
        )
        await send_reply(self.exchange, reply)
        async with database.transaction() as tx:
            repo = FeedbackTransferRepo(tx)
            current = await self._copy(repo, actor, transfer_id, status)
            await repo.move(transfer_id, status, note if status == ANSWERED else "", now)
            details = {"from": current.status, "to": status, "note": note}
            await record(tx, actor, "feedback.transfer.move", [current.feedback], details)
            after = await repo.get(transfer_id)
        assert after is not None
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
