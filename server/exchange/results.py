"""What the exchange answers with: receipts, accepted documents, sent entries, decoded
attachments, and the type of a post-acceptance hook.

Plain frozen dataclasses, shared by every part of :class:`~server.exchange.Exchange` and by the
handlers that turn them into responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edxml import StatusMessage
from storage.repos.deliveries import Delivery
from storage.repos.documents import Document
from storage.repos.statuses import Status


@dataclass(frozen=True)
class Receipt:
    """The answer to an accepted package: its row, its recipients, and whether it is new."""

    document: Document
    recipients: list[str]
    created: bool


@dataclass(frozen=True)
class AcceptedDocument:
    """A document package just committed (rows, objects, audit entry): what arrival hooks get.

    ``meta`` is the stored JSON summary (``attachments`` with index, name, type, sha256).
    """

    document: Document
    recipients: list[str]
    meta: dict[str, Any]


# A post-acceptance hook (``Exchange.on_accepted``). It is CALLED synchronously once the
# document's transaction has committed, just before the sender's receipt is returned, so it
# can note what it is about to do; the awaitable it returns runs as a background task whose
# failure is logged and never reaches the sender: the 201 is neither delayed nor failed.
ArrivalHook = Callable[[AcceptedDocument], Awaitable[None]]


@dataclass(frozen=True)
class AcceptedStatus:
    """A status message just committed: what status hooks get.

    ``about`` is the document the status concerns (its row here), ``targets`` the parties it is
    routed to.
    """

    package: Document
    about: Document
    message: StatusMessage
    targets: list[str]


# A post-acceptance hook for status messages (``Exchange.on_status``), called like an
# :data:`ArrivalHook` once the status's transaction has committed (a new status only, not a
# repeat of the same bytes).
StatusHook = Callable[[AcceptedStatus], Awaitable[None]]


@dataclass(frozen=True)
class SentEntry:
    """One of the caller's sent documents with each recipient's delivery and latest status."""

    document: Document
    deliveries: list[Delivery]
    latest: dict[str, Status]


@dataclass(frozen=True)
class DecodedAttachment:
    """An attachment decoded (and unzipped) into a spool file the caller must remove."""

    path: Path
    name: str | None
    content_type: str
    size: int
