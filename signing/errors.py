"""Errors of the signing package: one base class, one subclass per thing that can go wrong.

Messages are one line, in plain words, and never contain a PIN or key material.
"""

from __future__ import annotations


class SigningError(Exception):
    """Base class of every expected failure in :mod:`signing`."""


class InputPdfError(SigningError):
    """The input is not a PDF we can sign: not a PDF, corrupt, or encrypted."""


class TokenError(SigningError):
    """The PKCS#11 module or token cannot be used (missing module, no such token, device error)."""


class PinError(TokenError):
    """The PIN is wrong, locked, expired, or could not be obtained."""


class KeyNotFoundError(TokenError):
    """No private key (or certificate) with the requested label on the token."""


class CertificateRejectedError(SigningError):
    """The signer's certificate is expired, not yet valid, revoked or untrusted: not signing."""


class TimestampError(SigningError):
    """The time-stamping authority cannot be reached or answered badly (B-T and above)."""


class RevocationUnavailableError(SigningError):
    """Revocation information (OCSP/CRL) cannot be fetched for B-LT/B-LTA."""


class AppearanceError(SigningError):
    """A visible appearance cannot be laid out (missing image, bad title, field does not exist)."""


class SessionError(SigningError):
    """A two-step signing session is unknown, expired, or its raw signature does not verify."""
