"""Short-lived JWTs (RFC 7519, HS256) for the VGCA browser-plugin download and upload URLs.

The VGCA Sign Service downloads ``FileName`` and uploads the signed PDF to
``FileUploadHandler`` on the officer's behalf, without the agency's bearer token: it carries a
``JWTToken`` instead (VN-RULES.md). Each token names one session (``sub``) and one use
(``scope``: ``download`` or ``upload``) and expires with the session. The HMAC key is a random
secret of that session kept in the database (sealed with the axis's secrets key, migration
0011), so tokens survive a restart of the axis and one session's token never opens another.
The stdlib is enough for HS256; no JWT library needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

ISSUER = "lienthong"
_HEADER = {"alg": "HS256", "typ": "JWT"}
_MAX_LENGTH = 4096


class JwtError(Exception):
    """The token is malformed, forged, expired or for another use (one plain-words line)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JwtError("the token is not valid base64url") from exc


def _mac(secret: bytes, signing_input: str) -> bytes:
    return hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()


def issue(secret: bytes, session_id: str, scope: str, expires_at: datetime, now: datetime) -> str:
    """A compact HS256 JWT for ``scope`` on ``session_id``, valid until ``expires_at``."""
    claims = {
        "iss": ISSUER,
        "sub": session_id,
        "scope": scope,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{_b64(_mac(secret, signing_input))}"


def unverified_subject(token: str) -> str:
    """The ``sub`` claim before the signature is checked (to find the session's key)."""
    claims = _parts(token)[1]
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise JwtError("the token names no session")
    return sub


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    if not token or len(token) > _MAX_LENGTH or token.count(".") != 2:
        raise JwtError("not a JWT")
    head_b64, body_b64, sig_b64 = token.split(".")
    try:
        header = json.loads(_unb64(head_b64))
        claims = json.loads(_unb64(body_b64))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JwtError("the token is not valid JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("not a JWT")
    return header, claims, f"{head_b64}.{body_b64}", sig_b64


def verify(secret: bytes, token: str, session_id: str, scope: str, now: datetime) -> None:
    """Accept ``token`` only if it is ours (HS256 under ``secret``; ``alg`` other than HS256,
    including ``none``, is refused), for ``session_id`` and ``scope``, and not expired."""
    header, claims, signing_input, sig_b64 = _parts(token)
    if header.get("alg") != "HS256":
        raise JwtError("the token's algorithm is not HS256")
    if not hmac.compare_digest(_mac(secret, signing_input), _unb64(sig_b64)):
        raise JwtError("the token's signature is wrong")
    if claims.get("iss") != ISSUER or claims.get("sub") != session_id:
        raise JwtError("the token is for another session")
    if claims.get("scope") != scope:
        raise JwtError(f"the token is not for {scope}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or now.timestamp() >= exp:
        raise JwtError("the token has expired")
