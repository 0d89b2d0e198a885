"""Test PKI and real SoftHSM2 tokens for signing tests and benchmarks (no mocks).

``make_pki(dir)`` generates certs/pki.yml into ``dir`` on a free loopback port;
``SoftHsm(dir)`` points ``SOFTHSM2_CONF`` at a token directory inside ``dir`` and makes
tokens with ``softhsm2-util``, importing keys and certificates with ``pkcs11-tool`` (opensc).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from signing import devpki as pki_cli

SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "87654321"
AGENCY_TOKEN = "agency-hsm"
OFFICER_TOKEN = "officer-usb"
AGENCY_PIN = "1234-agency"
OFFICER_PIN = "5678-officer"
SPARE_TOKEN = "spare-token"
SPARE_PIN = "24682468"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_pki(directory: Path) -> pki_cli.DevPki:
    return pki_cli.generate(directory, port=free_port())


class SoftHsm:
    """A SoftHSM2 token store inside ``directory`` (must be set up before the module loads)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        tokens = directory / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        os.environ["SOFTHSM2_CONF"] = str(self.conf)

    def _run(self, *args: str, pin: str | None = None) -> None:
        env = dict(os.environ, SOFTHSM2_CONF=str(self.conf))
        if pin is not None:
            env["TEST_TOKEN_PIN"] = pin
        subprocess.run(args, check=True, env=env, capture_output=True)

    def init_token(self, label: str, pin: str) -> None:
        self._run(
            "softhsm2-util", "--init-token", "--free", "--label", label,
            "--pin", pin, "--so-pin", SO_PIN,
        )  # fmt: skip

    def import_key(
        self, label: str, pin: str, object_label: str, key_pem: Path, cert_der: bytes,
        object_id: str,
    ) -> None:  # fmt: skip
        key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
        key_der = self.directory / f".{object_label}.key.der"
        cert_file = self.directory / f".{object_label}.cert.der"
        key_der.write_bytes(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert_file.write_bytes(cert_der)
        common = ("pkcs11-tool", "--module", SOFTHSM2_MODULE, "--token-label", label,
                  "--login", "--pin", "env:TEST_TOKEN_PIN")  # fmt: skip
        try:
            obj = ("--id", object_id, "--label", object_label)
            self._run(*common, "--write-object", str(key_der), "--type", "privkey", *obj,
                      "--usage-sign", pin=pin)  # fmt: skip
            self._run(*common, "--write-object", str(cert_file), "--type", "cert", *obj,
                      pin=pin)  # fmt: skip
        finally:
            key_der.unlink()
            cert_file.unlink()


def make_tokens(pki: pki_cli.DevPki, directory: Path) -> SoftHsm:
    """An agency HSM token (seal key) and an officer USB token (two officers, revoked, expired)."""
    hsm = SoftHsm(directory)
    hsm.init_token(AGENCY_TOKEN, AGENCY_PIN)
    hsm.import_key(
        AGENCY_TOKEN, AGENCY_PIN, "seal", pki.key_path("seal"), pki.cert("seal").dump(), "01"
    )
    hsm.init_token(OFFICER_TOKEN, OFFICER_PIN)
    for n, label in enumerate(("officer", "officer2", "officer-revoked", "officer-expired")):
        hsm.import_key(
            OFFICER_TOKEN, OFFICER_PIN, label, pki.key_path(label), pki.cert(label).dump(),
            f"{n + 1:02x}",
        )  # fmt: skip
    # An empty token, for PIN tests (SoftHSM2 sees only tokens that exist when it loads).
    hsm.init_token(SPARE_TOKEN, SPARE_PIN)
    return hsm


def minimal_pdf(pages: int = 1, text: str = "Lien Thong test document") -> bytes:
    """A valid, unsigned A4 PDF with ``pages`` pages (hand-written, with a correct xref)."""
    safe = text.encode("ascii", "replace").decode().replace("(", "[").replace(")", "]")
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(pages))
        + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i in range(pages):
        stream = b"BT /F1 14 Tf 72 760 Td (%s - page %d) Tj ET" % (safe.encode(), i + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
