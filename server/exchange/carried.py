"""Records carried over the axis as edXML packages, and the replies about them.

Out: :func:`send_carried` sends a record (its JSON attachment, then its files) as a package
through the exchange, as if its sender had; :func:`send_reply` sends a status message about
such a package back to its sender. In: :func:`carried_json` reads the JSON attachment at the
axis hosting its recipients.

Domains that send their records over the axis as edXML packages (one-stop dossiers'
``ho-so.json``, citizen feedback's ``phan-anh.json``) recognise them in an arrival hook
(``Exchange.on_accepted``) by their subject and the name of that attachment; every axis a
package passes through calls its hooks, so only the recipients hosted here are read.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

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


async def send_reply(exchange: StatusIntake, r: Reply) -> Receipt:
    """Send ``r`` through the exchange: routed back to the package's sender like any status."""
    message = StatusMessage(
        from_=Organization(r.sender),
        response_for=ResponseFor(organ_id=r.origin, document_id=r.document_id),
        status_code=r.code,
        description=r.description,
        timestamp=r.at,
    )
    package = await exchange.receive(_chunks(edxml.serialize(message)))
    return await exchange.accept_status(r.sender, package)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
