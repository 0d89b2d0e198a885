"""Our layer over pyHanko's diff analysis and reader (signing.diffcheck, signing.pdfread),
each adjustment shown against stock pyHanko on the corpus file that needs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import algos
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffResult,
    ModificationLevel,
    SuspiciousModification,
)
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from signing.diffcheck import build_diff_policy
from signing.pdfread import UnreadablePdfError, normalise_plain_ecdsa, open_pdf

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "pdf"


def _signatures(rel: str) -> list[EmbeddedPdfSignature]:
    reader, _ = open_pdf((CORPUS / rel).read_bytes())
    return list(reader.embedded_signatures)


def _review(sig: EmbeddedPdfSignature, policy: object) -> DiffResult | SuspiciousModification:
    sig.compute_integrity_info(skip_diff=True)
    return sig.evaluate_modifications(policy)  # type: ignore[arg-type]


def test_shadow_replace_via_form_value_is_other_for_us_but_form_filling_for_pyhanko() -> None:
    (sig,) = _signatures("mkl-testarea-itext7/replace-shadow-file-signed-manipulated.pdf")
    stock = _review(sig, DEFAULT_DIFF_POLICY)
    assert isinstance(stock, DiffResult)
    assert stock.modification_level == ModificationLevel.FORM_FILLING
    ours = _review(sig, build_diff_policy())
    assert isinstance(ours, SuspiciousModification) and "Text1" in str(ours)


def test_filling_empty_fields_and_choice_indices_stay_permitted() -> None:
    (sig,) = _signatures("esig-dss/pades-signed-filled-form.pdf")
    stock = _review(sig, DEFAULT_DIFF_POLICY)
    assert isinstance(stock, SuspiciousModification) and "/I" in str(stock)
    ours = _review(sig, build_diff_policy())
    assert isinstance(ours, DiffResult)
    assert ours.modification_level == ModificationLevel.FORM_FILLING


def test_comment_added_after_approval_is_annotations_level() -> None:
    (sig,) = _signatures("esig-dss/pades-signed-annot-added.pdf")
    assert isinstance(_review(sig, DEFAULT_DIFF_POLICY), SuspiciousModification)
    ours = _review(sig, build_diff_policy())
    assert isinstance(ours, DiffResult)
    assert ours.modification_level == ModificationLevel.ANNOTATIONS


def test_structure_tree_update_by_a_later_signer_is_permitted() -> None:
    first = _signatures("esig-dss/pdf-structtreeroot-changes.pdf")[0]
    assert isinstance(_review(first, DEFAULT_DIFF_POLICY), SuspiciousModification)
    assert isinstance(_review(first, build_diff_policy()), DiffResult)


@pytest.mark.parametrize(
    "rel",
    [
        "pyhanko/form-update-override-appearance-stream-sneaky.pdf",
        "pyhanko/extensions-indirect-not-all-paths.pdf",
        "esig-dss/pdf-signed-added-page.pdf",
        "esig-dss/pdf-removed-pages.pdf",
        "esig-dss/modified_after_signature.pdf",
        "rub-pdf-attacker/hide-and-replace/variant-1_change_object_references/"
        "4_original-document-shadowed-signed-manipulated.pdf",
    ],
)
def test_our_laxer_rules_do_not_let_known_attacks_through(rel: str) -> None:
    sig = _signatures(rel)[0]
    assert isinstance(_review(sig, build_diff_policy()), SuspiciousModification)


def test_encrypt_null_is_no_encryption() -> None:
    reader, _notes = open_pdf((CORPUS / "esig-dss/pdf-spoofing-attack.pdf").read_bytes())
    assert reader.encrypt_dict is None
    assert reader.embedded_signatures


def test_hybrid_files_are_read_leniently_with_a_note() -> None:
    reader, notes = open_pdf((CORPUS / "esig-dss/pdf-structtreeroot-changes.pdf").read_bytes())
    assert not reader.strict and any("hybrid" in n for n in notes)


def test_empty_password_encryption_is_opened() -> None:
    reader, notes = open_pdf((CORPUS / "esig-dss/encrypted.pdf").read_bytes())
    assert "encrypted with an empty user password" in notes
    assert reader.embedded_signatures


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7\nbroken", "Công văn".encode()])
def test_not_a_pdf_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(UnreadablePdfError):
        open_pdf(data)


def test_plain_ecdsa_is_rewritten_to_a_der_signature_that_verifies() -> None:
    (sig,) = _signatures("esig-dss/dss-PLAIN-ECDSA/TeleSec_PKS_eIDAS_QES_CA_1-baseline-b.pdf")
    info = sig.signer_info
    assert info["signature_algorithm"]["algorithm"].dotted == "0.4.0.127.0.7.1.1.4.1.3"
    assert normalise_plain_ecdsa(info)
    assert info["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    der = info["signature"].native
    algos.DSASignature.load(der)  # well-formed DER
    key = load_der_public_key(sig.signer_cert.public_key.dump())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(der, info["signed_attrs"].untag().dump(), ec.ECDSA(hashes.SHA256()))
    assert not normalise_plain_ecdsa(info)  # already normal: left alone
