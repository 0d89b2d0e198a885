"""Bearer tokens of agency systems: made, hashed and read from a header.

A token is ``lt_`` + 32 random bytes (URL-safe base64); only its SHA-256 hex is stored, so a
leaked database does not leak usable tokens. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "lt_"  # noqa: S105 (a prefix that marks tokens, not a secret)
_MAX_TOKEN_LENGTH = 200


def new_token() -> tuple[str, str]:
    """A fresh bearer token and its hash: ``(token, token_hash)``. Show the token once only."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """The SHA-256 hex of a token: the only form in which tokens are stored or compared."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None when absent/malformed.

    The scheme is case-insensitive (RFC 9110); the token must be printable ASCII without spaces.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if not hmac.compare_digest(scheme.lower(), "bearer"):
        return None
    token = token.strip()
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    if not all(33 <= ord(c) <= 126 for c in token):
        return None
    return token
