"""PAdES B-B, B-T, B-LT, B-LTA through a real SoftHSM2 token, validated by pyHanko against the
test root (online against the local OCSP/CRL services, and offline from the embedded DSS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from signing import B_B, B_LT, B_LTA, B_T, Level, Token, sign_pdf


def _online_context(pki) -> ValidationContext:
    return ValidationContext(
        trust_roots=[pki.root_cert], allow_fetching=True, revocation_mode="hard-fail"
    )


def _offline_context(reader: PdfFileReader, pki) -> ValidationContext:
    # Hard-fail with fetching forbidden: only the revocation data inside the file counts.
    dss = DocumentSecurityStore.read_dss(reader)
    return dss.as_validation_context(
        {"trust_roots": [pki.root_cert], "allow_fetching": False, "revocation_mode": "hard-fail"}
    )


@pytest.mark.parametrize("level", [B_B, B_T, B_LT, B_LTA], ids=lambda lv: lv.value)
def test_signing_level_validates(
    level: Level, pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    out = sign_pdf(blank_pdf, tmp_path / "signed.pdf", signer, level=level, services=services,
                   reason="Phê duyệt", location="Huế")  # fmt: skip
    with out.open("rb") as f:
        reader = PdfFileReader(f)
        sig = reader.embedded_regular_signatures[0]
        status = validate_pdf_signature(sig, _online_context(pki))
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
        assert status.signing_cert.subject.native["common_name"] == "Nguyễn Văn Ánh"
        assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        assert sig.sig_object["/Reason"] == "Phê duyệt"
        if level is B_B:
            assert status.timestamp_validity is None
        else:
            assert status.timestamp_validity is not None
            assert status.timestamp_validity.valid and status.timestamp_validity.intact
        dss = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None
        if level.needs_revocation_info:
            assert dss is not None and (dss.ocsps or dss.crls)
            offline = validate_pdf_signature(sig, _offline_context(reader, pki))
            assert offline.trusted, offline.pretty_print_details()
        else:
            assert dss is None
        doc_timestamps = reader.embedded_timestamp_signatures
        if level is B_LTA:
            assert len(doc_timestamps) == 1
            ts_status = validate_pdf_timestamp(
                doc_timestamps[0], ValidationContext(trust_roots=[pki.root_cert])
            )
            assert ts_status.valid and ts_status.trusted
        else:
            assert doc_timestamps == []


def test_signing_b_b_offline_without_revocation_data_is_not_trusted(
    pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    """Negative control for the offline check above: B-B carries no revocation data."""
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    out = sign_pdf(blank_pdf, tmp_path / "bb.pdf", signer, level=B_B, services=services)
    with out.open("rb") as f:
        reader = PdfFileReader(f)
        context = ValidationContext(
            trust_roots=[pki.root_cert], allow_fetching=False, revocation_mode="hard-fail",
            crls=[], ocsps=[],
        )  # fmt: skip
        status = validate_pdf_signature(reader.embedded_regular_signatures[0], context)
        assert status.intact and status.valid and not status.trusted


def test_signing_with_pkcs12_for_development(
    pki, services, blank_pdf: Path, tmp_path: Path
) -> None:
    from certomancer.registry import CertLabel

    from signing import load_pkcs12_signer

    p12 = tmp_path / "officer2.p12"
    p12.write_bytes(pki.arch.package_pkcs12(CertLabel("officer2"), password=b"dev-only"))
    signer = load_pkcs12_signer(p12, b"dev-only")
    out = sign_pdf(blank_pdf, tmp_path / "p12.pdf", signer, level=B_T, services=services)
    with out.open("rb") as f:
        sig = PdfFileReader(f).embedded_regular_signatures[0]
        status = validate_pdf_signature(sig, _online_context(pki))
        assert status.valid and status.trusted
        assert status.signing_cert.subject.native["common_name"] == "Đặng Thị Hường"
