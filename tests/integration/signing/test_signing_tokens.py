"""Token sessions: many threads signing through one token (all calls on the module's own
thread, never C_Sign concurrently), and selecting a token by serial instead of label."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fixtures_pki
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from signing import Pin, SigningServices, Token, sign_pdf


def test_signing_concurrent_threads_share_one_token_safely(
    pki, agency_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    signer = agency_token.signer("seal", chain=[pki.cert("gov")])

    def work(n: int) -> Path:
        services = SigningServices(check_signer=False)  # one event loop per thread
        try:
            out = tmp_path / f"out-{n}.pdf"
            for _ in range(5):
                sign_pdf(blank_pdf, out, signer, services=services)
            return out
        finally:
            services.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(work, range(4)))
    context = ValidationContext(trust_roots=[pki.root_cert])
    for out in outputs:
        with out.open("rb") as f:
            status = validate_pdf_signature(
                PdfFileReader(f).embedded_regular_signatures[0], context
            )
            assert status.intact and status.valid and status.trusted


def test_signing_token_by_serial(softhsm: fixtures_pki.SoftHsm, agency_token: Token) -> None:
    shown = subprocess.run(
        ["softhsm2-util", "--show-slots"], capture_output=True, text=True, check=True,
        env={"SOFTHSM2_CONF": str(softhsm.conf), "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    serial = None
    label = None
    for line in shown.splitlines():
        line = line.strip()
        if line.startswith("Label:"):
            label = line.split(":", 1)[1].strip()
        elif line.startswith("Serial number:") and label is None:
            serial = line.split(":", 1)[1].strip()
        if label == fixtures_pki.AGENCY_TOKEN and serial:
            break
        if line.startswith("Slot "):
            serial, label = None, None
    assert serial and label == fixtures_pki.AGENCY_TOKEN, shown
    token = Token.open(
        fixtures_pki.SOFTHSM2_MODULE, serial=serial, pin=Pin(fixtures_pki.AGENCY_PIN)
    )
    signer = token.signer("seal")
    assert signer.signing_cert.subject.native["common_name"] == "Ủy ban nhân dân tỉnh Thử Nghiệm"


async def test_signing_async_api_in_the_callers_loop(
    pki, pki_server, agency_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    """The server's way: async_sign_pdf on its own loop, the token work still on its thread."""
    import asyncio

    from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature

    from signing import B_T, async_sign_pdf

    signer = agency_token.signer("seal", chain=[pki.cert("gov")])
    services = SigningServices(trust_roots=(pki.root_cert,), tsa_url=pki.tsa_url)
    try:
        outs = await asyncio.gather(
            *(
                async_sign_pdf(
                    blank_pdf, tmp_path / f"a{n}.pdf", signer, level=B_T, services=services
                )
                for n in range(3)
            )
        )
    finally:
        await services.aclose()
    for out in outs:
        with out.open("rb") as f:
            status = await async_validate_pdf_signature(
                PdfFileReader(f).embedded_regular_signatures[0],
                ValidationContext(trust_roots=[pki.root_cert]),
            )
            assert status.valid and status.trusted and status.timestamp_validity is not None
