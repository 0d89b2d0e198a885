"""Records carried over the axis as edXML packages, and the replies about them.

Out: :func:`send_carried` sends a record (its JSON attachment, then its files) as a package
through the exchange, as if its sender had; :func:`send_reply` sends a status message about
such a package back to its sender. In: :func:`carried_json` reads the JSON attachment at the
axis hosting its recipients.

Durable: :class:`Outbox` keeps the bytes of such a package or status message in the
transaction of the move it carries (:meth:`Outbox.put_document`, :meth:`Outbox.put_reply`),
then gives them to the exchange, again with back-off until it accepts them
(:meth:`Outbox.send`, :meth:`Outbox.run`): a move recorded is never one that is not sent, and a
crash or a failed write after the send costs nothing, since the exchange answers the same
bytes under the same DocumentId with its first receipt and keeps one status however many
attempts reach it. The messages of one ``topic`` go in order: oldest first, none before the
earlier ones of its topic were accepted. It is the one outbox of the domains that carry records
(table ``carried_outbox``), each with its own topic prefix: citizen feedback's forwarded
packages and replies (``feedback:``), one-stop dossiers' status messages about a transferred
step's moves (``dossier:report:<transfer id>``).

Domains that send their records over the axis as edXML packages (one-stop dossiers'
``ho-so.json``, citizen feedback's ``phan-anh.json``) recognise them in an arrival hook
(``Exchange.on_accepted``) by their subject and the name of that attachment; every axis a
package passes through calls its hooks, so only the recipients hosted here are read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import edxml
from edxml import (
    Attachment,
    Code,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    PromulgationInfo,
    ResponseFor,
    StatusCode,
    StatusMessage,
)
from server.exchange.accept import DocumentIntake
from server.exchange.attachments import Attachments
from server.exchange.results import AcceptedDocument, Receipt
from server.exchange.statuses import StatusIntake
from server.runtime.spool import SpooledPackage
from storage.db import Database, Tx
from storage.ids import utcnow
from storage.repos.carried_outbox import OutboxRepo, OutboxRow

log = logging.getLogger("lienthong.exchange")


async def carried_json(
    exchange: Attachments, accepted: AcceptedDocument, name: str, subject: str
) -> list[tuple[str, Any]]:
    """``(recipient, JSON)`` for each recipient hosted on this axis, when the package's subject
    starts with ``subject`` and it carries an attachment named ``name``; else ``[]``."""
    attachments = accepted.meta.get("attachments") or []
    index = next(
        (a.get("index", i) for i, a in enumerate(attachments) if a.get("name") == name), None
    )
    doc = accepted.document
    if index is None or not (doc.subject or "").startswith(subject):
        return []
    async with exchange.database.reader() as tx:
        local = [
            r for r in accepted.recipients if (await exchange.router.resolve(tx, r)).kind == "local"
        ]
    found = []
    for recipient in local:
        decoded = await exchange.decode_attachment(recipient, doc.id, int(index))
        try:
            found.append((recipient, json.loads(decoded.path.read_bytes())))
        finally:
            decoded.path.unlink(missing_ok=True)
    return found


@dataclass(frozen=True)
class Carried:
    """A record sent to an agency as an edXML package: who sends it to whom, its ids, and its
    attachments (the JSON record first, then its files)."""

    sender: str
    recipient: str
    document_id: str
    subject: str
    code: Code
    place: str  # the PromulgationInfo's place: the sending office
    day: date
    application_type: str
    attachments: Sequence[Attachment]
    due_date: date | None = None


def carried_envelope(c: Carried) -> Envelope:
    """The edXML envelope of ``c``."""
    return Envelope(
        header=MessageHeader(
            from_=Organization(c.sender, organ_name=c.sender),
            to=(Organization(c.recipient, organ_name=c.recipient),),
            document_id=c.document_id,
            subject=c.subject[:500],
            code=c.code,
            promulgation_info=PromulgationInfo(c.place, c.day),
            due_date=c.due_date,
            application_type=c.application_type,
        ),
        manifest=tuple(
            ManifestReference(f"cid:{a.content_id}", a.content_type, None, a.name)
            for a in c.attachments
        ),
        attachments=tuple(c.attachments),
    )


async def send_carried(exchange: DocumentIntake, c: Carried) -> Receipt:
    """Send ``c`` through the exchange as if its sender had: routed like any document, to an
    agency of this axis or to another axis."""
    package = await exchange.receive(_chunks(edxml.serialize(carried_envelope(c))))
    return await exchange.accept_document(c.sender, package)


@dataclass(frozen=True)
class Reply:
    """A status message about a carried package, from its recipient back to its sender."""

    sender: str
    origin: str  # the package's sender
    document_id: str  # the package's DocumentId
    code: StatusCode
    description: str
    at: datetime


def reply_message(r: Reply) -> StatusMessage:
    """The edXML status message of ``r``."""
    return StatusMessage(
        from_=Organization(r.sender),
        response_for=ResponseFor(organ_id=r.origin, document_id=r.document_id),
        status_code=r.code,
        description=r.description,
        timestamp=r.at,
    )


async def send_reply(exchange: StatusIntake, r: Reply) -> Receipt:
    """Send ``r`` through the exchange: routed back to the package's sender like any status."""
    package = await exchange.receive(_chunks(edxml.serialize(reply_message(r))))
    return await exchange.accept_status(r.sender, package)


