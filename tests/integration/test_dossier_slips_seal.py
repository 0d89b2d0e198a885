"""Dossier slips sealed with the unit's seal: a real SoftHSM2 key loaded from ``[seal]`` as for
receipts, timestamped by the test PKI's TSA (B-T), then verified as valid by the project's
verifier (signing.verify) and by ``lienthong verify`` against the test PKI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.cli import main as cli_main
from server.dossiers.slips import QUOC_HIEU, render_slip, seal_slip
from server.exchange.receipts import Seal, load_seal
from server.runtime.config import load_config
from signing import B_T, SigningServices, VerificationPolicy, verify
from signing import devpki as pki_cli
from signing.report import Indication

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_pki
import slip_samples as samples


@pytest.fixture
def unit_seal(
    tmp_path: Path,
    pki: pki_cli.DevPki,
    pki_server: pki_cli.PkiServer,
    softhsm: fixtures_pki.SoftHsm,
) -> Iterator[Seal]:
    """The ``[seal]`` of a config naming the axis-seal token of the session's SoftHSM2 store."""
    env = {
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_TSA_URL": pki.tsa_url,
        "LIENTHONG_SEAL_CHAIN": str(pki.cert_path("gov")),
        "LIENTHONG_SEAL_PKCS11_MODULE": fixtures_pki.SOFTHSM2_MODULE,
        "LIENTHONG_SEAL_TOKEN_LABEL": fixtures_pki.AXIS_SEAL_TOKEN,
        "LIENTHONG_SEAL_PIN_FILE": str(softhsm.pin_file(fixtures_pki.AXIS_SEAL_TOKEN)),
    }
    seal = load_seal(load_config(env=env, data_dir=tmp_path / "data"))
    assert seal is not None
    try:
        yield seal
    finally:
        seal.close()


async def test_a_sealed_slip_verifies_as_valid(
    unit_seal: Seal, pki: pki_cli.DevPki, tmp_path: Path
) -> None:
    pdf = render_slip(samples.sample("receipt"))
    services = SigningServices(trust_roots=(pki.root_cert,), tsa_url=pki.tsa_url)
    try:
        sealed = await seal_slip(pdf, unit_seal, services=services, location="Nghệ An")
    finally:
        await services.aclose()
    assert sealed.startswith(pdf)  # an incremental update: the slip itself is untouched

    policy = VerificationPolicy.with_roots([pki.root_cert], online=True, context_ttl=0)
    report = await asyncio.to_thread(verify, sealed, policy, file_name="receipt.pdf")
    assert report.status == "signed" and report.all_passed, report.errors
    [signature] = report.signatures
    assert signature.indication is Indication.TOTAL_PASSED, signature.reasons

    path = tmp_path / "receipt.pdf"
    path.write_bytes(sealed)
    root = pki.cert_path("root")
    args = ["verify", str(path), "--trust", str(root), "--no-default-trust", "--online"]
    assert await asyncio.to_thread(cli_main, args) == 0

    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    assert QUOC_HIEU in text.stdout.decode("utf-8")


async def test_without_a_seal_the_slip_is_left_as_it_is() -> None:
    pdf = render_slip(samples.sample("refusal"))
    assert await seal_slip(pdf, None, level=B_T) == pdf
