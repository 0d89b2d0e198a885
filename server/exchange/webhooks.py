"""Signing and verifying the webhook requests of push delivery (docs/delivery.md).

Each push is ``POST <url>`` with the package as the body and these headers:

``X-Lienthong-Timestamp``
    Unix time (seconds) when the request was signed.
``X-Lienthong-Signature``
    ``v1=`` + lowercase hex HMAC-SHA256, keyed with the webhook secret, over the ASCII
    timestamp, one ``.`` and the exact body bytes.
``Idempotency-Key``
    The delivery id: the same on every retry of one delivery. With the sender and the
    DocumentId it is what a receiver de-duplicates on (at least once on the wire).
``X-Lienthong-Delivery``, ``X-Lienthong-Package-Id``, ``X-Lienthong-Kind``,
``X-Lienthong-Sender``, ``X-Lienthong-Recipient``, ``X-Lienthong-Document-Id``
    What the package is; the DocumentId is percent-encoded (RFC 3986) as it may hold any text.

A receiver checks the signature with :func:`verify` (constant-time comparison, and a bounded
clock skew so that a captured request cannot be replayed later) before trusting any header.

Where a webhook may point (issue 18, finding 2): an agency registers the URL, so the axis would
otherwise POST wherever an agency's token says, from inside the axis's network. A webhook may
not reach this host (loopback), its link (link-local: 169.254.169.254, the cloud metadata
service), an unspecified or multicast address, unless the address is in ``[delivery]
webhook_allow``, and never the axis's own listening port. :func:`target_refusal` checks the URL
when it is registered; :func:`webhook_session` checks every address a push connects to (after
DNS, so a name that resolves to loopback later is caught), and pushes follow no redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Mapping
from urllib.parse import quote, unquote

import aiohttp

from server.runtime.config import Config
from signing.netguard import guarded_socket_factory, is_host_local, parse_networks

TIMESTAMP_HEADER = "X-Lienthong-Timestamp"
SIGNATURE_HEADER = "X-Lienthong-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DELIVERY_HEADER = "X-Lienthong-Delivery"
PACKAGE_HEADER = "X-Lienthong-Package-Id"
KIND_HEADER = "X-Lienthong-Kind"
SENDER_HEADER = "X-Lienthong-Sender"
RECIPIENT_HEADER = "X-Lienthong-Recipient"
DOCUMENT_ID_HEADER = "X-Lienthong-Document-Id"

SCHEME = "v1"
DEFAULT_TOLERANCE = 300  # seconds of clock skew accepted by verify()


class WebhookError(Exception):
    """Base of webhook errors."""


class BadSignature(WebhookError):
    """The request's signature is missing, malformed, stale or does not match."""


def signer(secret: str, timestamp: int) -> hmac.HMAC:
    """An HMAC-SHA256 already fed with ``<timestamp>.``: feed it the body, in chunks if large."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(f"{timestamp}.".encode("ascii"))
    return mac


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Lienthong-Signature`` value of ``body`` signed at ``timestamp``."""
    mac = signer(secret, timestamp)
    mac.update(body)
    return f"{SCHEME}={mac.hexdigest()}"


def encode_document_id(document_id: str) -> str:
    """A DocumentId as an ASCII header value."""
    return quote(document_id, safe=",/:.-_")


def decode_document_id(value: str) -> str:
    """The DocumentId back from its header value."""
    return unquote(value)


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Check a received push; return its timestamp. Raise :class:`BadSignature` when the
    signature is absent or wrong, or the timestamp is more than ``tolerance`` seconds away."""
    raw_time = headers.get(TIMESTAMP_HEADER)
    raw_sig = headers.get(SIGNATURE_HEADER)
    if not raw_time or not raw_sig:
        raise BadSignature(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        timestamp = int(raw_time)
    except ValueError:
        raise BadSignature(f"{TIMESTAMP_HEADER} is not a Unix time") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise BadSignature("the signature is too old (or from the future)")
    expected = sign(secret, timestamp, body)
    offered = [part.strip() for part in raw_sig.split(",")]
    if not any(hmac.compare_digest(expected, part) for part in offered):
        raise BadSignature("the signature does not match")
    return timestamp


def _own_sockets(config: Config) -> frozenset[tuple[str, int]]:
    """The (address, port) pairs the axis listens on, as far as its config tells."""
    port = config.server.port
    own = {("127.0.0.1", port), ("::1", port), ("0.0.0.0", port), ("::", port)}  # noqa: S104
    try:
        own.add((str(ipaddress.ip_address(config.server.host)), port))
    except ValueError:
        pass  # a host name: its loopback forms are above
    return frozenset(own)


def target_refusal(url_host: str, url_port: int, config: Config) -> str | None:
    """Why a webhook may not point at ``url_host:url_port`` (None: it may, as far as can be
    told before connecting; a name is checked again at every connection)."""
    host = url_host.strip("[]").lower()
    allow = parse_networks(config.delivery.webhook_allow)
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        return None
    if (ip, url_port) in _own_sockets(config):
        return "it is this axis itself"
    if is_host_local(ip) and not any(ipaddress.ip_address(ip) in n for n in allow):
        return "it is a loopback, link-local, unspecified or multicast address"
    return None


def webhook_session(config: Config) -> aiohttp.ClientSession:
    """The HTTP session of webhook pushes: it connects only where :func:`target_refusal`
    allows, checked on the address actually connected to."""
    factory = guarded_socket_factory(
        parse_networks(config.delivery.webhook_allow),
        private_ok=True,
        refused=_own_sockets(config),
    )
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=factory))
