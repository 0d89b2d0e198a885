"""Client certificates (mTLS) as credentials, beside bearer tokens (server/http/auth.py).

A certificate verified in the TLS handshake against ``[server.tls] client_ca`` speaks for the
agency its SHA-256 fingerprint is bound to (``lienthong agency cert add``). Why a registered
fingerprint and not the subject or a SAN: the government CA's certificates carry no organ id
in a standard place, and a name any CA could issue again would make every trusted CA able to
speak for every agency; a binding names one certificate, made by the axis's operator, and is
revoked by its removal (as X-Road members register their certificates centrally).

With a token and a certificate, both must speak for the same agency. An agency marked
``--require`` (another axis's account: a federation link) is accepted only with one of its
own certificates, a bearer token alone is refused.
"""

from __future__ import annotations

from aiohttp import web

from server.http.errors import HttpProblem
from server.runtime.tls import fingerprint, peer_certificate
from storage.db import Tx
from storage.repos.certificates import CertificateRepo
from storage.repos.tokens import Principal

CERTIFICATE_ROLES = frozenset({"agency"})


def presented_certificate(request: web.Request) -> bytes | None:
    """The DER of the verified client certificate of the request's connection, or None."""
    return peer_certificate(request.transport)


async def authenticate(
    tx: Tx, request: web.Request, by_token: Principal | None
) -> Principal | None:
    """The principal of the request from its client certificate and/or its token's principal
    ``by_token``; None when neither gives one; HttpProblem(unauthorized) when they disagree or
    the agency needs its certificate."""
    der = presented_certificate(request)
    certs = CertificateRepo(tx)
    bound = None if der is None else await certs.find(fingerprint(der))
    principal = by_token
    if principal is None and bound is not None:
        principal = Principal(f"cert:{bound.fingerprint[:16]}", bound.organ_id, CERTIFICATE_ROLES)
    if principal is None:
        if der is not None:
            raise HttpProblem(
                "unauthorized", "The client certificate is not bound to an agency of this axis."
            )
        return None
    if bound is not None and bound.organ_id != principal.organ_id:
        raise HttpProblem(
            "unauthorized", "The bearer token and the client certificate name other agencies."
        )
    if bound is None and await certs.required(principal.organ_id):
        raise HttpProblem(
            "unauthorized", "This agency must call with its client certificate (mutual TLS)."
        )
    return principal
