"""Session fixtures: the test PKI with its OCSP/CRL/TSA on 127.0.0.1 and real SoftHSM2 tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fixtures_pki

from signing import Pin, SigningServices, Token
from signing import devpki as pki_cli


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pki_cli.DevPki:
    return fixtures_pki.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def pki_server(pki: pki_cli.DevPki) -> Iterator[pki_cli.PkiServer]:
    with pki_cli.PkiServer(pki) as server:
        yield server


@pytest.fixture(scope="session")
def softhsm(pki: pki_cli.DevPki, tmp_path_factory: pytest.TempPathFactory) -> fixtures_pki.SoftHsm:
    return fixtures_pki.make_tokens(pki, tmp_path_factory.mktemp("softhsm"))


@pytest.fixture(scope="session")
def agency_token(softhsm: fixtures_pki.SoftHsm) -> Iterator[Token]:
    token = Token.open(
        fixtures_pki.SOFTHSM2_MODULE, label=fixtures_pki.AGENCY_TOKEN,
        pin=Pin(fixtures_pki.AGENCY_PIN),
    )  # fmt: skip
    yield token
    token.close()


@pytest.fixture(scope="session")
def officer_token(softhsm: fixtures_pki.SoftHsm) -> Iterator[Token]:
    token = Token.open(
        fixtures_pki.SOFTHSM2_MODULE, label=fixtures_pki.OFFICER_TOKEN,
        pin=Pin(fixtures_pki.OFFICER_PIN),
    )  # fmt: skip
    yield token
    token.close()


@pytest.fixture(scope="session")
def services(pki: pki_cli.DevPki, pki_server: pki_cli.PkiServer) -> Iterator[SigningServices]:
    svc = SigningServices(
        trust_roots=(pki.root_cert,), tsa_url=pki.tsa_url, other_certs=(pki.cert("gov"),)
    )
    yield svc
    svc.close()


@pytest.fixture
def blank_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "van-ban.pdf"
    path.write_bytes(fixtures_pki.minimal_pdf())
    return path
