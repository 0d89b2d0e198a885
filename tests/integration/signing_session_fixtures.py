"""Fixtures of the signing-session and seal API tests: the session's test PKI with its
OCSP/CRL/TSA on 127.0.0.1 and its SoftHSM2 store (tests/conftest.py: an officer's USB token, an
agency seal token), and the axis configured to use them (``axis_config`` overrides the default
one of axis_client.py).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from axis_client import NGHE_AN

from server.runtime.config import Config, load_config
from signing import Pin, Token
from signing import devpki as pki_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_pki

SEAL_TOKEN, SEAL_PIN = next(iter(fixtures_pki.AGENCY_SEAL_TOKENS.items()))
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
IMAGES = Path(__file__).resolve().parents[2] / "certs" / "images"


@dataclass
class Tokens:
    """The session's SoftHSM store as these tests use it: module, config, the opened officer
    token and the directory of the seal tokens' PIN files."""

    module: Path
    conf: Path
    officer: Token
    pin_dir: Path


@pytest.fixture(scope="session")
def sig_pki(pki: pki_cli.DevPki, pki_server: pki_cli.PkiServer) -> pki_cli.DevPki:
    """The session PKI, its services running."""
    return pki


@pytest.fixture(scope="session")
def sig_tokens(softhsm: fixtures_pki.SoftHsm) -> Iterator[Tokens]:
    officer = Token.open(
        fixtures_pki.SOFTHSM2_MODULE, label=fixtures_pki.OFFICER_TOKEN,
        pin=Pin(fixtures_pki.OFFICER_PIN),
    )  # fmt: skip
    yield Tokens(Path(fixtures_pki.SOFTHSM2_MODULE), softhsm.conf, officer, softhsm.pin_dir)


@pytest.fixture
def axis_config(tmp_path: Path, sig_pki: pki_cli.DevPki, sig_tokens: Tokens) -> Config:
    """The axis trusting the test root, with the TSA, and a seal key for UBND tỉnh Nghệ An."""
    return load_config(env=signing_env(sig_pki, sig_tokens), data_dir=tmp_path / "data")


def signing_env(sig_pki: pki_cli.DevPki, sig_tokens: Tokens) -> dict[str, str]:
    """The settings of ``axis_config`` (to start from in a test that needs other ones)."""
    return {
        "LIENTHONG_SERVER_MAX_BODY_BYTES": str(4 * 1024 * 1024),
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_DELIVERY_ENABLED": "0",
        "LIENTHONG_TSA_URL": sig_pki.tsa_url,
        "LIENTHONG_SIGNING_TRUST_DIR": str(sig_pki.directory / "trust"),
        "LIENTHONG_SIGNING_CHAIN": str(sig_pki.cert_path("gov")),
        "LIENTHONG_SIGNING_SEAL_MODULE": str(sig_tokens.module),
        "LIENTHONG_SIGNING_SEAL_KEYS": f"{NGHE_AN}={SEAL_TOKEN}/seal",
        "LIENTHONG_SIGNING_SEAL_PIN_DIR": str(sig_tokens.pin_dir),
    }


def token_sign(tokens: Tokens, key_label: str, digest: bytes) -> bytes:
    """What an officer's USB token does for a browser plug-in: raw RSA PKCS#1 v1.5
    (CKM_RSA_PKCS) over the DigestInfo of the SHA-256 digest."""
    from pkcs11 import Mechanism, ObjectClass

    token = tokens.officer

    def _sign() -> bytes:
        key = token._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
        return bytes(key.sign(SHA256_DIGEST_INFO + digest, mechanism=Mechanism.RSA_PKCS))

    return token.run(_sign)


def pdfsig_verdicts(pdf: Path) -> list[str]:
    """poppler's verdict on each signature (-nocert: pdfsig does not know the test root)."""
    result = subprocess.run(
        ["pdfsig", "-nocert", str(pdf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [
        line.split(":", 1)[1].strip()
        for line in result.stdout.splitlines()
        if line.strip().startswith("- Signature Validation:")
    ]


def validate_all(pdf: Path, root: Any, gov: Any) -> list[Any]:
    """pyHanko's status of every signature, against the test root only (hard-fail)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    statuses = []
    with pdf.open("rb") as fh:
        reader = PdfFileReader(fh)
        for sig in reader.embedded_regular_signatures:
            context = ValidationContext(
                trust_roots=[root], other_certs=[gov], allow_fetching=True,
                revocation_mode="hard-fail",
            )  # fmt: skip
            statuses.append(validate_pdf_signature(sig, context))
    return statuses


def stored(config: Config) -> dict[str, Any]:
    """Session and version rows, object files and spool files: to show nothing half written."""
    conn = sqlite3.connect(config.db_path)
    try:
        sessions = conn.execute("SELECT id, state FROM signing_sessions").fetchall()
        versions = conn.execute("SELECT id FROM attachment_versions").fetchall()
    finally:
        conn.close()
    objects = sorted(p.name for p in config.objects_dir.rglob("*") if p.is_file())
    return {"sessions": sessions, "versions": versions, "objects": objects}


def spool_files(config: Config) -> set[str]:
    """Files in the spool directory (uploads in flight, decoded attachments)."""
    return {p.name for p in config.spool_dir.iterdir()}


def assert_nothing_written(config: Config, before: dict[str, Any], spool: set[str]) -> None:
    """No session, version or object was added and no spool file was left behind (files that
    were there before may have gone: the axis's own background work cleans up its spool)."""
    assert stored(config) == before
    assert spool_files(config) <= spool
