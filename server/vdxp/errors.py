"""Errors of the national axis protocol (VDXP): each one becomes a ``FAIL`` answer.

A VDXP client never sees an HTTP error page: every failure is answered with HTTP 200 and
``{"status": "FAIL", "ErrorCode": ..., "ErrorDesc": ...}`` (the Java SDK reads only the body).
The codes are stable strings so agency software can branch on them; ``"0"`` means success.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable ``ErrorCode`` values of FAIL answers (``"0"`` is success)."""

    OK = "0"
    # Authentication and the signed headers (mã lỗi xác thực).
    MISSING_HEADER = "1001"
    UNKNOWN_SYSTEM = "1002"
    BAD_SIGNATURE = "1003"
    SIGNED_VALUE_MISMATCH = "1004"
    MANGLED_HEADER = "1005"
    NOT_SIGNED = "1006"
    AMBIGUOUS_HEADER = "1007"
    STALE_TIMESTAMP = "1008"  # the signed timestamp is outside [vdxp] timestamp_window
    REPLAYED = "1009"  # the same signed request that changes state, seen within the window
    # The request itself.
    BAD_PARAMETER = "2001"
    HASH_FILE_MISMATCH = "2002"
    INVALID_PACKAGE = "2003"
    FORBIDDEN = "2004"
    UNKNOWN_RECIPIENT = "2005"
    CONFLICT = "2006"
    NOT_FOUND = "2007"
    TOO_LARGE = "2008"
    UNKNOWN_OPERATION = "2009"
    # The axis.
    UNAVAILABLE = "5001"
    INTERNAL = "5000"


class VdxpError(Exception):
    """Base of every VDXP failure; ``code`` and ``desc`` go into the FAIL answer as they are.

    ``desc`` is plain words for the agency's operator, never a secret or a stack trace.
    """

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, desc: str, code: ErrorCode | None = None) -> None:
        super().__init__(desc)
        self.desc = desc
        if code is not None:
            self.code = code


class AuthError(VdxpError):
    """The request is not authenticated: missing, unknown or badly signed headers."""

    code = ErrorCode.BAD_SIGNATURE


class RequestError(VdxpError):
    """The request is authenticated but cannot be carried out as asked."""

    code = ErrorCode.BAD_PARAMETER


class NotFoundError(VdxpError):
    """No such item for this caller (also said for another agency's item: nothing leaks)."""

    code = ErrorCode.NOT_FOUND


class CredentialsError(VdxpError):
    """Managing system ids and secrets failed (unknown agency, taken system id, no key)."""

    code = ErrorCode.BAD_PARAMETER
