"""Fixtures of the signing library tests: the session's PKI, services and SoftHSM2 store come
from tests/conftest.py (``pki``, ``pki_server``, ``softhsm``); here, the tokens opened on it."""

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
