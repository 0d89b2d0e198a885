"""The edxml error hierarchy: every failure of parsing or building is an ``EdxmlError``."""

from __future__ import annotations


class EdxmlError(Exception):
    """Base of every error raised by :mod:`edxml`.

    ``path`` is an XPath-ish location such as ``MessageHeader/To[2]/OrganId`` (empty when the
    error concerns the whole input); ``line`` is the 1-based source line when known.
    """

    def __init__(self, message: str, *, path: str = "", line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if path:
            where.append(path)
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class NotWellFormedError(EdxmlError):
    """The input is not well-formed XML (unclosed element, bad bytes, empty input...)."""


class UnsafeXmlError(EdxmlError):
    """The input uses XML features refused for safety: DTDs, entities, external references."""


class LimitExceededError(EdxmlError):
    """The input exceeds a configured limit (size, depth, attachment count, zip expansion)."""


class NotEdxmlError(EdxmlError):
    """Well-formed XML that is not an edXML package or status message."""


class InvalidValueError(EdxmlError):
    """A value that cannot be read at all (a date that is no date, a non-numeric code)."""


class InvalidOrganIdError(EdxmlError):
    """A string that is not an organisation identifier (mã định danh)."""


class SignatureError(EdxmlError):
    """XML-DSig could not be produced (bad key or certificate)."""
