"""The exchange rules of the axis (trục liên thông): accept, route, acknowledge, answer.

Handlers stay thin; everything a package must satisfy to be accepted, who may see what, and
what rows one accepted package produces lives here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import edxml
from server.config import Config
from storage.db import Database
from storage.objects.base import ObjectStore


class ExchangeError(Exception):
    """Base of every refusal by the exchange rules; ``detail`` is a plain-words sentence."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class EmptyPackage(ExchangeError):
    """The request body was empty."""


class WrongKind(ExchangeError):
    """A status message where a document was expected, or the other way round."""


class InvalidPackage(ExchangeError):
    """The package breaks edXML rules (``edxml.validate`` found errors)."""

    def __init__(self, problems: Sequence[edxml.Problem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"The package is not valid edXML: {first.path}: {first.message}{more}.",
            problems=[
                {"path": p.path, "message": p.message, "severity": p.severity} for p in problems
            ],
        )


class SenderMismatch(ExchangeError):
    """From/OrganId is not the authenticated agency."""


class UnknownRecipients(ExchangeError):
    """Some To/OrganId are not agencies of this axis."""

    def __init__(self, unknown: Iterable[str]) -> None:
        ids = sorted(set(unknown))
        super().__init__(
            "These recipients are not known to this axis: " + ", ".join(ids) + ".",
            unknown=ids,
        )


class DuplicateDocument(ExchangeError):
    """The sender already used this DocumentId for a package with other bytes."""


class NotOriginalSender(ExchangeError):
    """A revoke/update/replace of a document sent by another agency."""


class OriginalNotFound(ExchangeError):
    """A revoke/update/replace naming no document the caller sent here."""


class UnknownDocument(ExchangeError):
    """A status message about no document the caller took part in."""


class StatusNotAllowed(ExchangeError):
    """A status code the caller's role (sender or recipient) may not send."""


class DocumentNotFound(ExchangeError):
    """No such document for this caller (absent, or visible only to other agencies)."""


class Exchange:
    """The exchange rules bound to one axis's configuration, database and object store."""

    def __init__(self, config: Config, database: Database, objects: ObjectStore) -> None:
        self.config = config
        self.database = database
        self.objects = objects