class CarryingExchange(Protocol):
    """What the outbox needs of the exchange."""

    async def receive(self, chunks: AsyncIterable[bytes]) -> SpooledPackage: ...

    async def accept_document(self, caller: str, package: SpooledPackage) -> Receipt: ...

    async def accept_status(self, caller: str, package: SpooledPackage) -> Receipt: ...


# Run in the transaction that marks a message accepted: what the domain records of its package.
OnAccepted = Callable[[Tx, OutboxRow, Receipt], Awaitable[None]]


async def _nothing(tx: Tx, row: OutboxRow, receipt: Receipt) -> None:
    return None


@dataclass(frozen=True)
class Outbox:
    """The messages one domain carries over the axis (its topics start with ``prefix``)."""

    database: Database
    exchange: CarryingExchange
    prefix: str
    on_accepted: OnAccepted = _nothing
    base_delay: float = 2.0  # seconds before the second attempt, doubled each time
    max_delay: float = 3600.0  # ... up to this

    async def put_document(self, tx: Tx, topic: str, c: Carried, at: datetime) -> int:
        """Keep the package of ``c`` to send (in the caller's transaction); its outbox id."""
        message = edxml.serialize(carried_envelope(c))
        return await OutboxRepo(tx).put(self._topic(topic), "document", c.sender, message, at)

    async def put_reply(self, tx: Tx, topic: str, r: Reply, at: datetime) -> int:
        """Keep the status message of ``r`` to send (in the caller's transaction)."""
        message = edxml.serialize(reply_message(r))
        return await OutboxRepo(tx).put(self._topic(topic), "status", r.sender, message, at)

    def _topic(self, topic: str) -> str:
        return topic if topic.startswith(self.prefix) else self.prefix + topic

    async def send(self, topic: str) -> bool:
        """Give the topic's waiting messages to the exchange, oldest first, stopping at the
        first that fails (tried again after a back-off); True when none is left waiting.

        Any failure (a refusal, a full disk) leaves the message waiting: the move it carries
        has committed."""
        async with self.database.reader() as tx:
            waiting = await OutboxRepo(tx).waiting(self._topic(topic))
        for row in waiting:
            try:
                package = await self.exchange.receive(_chunks(row.message))
                if row.kind == "document":
                    receipt = await self.exchange.accept_document(row.actor, package)
                else:
                    receipt = await self.exchange.accept_status(row.actor, package)
            except Exception as exc:
                wait = min(self.base_delay * 2**row.attempts, self.max_delay)
                error = f"{type(exc).__name__}: {exc}"[:500]
                where = {"topic": row.topic, "outbox": row.id, "error": error}
                log.warning("carried message not sent", extra=where)
                async with self.database.transaction() as tx:
                    await OutboxRepo(tx).postponed(
                        row.id, utcnow() + timedelta(seconds=wait), error
                    )
                return False
            async with self.database.transaction() as tx:
                await OutboxRepo(tx).accepted(row.id, receipt.document.id, utcnow())
                await self.on_accepted(tx, row, receipt)
        return True

    async def send_due(self) -> int:
        """One round: every topic whose first waiting message is due; how many were emptied."""
        async with self.database.reader() as tx:
            due = await OutboxRepo(tx).due_topics(self.prefix, utcnow())
        return sum([await self.send(topic) for topic in due])

    async def run(self, interval: float) -> None:
        """Until cancelled: a round every ``interval`` seconds (also the messages a crash left
        between the move's commit and the first attempt). Every process may run it."""
        while True:
            try:
                await self.send_due()
            except Exception:
                log.exception("carried messages: a retry round failed")
            await asyncio.sleep(interval)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
