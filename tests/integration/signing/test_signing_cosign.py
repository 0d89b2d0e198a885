"""Co-signing: an officer's visible signature, then the agency seal over it, both valid."""

from __future__ import annotations

from pathlib import Path

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import ModificationLevel
from pyhanko_certvalidator import ValidationContext

from signing import B_B, B_T, SealAppearance, SignerAppearance, Token, sign_pdf

IMAGES = Path(__file__).resolve().parents[3] / "certs" / "images"


def test_signing_officer_then_seal_incremental_both_valid(
    pki, services, officer_token: Token, agency_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    officer = officer_token.signer("officer", chain=[pki.cert("gov")])
    seal = agency_token.signer("seal", chain=[pki.cert("gov")])
    first = sign_pdf(
        blank_pdf, tmp_path / "officer.pdf", officer, level=B_T, services=services,
        field="NguoiKy",
        appearance=SignerAppearance(
            title="KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH", full_name="Nguyễn Văn Ánh",
            image=IMAGES / "sample-signature.png",
        ),
    )  # fmt: skip
    second = sign_pdf(
        first, tmp_path / "sealed.pdf", seal, level=B_B, services=services,
        appearance=SealAppearance(image=IMAGES / "sample-seal.png", over_field="NguoiKy"),
    )  # fmt: skip
    one = first.read_bytes()
    both = second.read_bytes()
    assert both.startswith(one), "the seal must be an incremental update of the officer's file"

    context = ValidationContext(trust_roots=[pki.root_cert], allow_fetching=True)
    with second.open("rb") as f:
        reader = PdfFileReader(f)
        sigs = reader.embedded_regular_signatures
        assert [s.field_name for s in sigs] == ["NguoiKy", "Signature2"]
        officer_status = validate_pdf_signature(sigs[0], context)
        seal_status = validate_pdf_signature(sigs[1], context)
    for status in (officer_status, seal_status):
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    # The seal added a form field and its signature: allowed by the officer's signature.
    assert officer_status.modification_level <= ModificationLevel.FORM_FILLING
    assert officer_status.docmdp_ok
    assert (
        seal_status.signing_cert.subject.native["common_name"] == "Ủy ban nhân dân tỉnh Thử Nghiệm"
    )
