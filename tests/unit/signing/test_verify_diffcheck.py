"""Our layer over pyHanko's diff analysis and reader (signing.diffcheck, signing.pdfread),
each adjustment shown against stock pyHanko on the corpus file that needs it."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import algos
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffResult,
    ModificationLevel,
    SuspiciousModification,
)
from pyhanko.sign.fields import SigFieldSpec, append_signature_field
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


SCI = "esig-dss/Signature-P-DE_SCI-4.pdf"  # ETSI plugtest, SecCommerce: B-LT + document time-stamp


def test_what_the_time_stamp_revision_of_the_plugtest_file_changes_on_its_page() -> None:
    """Revision 3 (DSS + document time-stamp) rewrites page 1 (1 0 R): its /Annots gains the
    time-stamp's invisible widget, and its /Resources moves from 35 0 R to a new 51 0 R holding
    exactly the same entries and references. Nothing else on the page differs."""
    reader = PdfFileReader(BytesIO((CORPUS / SCI).read_bytes()), strict=False)
    before, after = reader.get_historical_resolver(2), reader.get_historical_resolver(3)
    page_ref = generic.Reference(1, 0)
    old_page, new_page = before(page_ref), after(page_ref)
    assert {k for k in new_page if new_page.raw_get(k) != old_page.raw_get(k)} == {
        "/Annots",
        "/Resources",
    }
    assert old_page.raw_get("/Resources").reference == generic.Reference(35, 0)
    assert new_page.raw_get("/Resources").reference == generic.Reference(51, 0)
    assert before.is_ref_unassignable(generic.Reference(51, 0))  # a new object, not a rewrite
    assert dict(after(generic.Reference(51, 0))) == dict(before(generic.Reference(35, 0)))
    (widget,) = {a.reference for a in new_page["/Annots"]} - {
        a.reference for a in old_page["/Annots"]
    }
    ts_field = after(widget)
    assert ts_field["/FT"] == "/Sig" and ts_field["/V"]["/Type"] == "/DocTimeStamp"


def test_time_stamp_revision_copying_the_page_resources_is_an_lta_update() -> None:
    sig = _signatures(SCI)[0]
    stock = _review(sig, DEFAULT_DIFF_POLICY)
    assert isinstance(stock, SuspiciousModification) and "/Resources" in str(stock)
    ours = _review(sig, build_diff_policy())
    assert isinstance(ours, DiffResult)
    assert ours.modification_level == ModificationLevel.LTA_UPDATES


PageEdit = Callable[[IncrementalPdfFileWriter, generic.DictionaryObject], None]


def _copy_resources(
    w: IncrementalPdfFileWriter, page: generic.DictionaryObject, **extra: generic.PdfObject
) -> None:
    res = page["/Resources"]
    copy = generic.DictionaryObject({k: res.raw_get(k) for k in res})
    copy.update({generic.NameObject(f"/{k}"): v for k, v in extra.items()})
    page[generic.NameObject("/Resources")] = w.add_object(copy)


def _substitute_font(w: IncrementalPdfFileWriter, page: generic.DictionaryObject) -> None:
    fonts = page["/Resources"]["/Font"]
    font = fonts["/F1"]
    forged = generic.DictionaryObject({k: font.raw_get(k) for k in font})
    forged[generic.NameObject("/BaseFont")] = generic.NameObject("/Helvetica")
    new_fonts = generic.DictionaryObject({generic.NameObject("/F1"): w.add_object(forged)})
    _copy_resources(w, page, Font=w.add_object(new_fonts))


def _add_xobject(w: IncrementalPdfFileWriter, page: generic.DictionaryObject) -> None:
    form = generic.StreamObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/XObject"),
            generic.NameObject("/Subtype"): generic.NameObject("/Form"),
            generic.NameObject("/BBox"): generic.ArrayObject(
                [generic.NumberObject(n) for n in (0, 0, 595, 842)]
            ),
        },
        stream_data=b"1 1 1 rg 0 0 595 842 re f",
    )
    xobjects = generic.DictionaryObject({generic.NameObject("/X9"): w.add_object(form)})
    _copy_resources(w, page, XObject=xobjects)


def _copy_and_change_contents(w: IncrementalPdfFileWriter, page: generic.DictionaryObject) -> None:
    _copy_resources(w, page)
    forged = generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (forged) Tj ET")
    page[generic.NameObject("/Contents")] = w.add_object(forged)


def _reuse_older_object(w: IncrementalPdfFileWriter, page: generic.DictionaryObject) -> None:
    # 17 0 R: the page's resources before the first signature (same entries, an older object)
    page[generic.NameObject("/Resources")] = generic.IndirectObject(17, 0, w)


def _with_page_edit(edit: PageEdit, *, new_field: bool = True) -> EmbeddedPdfSignature:
    """The plugtest file cut after its DSS revision, plus one revision written by pyHanko's
    incremental writer: a new signature field bound to page 1 (as a document time-stamp's
    would be) when ``new_field``, and ``edit`` applied to page 1."""
    data = (CORPUS / SCI).read_bytes()
    end_of_dss_revision = [m.end() for m in re.finditer(rb"%%EOF\r?\n?", data)][2]
    w = IncrementalPdfFileWriter(BytesIO(data[:end_of_dss_revision]), strict=False)
    if new_field:
        append_signature_field(w, SigFieldSpec("DauThoiGian2"))
    page_ref = w.root["/Pages"]["/Kids"].raw_get(0).reference
    page = w.get_object(page_ref)
    edit(w, page)
    w.update_container(page)
    out = BytesIO()
    w.write(out)
    reader, _ = open_pdf(out.getvalue())
    return reader.embedded_signatures[0]


def test_a_new_field_with_an_exact_copy_of_the_resources_is_an_lta_update() -> None:
    """The same shape as the plugtest file, written by pyHanko's incremental writer."""
    ours = _review(_with_page_edit(_copy_resources), build_diff_policy())
    assert isinstance(ours, DiffResult)
    assert ours.modification_level == ModificationLevel.LTA_UPDATES


@pytest.mark.parametrize(
    ("edit", "new_field", "said"),
    [
        (_substitute_font, True, "/Font"),
        (_add_xobject, True, "/XObject"),
        (_copy_and_change_contents, True, "/Contents"),
        (_reuse_older_object, True, "/Resources"),
        (_copy_resources, False, "unexplained"),
    ],
    ids=[
        "font-substituted",
        "xobject-added",
        "contents-changed",
        "older-object-reused",
        "no-new-signature-field",
    ],
)
def test_attacks_shaped_like_the_resources_copy_are_still_caught(
    edit: PageEdit, new_field: bool, said: str
) -> None:
    ours = _review(_with_page_edit(edit, new_field=new_field), build_diff_policy())
    assert isinstance(ours, SuspiciousModification)
    assert said in str(ours)


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
