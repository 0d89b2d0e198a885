"""B-LTA archives: validated with the AdES-LTA process at a past point in time, so a signature
stays verifiable after its certificates expire; B-LT alone turns TRY_LATER/expired (trap 2)."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fixtures_pki
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko_certvalidator import ValidationContext

from signing import devpki as pki_cli
from signing.report import Changes, Indication
from signing.verify import VerificationPolicy, close_shared_resources, verify_in_process


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pki_cli.DevPki]:
    dev = fixtures_pki.make_pki(tmp_path_factory.mktemp("archive-pki"))
    with pki_cli.PkiServer(dev):
        yield dev
    close_shared_resources()  # the OCSP/CRL HTTP session of this process


def _sign(pki: pki_cli.DevPki, lta: bool) -> bytes:
    signer = fixtures_pki.pem_signer(pki)
    context = ValidationContext(
        trust_roots=[pki.root_cert], allow_fetching=True, other_certs=[pki.cert("gov")]
    )
    meta = signers.PdfSignatureMetadata(
        field_name="ChuKy1",
        subfilter=signers.pdf_signer.SigSeedSubFilter.PADES,
        embed_validation_info=True,
        use_pades_lta=lta,
        validation_context=context,
    )
    out = io.BytesIO()
    writer = IncrementalPdfFileWriter(io.BytesIO(fixtures_pki.minimal_pdf()))
    signers.sign_pdf(
        writer, meta, signer=signer, timestamper=HTTPTimeStamper(pki.tsa_url), output=out
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def lta_pdf(pki: pki_cli.DevPki) -> bytes:
    return _sign(pki, lta=True)


def test_b_lta_now_passes_through_the_ades_lta_process(pki: pki_cli.DevPki, lta_pdf: bytes) -> None:
    report = verify_in_process(lta_pdf, VerificationPolicy.with_roots([pki.root_cert]))
    sig, doc_ts = report.signatures
    assert doc_ts.kind == "document_timestamp"
    assert sig.level == "B-LTA" and sig.validation_model == "ades-lta"
    assert sig.indication is Indication.TOTAL_PASSED, sig.reasons
    assert sig.intact and sig.changes is Changes.PERMITTED
    assert sig.signing_time_source == "timestamp"
    assert any(t.kind == "signature" and t.trusted for t in sig.timestamps)


def test_b_lta_offline_is_judged_on_its_embedded_evidence(
    pki: pki_cli.DevPki, lta_pdf: bytes
) -> None:
    """No network: the AdES-LTA process validates at the time the document time-stamp proves,
    with the OCSP/CRL data the file carries (hard-fail still: nothing is assumed good)."""
    policy = VerificationPolicy.with_roots([pki.root_cert], online=False)
    sig = verify_in_process(lta_pdf, policy).signatures[0]
    assert sig.validation_model == "ades-lta"
    assert sig.indication is Indication.TOTAL_PASSED, sig.reasons
    assert any("proven to exist" in r for r in sig.reasons)


def test_b_lta_with_an_untrusted_root_is_not_passed(lta_pdf: bytes) -> None:
    sig = verify_in_process(lta_pdf, VerificationPolicy()).signatures[0]
    assert sig.validation_model == "ades-lta"
    assert sig.indication is not Indication.TOTAL_PASSED
    assert sig.intact


def test_b_lt_without_archive_timestamp_is_not_passed_after_expiry(pki: pki_cli.DevPki) -> None:
    later = datetime(2041, 6, 1, tzinfo=UTC)
    policy = VerificationPolicy.with_roots([pki.root_cert], at_time=later)
    sig = verify_in_process(_sign(pki, lta=False), policy).signatures[0]
    assert sig.level == "B-T" and sig.validation_model == "current-time"
    assert sig.indication is not Indication.TOTAL_PASSED
    assert sig.intact
