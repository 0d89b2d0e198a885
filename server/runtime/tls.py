"""TLS of the axis on the standard library's ``ssl``: the server's context (``[server.tls]``),
the client context of federation (``[federation] client_certificate``), and the client
certificate a request arrived with.

Defaults (docs/operations.md "TLS and client certificates"): TLS 1.2 and 1.3 only; on TLS 1.2
only ECDHE key exchange with AEAD ciphers (forward secrecy); no TLS compression (CRIME), no
renegotiation. A client certificate is verified against ``client_ca`` during the handshake
(an untrusted one ends the handshake); which agency it speaks for is the binding of its
SHA-256 fingerprint (``lienthong agency cert add``, storage/repos/certificates.py).
Revocation of a client certificate is its binding's removal: no CRL is read here.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.runtime.config import Config, ConfigError, FederationSettings, optional_secret

SERVER_KEY_PASSWORD_ENV = "LIENTHONG_SERVER_TLS_KEY_PASSWORD"  # noqa: S105 (a variable name)
CLIENT_KEY_PASSWORD_ENV = "LIENTHONG_FEDERATION_CLIENT_KEY_PASSWORD"  # noqa: S105 (a name)
# TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites are all fine.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def _harden(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(TLS12_CIPHERS)
    return context


def _load_chain(
    context: ssl.SSLContext, certificate: Path, key: Path, password: str | None, setting: str
) -> None:
    try:
        context.load_cert_chain(certificate, key, password=password)
    except FileNotFoundError as exc:
        raise ConfigError(f"setting {setting}: {exc.filename} does not exist") from None
    except ssl.SSLError as exc:
        # A wrong password, a key of another certificate, not PEM: OpenSSL's reason, one line.
        reason = exc.reason or str(exc)
        raise ConfigError(f"setting {setting}: certificate and key unusable ({reason})") from None
    except OSError as exc:
        raise ConfigError(f"setting {setting}: cannot read it ({exc.strerror})") from None


def _load_cas(context: ssl.SSLContext, path: Path, setting: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except FileNotFoundError:
        raise ConfigError(f"setting {setting}: {path} does not exist") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"setting {setting}: no usable CA certificate ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"setting {setting}: cannot read it ({exc.strerror})") from None


def server_context(config: Config, env: Mapping[str, str] = os.environ) -> ssl.SSLContext | None:
    """The SSL context of ``[server.tls]``, or None when the axis serves plain HTTP.
    ConfigError (one line, naming the setting) when a file is missing or unusable."""
    tls = config.tls
    if tls.certificate is None or tls.key is None:
        return None
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    password = optional_secret(
        SERVER_KEY_PASSWORD_ENV, tls.key_password_file, "server.tls.key_password_file", env
    )
    _load_chain(context, tls.certificate, tls.key, password, "server.tls.certificate")
    if tls.client_ca is not None:
        _load_cas(context, tls.client_ca, "server.tls.client_ca")
        context.verify_mode = (
            ssl.CERT_REQUIRED if tls.client_certificates == "require" else ssl.CERT_OPTIONAL
        )
    return context


def client_context(
    settings: FederationSettings, env: Mapping[str, str] = os.environ
) -> ssl.SSLContext | None:
    """The context of this axis's requests to other axes (forwards, directory sync): their
    server certificates checked against ``server_ca`` only (else the system's roots) and their
    host name,
    and this axis's client certificate presented when configured. None when neither is set
    (aiohttp's default verification then applies)."""
    if settings.client_certificate is None and settings.server_ca is None:
        return None
    # PROTOCOL_TLS_CLIENT: the server's certificate and host name are checked.
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    if settings.server_ca is not None:  # only these CAs: a private federation PKI
        _load_cas(context, settings.server_ca, "federation.server_ca")
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if settings.client_certificate is not None:
        if settings.client_key is None:
            raise ConfigError("setting federation.client_key: needed with client_certificate")
        password = env.get(CLIENT_KEY_PASSWORD_ENV) or None
        _load_chain(
            context,
            settings.client_certificate,
            settings.client_key,
            password,
            "federation.client_certificate",
        )
    return context


def fingerprint(der: bytes) -> str:
    """The SHA-256 of a certificate's DER bytes, lowercase hex: what a binding names."""
    return hashlib.sha256(der).hexdigest()


def peer_certificate(transport: Any) -> bytes | None:
    """The DER of the client certificate verified on this connection, or None (plain HTTP,
    no certificate presented). Only verified certificates reach here: with ``client_ca`` set
    an untrusted one ends the handshake, and without it none is asked for."""
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der
