"""Test PKI and real SoftHSM2 tokens for signing tests and benchmarks (no mocks).

``make_pki(dir)`` generates certs/pki.yml into ``dir`` on a free loopback port;
``make_tokens(pki, dir)`` makes real SoftHSM2 tokens in ``dir`` (``signing.devpki``) and points
this process's ``SOFTHSM2_CONF`` at them.

SoftHSM2 reads ``SOFTHSM2_CONF`` and scans its token directory once, when a process first loads
the module: tokens made later (or in another directory) are invisible to that process. So the
test session makes ONE store with every token any test needs (``tests/conftest.py``, fixture
``softhsm``) before anything loads the module; tests never make tokens of their own.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
from pathlib import Path

import pytest
from pyhanko.keys import load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing import devpki as pki_cli

SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
AGENCY_TOKEN = "agency-hsm"
OFFICER_TOKEN = "officer-usb"
AGENCY_PIN = "1234-agency"
OFFICER_PIN = "5678-officer"
SPARE_TOKEN = "spare-token"
SPARE_PIN = "24682468"
# The axis seal of signed receipts (server/exchange/receipts.py, ``[seal]``).
AXIS_SEAL_TOKEN = "axis-seal"
AXIS_SEAL_PIN = "2468-seal"
# The per-agency seal keys of the seal endpoint (``[signing] seal_keys``), one token per agency.
AGENCY_SEAL_TOKENS = {"seal-nghe-an": "1357-seal"}
OFFICERS = ("officer", "officer2", "officer-revoked", "officer-expired")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(start: list[str], stop: list[str]) -> str:
    """Run a throwaway service's start script (tests/services/*/start-*.sh) and return what it
    printed on stdout; when it fails, run its ``stop`` command (which cleans up what it left)
    and fail the test with the end of its stderr."""
    name = Path(start[0]).name
    try:
        return subprocess.run(start, capture_output=True, text=True, timeout=180, check=True).stdout
    except subprocess.CalledProcessError as exc:
        subprocess.run(stop, capture_output=True)
        pytest.fail(f"{name} failed:\n{exc.stderr[-3000:]}")


def clean_env() -> dict[str, str]:
    """The caller's environment without settings that would change what a demo or CLI does."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LIENTHONG_") and k not in {"SOFTHSM2_CONF"}
    }


def make_pki(directory: Path) -> pki_cli.DevPki:
    return pki_cli.generate(directory, port=free_port())


class SoftHsm(pki_cli.SoftHsmStore):
    """The store of the test session, active in this process.

    ``pin_dir`` holds ``LABEL.pin`` files of the seal tokens (what ``[signing] seal_pin_dir``
    and ``[seal] pin_file`` read).
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.pin_dir = self.directory / "pins"
        self.pin_dir.mkdir(exist_ok=True)
        self.activate()

    def pin_file(self, label: str) -> Path:
        """The PIN file of seal token ``label``."""
        return self.pin_dir / f"{label}.pin"


def make_tokens(pki: pki_cli.DevPki, directory: Path) -> SoftHsm:
    """Every token the suite uses, in one store (all must exist before the module loads):

    - ``agency-hsm``: the agency seal key (``seal``), signing library tests;
    - ``officer-usb``: the officers' keys (two officers, a revoked one, an expired one);
    - ``spare-token``: empty, for PIN tests;
    - ``axis-seal``: the axis seal key of signed receipts;
    - ``seal-nghe-an`` (``AGENCY_SEAL_TOKENS``): an agency's own seal key on the axis HSM.

    Tokens opened by different suites are different tokens, so that one suite closing its
    session (a server shutting down) never logs another out.
    """
    hsm = SoftHsm(directory)
    pki_cli.make_dev_tokens(
        pki, directory, agency_pin=AGENCY_PIN, officer_pin=OFFICER_PIN, officers=OFFICERS
    )
    hsm.init_token(SPARE_TOKEN, SPARE_PIN)
    seal_key, seal_cert = pki.key_path("seal"), pki.cert("seal").dump()
    for label, pin in ((AXIS_SEAL_TOKEN, AXIS_SEAL_PIN), *AGENCY_SEAL_TOKENS.items()):
        hsm.init_token(label, pin)
        hsm.import_key(label, pin, "seal", seal_key, seal_cert, "01")
        hsm.pin_file(label).write_text(pin + "\n")
    return hsm


def minimal_pdf(pages: int = 1, text: str = "Lien Thong test document", padding: int = 0) -> bytes:
    """A valid, unsigned A4 PDF with ``pages`` pages (hand-written, with a correct xref);
    ``padding`` bytes in one extra (unreferenced) stream object make it as large as wanted."""
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
    if padding:
        blob = (bytes(range(256)) * (padding // 256 + 1))[:padding]
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(blob), blob))
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


def pem_signer(pki: pki_cli.DevPki, label: str = "officer") -> signers.SimpleSigner:
    """A pyHanko signer with the PEM key of ``label`` from the dev PKI (no token: for tests that
    need a signed file, not the PKCS#11 path), its chain up to the government CA."""
    key = load_private_key_from_pemder(str(pki.key_path(label)), passphrase=None)
    return signers.SimpleSigner(
        signing_cert=pki.cert(label),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([pki.cert("gov")]),
    )


def signed_pdf(pki: pki_cli.DevPki, label: str = "officer") -> bytes:
    """:func:`minimal_pdf` signed (B-B, field ``ChuKy1``) by ``label`` of the dev PKI."""
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(minimal_pdf())),
        signers.PdfSignatureMetadata(field_name="ChuKy1"),
        signer=pem_signer(pki, label),
        output=out,
    )
    return out.getvalue()
