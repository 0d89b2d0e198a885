"""The exchange's refusals, each with the problem type an HTTP answer gives it.

``detail`` is a plain-words sentence about *this* package; ``extra`` members (``problems``,
``unknown``) go into the problem document. The types of reading edXML itself (malformed,
unsafe, not edXML...) are here too: the HTTP layer maps the ``edxml`` library's errors to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import edxml
from server.runtime.problems import BAD_REQUEST, NOT_FOUND, DomainError, problem_type

# --- reading a package (the edxml library's errors, mapped by server/http/errors.py) ----------

EMPTY_BODY = problem_type("empty-body", 400, "Empty body", "The request carried no package.")
problem_type(
    "malformed-xml", 400, "Malformed XML", "The body is not well-formed XML (or not valid UTF-8)."
)
problem_type(
    "unsafe-xml",
    400,
    "Unsafe XML",
    "The body uses a DTD, entities or external references, which are refused.",
)
problem_type(
    "not-edxml",
    422,
    "Not an edXML package",
    "Well-formed XML, but not an edXML package or status message.",
)
problem_type(
    "invalid-value",
    422,
    "Invalid value",
    "A value in the package cannot be read (a date that is no date...).",
)
problem_type(
    "limit-exceeded",
    422,
    "Package exceeds a parser limit",
    "Too deep, too many attachments, or an attachment that expands too much.",
)
INVALID_PACKAGE = problem_type(
    "invalid-package",
    422,
    "Invalid edXML package",
    "The package breaks edXML rules; `problems` lists each with its location.",
)

# --- the exchange's own rules --------------------------------------------------------------------

SENDER_MISMATCH = problem_type(
    "sender-mismatch",
    403,
    "Sender is not the caller",
    "The package's From/OrganId is not the agency the token belongs to.",
)
NOT_ORIGINAL_SENDER = problem_type(
    "not-original-sender",
    403,
    "Not the original sender",
    "Only the sender of a document may revoke, update or replace it.",
)
STATUS_NOT_ALLOWED = problem_type(
    "status-not-allowed",
    403,
    "Status code not allowed for the caller",
    "Recipients may send 01-06, 15 and 16; only the sender may send 13.",
)
DUPLICATE_DOCUMENT = problem_type(
    "duplicate-document",
    409,
    "DocumentId already used",
    "The sender already sent another package with this DocumentId.",
)
ROUTING_LOOP = problem_type(
    "routing-loop",
    409,
    "Routing loop",
    "The package already passed through this axis (its id is in an earlier TraceHeader).",
)
WRONG_KIND = problem_type(
    "wrong-kind",
    422,
    "Wrong kind of package",
    "A status message sent to /documents, or a document sent to /statuses.",
)
UNKNOWN_RECIPIENT = problem_type(
    "unknown-recipient",
    422,
    "Unknown recipient",
    "One or more To/OrganId are not agencies known to this axis; see `unknown`.",
)
NOT_ROUTABLE = problem_type(
    "not-routable",
    422,
    "Nothing to route",
    "A package forwarded by another axis names no recipient this axis routes.",
)
ORIGINAL_NOT_FOUND = problem_type(
    "original-not-found",
    422,
    "Original document not found",
    "A revoke/update/replace names a document the caller never sent here.",
)
UNKNOWN_DOCUMENT = problem_type(
    "unknown-document",
    422,
    "Unknown document",
    "The status message's ResponseFor names no document the caller took part in.",
)


class ExchangeError(DomainError):
    """Base of every refusal by the exchange rules; ``detail`` is a plain-words sentence."""

    problem = BAD_REQUEST


class EmptyPackage(ExchangeError):
    """The request body was empty."""

    problem = EMPTY_BODY


class WrongKind(ExchangeError):
    """A status message where a document was expected, or the other way round."""

    problem = WRONG_KIND


class InvalidPackage(ExchangeError):
    """The package breaks edXML rules (``edxml.validate`` found errors)."""

    problem = INVALID_PACKAGE

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

    problem = SENDER_MISMATCH


class UnknownRecipients(ExchangeError):
    """Some To/OrganId are not agencies of this axis."""

    problem = UNKNOWN_RECIPIENT

    def __init__(self, unknown: Iterable[str]) -> None:
        ids = sorted(set(unknown))
        super().__init__(
            "These recipients are not known to this axis: " + ", ".join(ids) + ".",
            unknown=ids,
        )


class DuplicateDocument(ExchangeError):
    """The sender already used this DocumentId for a package with other bytes."""

    problem = DUPLICATE_DOCUMENT


class NotOriginalSender(ExchangeError):
    """A revoke/update/replace of a document sent by another agency."""

    problem = NOT_ORIGINAL_SENDER


class OriginalNotFound(ExchangeError):
    """A revoke/update/replace naming no document the caller sent here."""

    problem = ORIGINAL_NOT_FOUND


class UnknownDocument(ExchangeError):
    """A status message about no document the caller took part in."""

    problem = UNKNOWN_DOCUMENT


class StatusNotAllowed(ExchangeError):
    """A status code the caller's role (sender or recipient) may not send."""

    problem = STATUS_NOT_ALLOWED


class DocumentNotFound(ExchangeError):
    """No such document for this caller (absent, or visible only to other agencies)."""

    problem = NOT_FOUND


class TraceNotPlaced(ExchangeError):
    """The axis could not place its TraceHeader in the package header."""

    problem = INVALID_PACKAGE


class RoutingLoop(ExchangeError):
    """The package already passed through this axis (its id is in an earlier TraceHeader)."""

    problem = ROUTING_LOOP


class NotRoutable(ExchangeError):
    """A package forwarded by another axis names no recipient this axis should route."""

    problem = NOT_ROUTABLE
