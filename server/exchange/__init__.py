"""The exchange rules of the axis (trục liên thông): accept, route, acknowledge, answer.

Handlers stay thin; everything a package must satisfy to be accepted, who may see what, and
what rows one accepted package produces lives here: a package is accepted (spooled with the
axis's TraceHeader), validated, stored, routed to its recipients' inboxes (pulled here or
pushed), acknowledged, and answered with statuses.

:class:`Exchange` is composed of one part per seam over a shared core:

* :mod:`server.exchange.core`: the shared state and steps (spool, parse, check, store, route,
  visibility); :mod:`server.exchange.early_parse` parses a large package while it arrives
  where the store uploads it meanwhile (S3);
* :mod:`server.exchange.accept`: accepting document packages, post-acceptance hooks;
* :mod:`server.exchange.statuses`: accepting status messages;
* :mod:`server.exchange.reading`: what the parties read (meta, history, sent, inbox, ack);
* :mod:`server.exchange.attachments`: decoding one attachment of a stored document;
* :mod:`server.exchange.results` and :mod:`server.exchange.meta`: the answers and the stored
  JSON summary; :mod:`server.exchange.errors`: the refusals.

Sibling modules built around it: :mod:`~server.exchange.receipts` (signed receipts),
:mod:`~server.exchange.federation` (routes to other axes), :mod:`~server.exchange.delivery`
(the push worker) and :mod:`~server.exchange.webhooks` (the webhook signature).
"""

from __future__ import annotations

from server.exchange.accept import DocumentIntake
from server.exchange.attachments import Attachments
from server.exchange.errors import (
    DocumentNotFound,
    DuplicateDocument,
    EmptyPackage,
    ExchangeError,
    InvalidPackage,
    NotOriginalSender,
    NotRoutable,
    OriginalNotFound,
    RoutingLoop,
    SenderMismatch,
    StatusNotAllowed,
    TraceNotPlaced,
    UnknownDocument,
    UnknownRecipients,
    WrongKind,
)
from server.exchange.meta import document_meta, edxml_document_id
from server.exchange.reading import Reading
from server.exchange.results import (
    AcceptedDocument,
    ArrivalHook,
    DecodedAttachment,
    Receipt,
    SentEntry,
)
from server.exchange.statuses import StatusIntake

__all__ = [
    "AcceptedDocument",
    "ArrivalHook",
    "DecodedAttachment",
    "DocumentNotFound",
    "DuplicateDocument",
    "EmptyPackage",
    "Exchange",
    "ExchangeError",
    "InvalidPackage",
    "NotOriginalSender",
    "NotRoutable",
    "OriginalNotFound",
    "Receipt",
    "RoutingLoop",
    "SenderMismatch",
    "SentEntry",
    "StatusNotAllowed",
    "TraceNotPlaced",
    "UnknownDocument",
    "UnknownRecipients",
    "WrongKind",
    "document_meta",
    "edxml_document_id",
]


class Exchange(DocumentIntake, StatusIntake, Reading, Attachments):
    """The exchange rules bound to one axis's configuration, database and object store."""
