"""``lienthong sign --session ID --server URL ...``: an officer signs an axis session with their
own token (the second step of two-step signing; docs/signing.md).

The axis prepared the PDF and holds the digest; the private key never leaves the officer's
token. The command reads the session, checks that the token's certificate is the one the session
was opened for, signs the digest on the token (``CKM_RSA_PKCS`` over the SHA-256 DigestInfo,
or ECDSA), sends the raw signature, and with ``-o`` downloads the signed PDF (atomically).
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.http_client import AxisClient
from server.cli.options import client_settings, resolve_pin

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _sign_digest(token: Any, signer: Any, digest: bytes) -> bytes:
    """The raw signature of ``digest`` by the signer's key, in the form CMS expects."""
    from asn1crypto.algos import DSASignature
    from pkcs11 import KeyType, Mechanism

    key = signer._key_handle  # loaded by Token.signer, used on the module's own thread

    def _sign() -> bytes:
        if key.key_type == KeyType.RSA:
            return bytes(key.sign(SHA256_DIGEST_INFO + digest, mechanism=Mechanism.RSA_PKCS))
        if key.key_type == KeyType.EC:
            p1363 = bytes(key.sign(digest, mechanism=Mechanism.ECDSA))
            return bytes(DSASignature.from_p1363(p1363).dump())
        raise CliError("only RSA and EC keys can sign a session")

    return bytes(token.run(_sign))


def sign_session(args: argparse.Namespace) -> int:
    """Run ``lienthong sign --session``; one line on success, CliError otherwise."""
    from signing import SigningError, Token

    settings = client_settings(args)
    client = AxisClient(settings.server, settings.token)
    path = f"/api/v1/signing-sessions/{args.session}"
    session = client.request("GET", path).body
    if not isinstance(session, dict):
        raise CliError("the axis answered without a session")
    if session.get("state") != "pending" or "digest" not in session:
        raise CliError(f"session {args.session} is {session.get('state')}: nothing to sign")
    try:
        pin = resolve_pin(args)
        token = Token.open(
            args.token_module, label=args.token_label, serial=args.token_serial, pin=pin
        )
        signer = token.signer(args.key_label, cert_label=args.cert_label)
        if signer.signing_cert.sha256.hex() != session.get("certificate_sha256"):
            raise CliError(
                "the token's certificate is not the one this session was opened for "
                f"({session.get('signer')})"
            )
        raw = _sign_digest(token, signer, bytes.fromhex(session["digest"]["hex"]))
    except SigningError as exc:
        raise CliError(str(exc)) from None
    done = client.request(
        "PUT", f"{path}/signature", json_body={"signature": base64.b64encode(raw).decode()}
    ).body
    if args.output:
        target = Path(args.output)
        client.download_to(f"{path}/signed", target, label="signed PDF")
        print(f"signed session {args.session}: {target}")
    else:
        print(f"signed session {args.session}: {done['signed']['url']}")
    return 0
