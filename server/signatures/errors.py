"""The refusals of signing sessions, seals and verification, each with its problem type.

``detail`` is one line in plain words. The types for the ``signing`` library's own errors
(a PDF that cannot be signed, a refused certificate, a failed or unavailable signing service)
are here too: the HTTP layer maps those errors to them by slug.
"""

from __future__ import annotations

from server.runtime.problems import (
    BAD_REQUEST,
    NOT_FOUND,
    UNAUTHORIZED,
    UNSUPPORTED_MEDIA_TYPE,
    DomainError,
    problem_type,
)

SESSION_CLOSED = problem_type(
    "session-closed",
    409,
    "Signing session already signed",
    "The signing session was signed already; it cannot be signed twice.",
)
SESSION_EXPIRED = problem_type(
    "session-expired",
    410,
    "Signing session expired",
    "The signing session expired before it was signed; create a new one.",
)
problem_type(
    "invalid-pdf",
    422,
    "Not a PDF that can be signed",
    "The file is not a PDF, is corrupt, or is encrypted.",
)
problem_type(
    "certificate-rejected",
    422,
    "Signer's certificate refused",
    "The signer's certificate is expired, revoked, untrusted or unreadable: nothing signed.",
)
SIGNATURE_INVALID = problem_type(
    "signature-invalid",
    422,
    "Signature refused",
    "The raw signature does not verify against the enrolled certificate, or the uploaded "
    "PDF is not the served PDF plus exactly one valid signature by that certificate.",
)
NO_SEAL_KEY = problem_type(
    "no-seal-key",
    422,
    "No seal key for the agency",
    "The axis holds no seal key for the calling agency (signing.seal_keys).",
)
problem_type(
    "signing-failed",
    422,
    "Signing failed",
    "The PDF could not be signed as asked; nothing was stored.",
)
SIGNING_UNAVAILABLE = problem_type(
    "signing-unavailable",
    503,
    "Signing unavailable",
    "A service signing needs (TSA, OCSP/CRL, the seal token, trust roots) is unavailable; "
    "nothing was stored. Retry later.",
    retry=True,
)
VERIFICATION_BUSY = problem_type(
    "verification-busy",
    503,
    "Verification busy",
    "Too many signature verifications are in progress; retry after the Retry-After delay.",
)


# --- signing sessions and seals (server/signatures/sessions.py) ------------------------------


class SigningDeskError(DomainError):
    """Base of the refusals of signing sessions and seals; ``detail`` is one line in plain
    words."""


class BadSigningRequest(SigningDeskError):
    """The request is incomplete or contradictory (no certificate, unknown profile...)."""

    problem = BAD_REQUEST


class SessionNotFound(SigningDeskError):
    """No such session, or another agency's (the two are not told apart)."""

    problem = NOT_FOUND


class SessionExpired(SigningDeskError):
    """The session expired before it was signed."""

    problem = SESSION_EXPIRED


class SessionClosed(SigningDeskError):
    """The session was signed already; it cannot be signed twice."""

    problem = SESSION_CLOSED


class SignatureRejected(SigningDeskError):
    """The raw signature or the uploaded PDF does not satisfy the session."""

    problem = SIGNATURE_INVALID


class UploadUnauthorized(SigningDeskError):
    """The plugin's JWT is missing, forged, expired or for another session or use."""

    problem = UNAUTHORIZED


class NoSealKey(SigningDeskError):
    """The axis holds no seal key for the calling agency."""

    problem = NO_SEAL_KEY


class SigningUnavailable(SigningDeskError):
    """Signing is not configured (no trust roots) or a service it needs is down."""

    problem = SIGNING_UNAVAILABLE


# --- verification (server/signatures/verification.py) ---------------------------------------


class VerificationError(DomainError):
    """Base of the verification service's refusals."""


class NotAPdf(VerificationError):
    """The attachment asked about is not a PDF: there is nothing to verify."""

    problem = UNSUPPORTED_MEDIA_TYPE


class VerifierBusy(VerificationError):
    """Too many public verifications in progress or waiting; retry after ``retry_after`` s."""

    problem = VERIFICATION_BUSY

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
