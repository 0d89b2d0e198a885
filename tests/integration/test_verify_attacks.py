"""Attacks made from PDFs we sign with the test PKI (certs/pki.yml), and the verdicts on the
originals: trusted + online hard-fail revocation -> PASSED; revoked -> FAILED; offline -> never
PASSED (trap 1). Each attack must not come out intact with no other changes."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fixtures_pki
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec

from signing import devpki as pki_cli
from signing.report import Changes, Indication
from signing.verify import VerificationPolicy, close_shared_resources, verify_in_process


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pki_cli.DevPki]:
    dev = fixtures_pki.make_pki(tmp_path_factory.mktemp("verify-pki"))
    with pki_cli.PkiServer(dev):
        yield dev
    close_shared_resources()  # the OCSP/CRL HTTP session of this process


def _sign(pki: pki_cli.DevPki, label: str = "officer", certify: bool = False,
          field: str = "ChuKy1", pdf: bytes | None = None) -> bytes:  # fmt: skip
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf or fixtures_pki.minimal_pdf(pages=2)))
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        certify=certify,
        docmdp_permissions=MDPPerm.NO_CHANGES if certify else MDPPerm.FILL_FORMS,
        subfilter=signers.pdf_signer.SigSeedSubFilter.PADES,
    )
    out = io.BytesIO()
    signers.sign_pdf(
        writer, meta, signer=fixtures_pki.pem_signer(pki, label), output=out,
        new_field_spec=SigFieldSpec(field, box=(300, 50, 500, 100), on_page=0),
    )  # fmt: skip
    return out.getvalue()


def _policy(pki: pki_cli.DevPki, online: bool = True) -> VerificationPolicy:
    return VerificationPolicy.with_roots([pki.root_cert], online=online)


def _incremental(signed: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _not_clean(data: bytes, pki: pki_cli.DevPki) -> None:
    report = verify_in_process(data, _policy(pki, online=False))
    assert report.status == "signed"
    sig = report.signatures[0]
    assert not (sig.intact and sig.changes in (Changes.NONE, Changes.PERMITTED)), report.to_json()
    assert sig.indication is Indication.TOTAL_FAILED
    assert not report.all_passed


def test_valid_signature_passes_with_online_hard_fail(pki: pki_cli.DevPki) -> None:
    report = verify_in_process(_sign(pki), _policy(pki))
    (sig,) = report.signatures
    assert sig.indication is Indication.TOTAL_PASSED, sig.reasons
    assert sig.intact and sig.changes is Changes.NONE and sig.trusted
    assert sig.signer is not None and sig.signer.name == "Nguyễn Văn Ánh"
    assert sig.signer.organization == "Ủy ban nhân dân tỉnh Thử Nghiệm"
    assert sig.revocation is not None and sig.revocation.status == "good"
    assert sig.signing_time and sig.signing_time.endswith("+07:00")
    assert report.all_passed
    assert "Chữ ký hợp lệ của Nguyễn Văn Ánh" in report.to_json()["summary_vi"]


def test_revoked_signer_is_never_passed(pki: pki_cli.DevPki) -> None:
    report = verify_in_process(_sign(pki, "officer-revoked"), _policy(pki))
    (sig,) = report.signatures
    assert sig.indication is not Indication.TOTAL_PASSED
    assert sig.intact
    assert sig.subindication and "REVOKED" in sig.subindication


def test_offline_hard_fail_is_indeterminate_not_passed(pki: pki_cli.DevPki) -> None:
    report = verify_in_process(_sign(pki), _policy(pki, online=False))
    (sig,) = report.signatures
    assert sig.indication is Indication.INDETERMINATE
    assert sig.intact and sig.changes is Changes.NONE


def test_lookalike_root_is_not_trusted(pki: pki_cli.DevPki) -> None:
    report = verify_in_process(_sign(pki, "lookalike-officer"), _policy(pki))
    assert report.signatures[0].indication is not Indication.TOTAL_PASSED


def test_second_signature_is_a_permitted_change(pki: pki_cli.DevPki) -> None:
    twice = _sign(pki, "officer2", field="ChuKy2", pdf=_sign(pki))
    report = verify_in_process(twice, _policy(pki))
    first, second = report.signatures
    assert first.intact and first.changes is Changes.PERMITTED, first.changes_detail
    assert second.changes is Changes.NONE
    assert first.passed and second.passed, (first.reasons, second.reasons)


def test_attack_page_content_changed(pki: pki_cli.DevPki) -> None:
    def change(w: IncrementalPdfFileWriter) -> None:
        page = w.root["/Pages"]["/Kids"][0].get_object()
        content = page["/Contents"]
        stream = generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (PAY 1000000) Tj ET")
        page["/Contents"] = w.add_object(stream)
        del content
        w.update_container(page)

    _not_clean(_incremental(_sign(pki), change), pki)


def test_attack_shadow_replace_overwrites_signed_object(pki: pki_cli.DevPki) -> None:
    """Same object number, new body: the content stream itself is replaced."""

    def change(w: IncrementalPdfFileWriter) -> None:
        page = w.root["/Pages"]["/Kids"][0].get_object()
        ref = page.raw_get("/Contents").reference
        w.mark_update(ref)
        w.objects[(ref.generation, ref.idnum)] = generic.StreamObject(
            stream_data=b"BT /F1 14 Tf 72 760 Td (Replaced) Tj ET"
        )

    attacked = _incremental(_sign(pki), change)
    assert b"(Replaced)" in attacked
    _not_clean(attacked, pki)


def test_attack_shadow_hide_repoints_pages(pki: pki_cli.DevPki) -> None:
    """Hide-and-replace: the catalog's page tree is swapped for an attacker tree."""

    def change(w: IncrementalPdfFileWriter) -> None:
        content = w.add_object(
            generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (X) Tj ET")
        )
        pages = generic.DictionaryObject(
            {generic.NameObject("/Type"): generic.NameObject("/Pages")}
        )
        pages_ref = w.add_object(pages)
        page = PageObject(contents=content, media_box=generic.ArrayObject(
            [generic.NumberObject(v) for v in (0, 0, 595, 842)]))  # fmt: skip
        page[generic.NameObject("/Parent")] = pages_ref
        page_ref = w.add_object(page)
        pages[generic.NameObject("/Kids")] = generic.ArrayObject([page_ref])
        pages[generic.NameObject("/Count")] = generic.NumberObject(1)
        w.root[generic.NameObject("/Pages")] = pages_ref
        w.update_root()

    _not_clean(_incremental(_sign(pki), change), pki)


def test_attack_appended_page(pki: pki_cli.DevPki) -> None:
    def change(w: IncrementalPdfFileWriter) -> None:
        content = w.add_object(
            generic.StreamObject(stream_data=b"BT /F1 14 Tf 72 760 Td (P3) Tj ET")
        )
        page = PageObject(contents=content, media_box=generic.ArrayObject(
            [generic.NumberObject(v) for v in (0, 0, 595, 842)]))  # fmt: skip
        w.insert_page(page)

    _not_clean(_incremental(_sign(pki), change), pki)


def test_attack_changed_annotation(pki: pki_cli.DevPki) -> None:
    """The signature widget is moved off the page after signing."""

    def change(w: IncrementalPdfFileWriter) -> None:
        page = w.root["/Pages"]["/Kids"][0].get_object()
        widget = page["/Annots"][0].get_object()
        widget[generic.NameObject("/Rect")] = generic.ArrayObject(
            [generic.NumberObject(v) for v in (0, 0, 0, 0)]
        )
        w.update_container(widget)

    _not_clean(_incremental(_sign(pki), change), pki)


def test_attack_certification_level_violated(pki: pki_cli.DevPki) -> None:
    """Certified with 'no changes'; a comment added afterwards is not allowed."""

    def change(w: IncrementalPdfFileWriter) -> None:
        page = w.root["/Pages"]["/Kids"][1].get_object()
        annot = generic.DictionaryObject({
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Text"),
            generic.NameObject("/Rect"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (10, 10, 30, 30)]),
            generic.NameObject("/Contents"): generic.TextStringObject("sửa sau khi ký"),
        })  # fmt: skip
        page[generic.NameObject("/Annots")] = generic.ArrayObject([w.add_object(annot)])
        w.update_container(page)

    certified = _sign(pki, certify=True)
    report = verify_in_process(certified, _policy(pki))
    assert report.signatures[0].certification == "no_changes"
    assert report.signatures[0].passed
    _not_clean(_incremental(certified, change), pki)


def test_comment_after_approval_signature_is_permitted(pki: pki_cli.DevPki) -> None:
    def change(w: IncrementalPdfFileWriter) -> None:
        page = w.root["/Pages"]["/Kids"][1].get_object()
        annot = generic.DictionaryObject({
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Text"),
            generic.NameObject("/Rect"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (10, 10, 30, 30)]),
        })  # fmt: skip
        page[generic.NameObject("/Annots")] = generic.ArrayObject([w.add_object(annot)])
        w.update_container(page)

    report = verify_in_process(_incremental(_sign(pki), change), _policy(pki))
    sig = report.signatures[0]
    assert sig.intact and sig.changes is Changes.PERMITTED and sig.changes_detail == "annotations"


def test_attack_signed_bytes_edited(pki: pki_cli.DevPki) -> None:
    signed = bytearray(_sign(pki))
    at = signed.index(b"page 1")
    signed[at : at + 6] = b"PAGE 9"
    report = verify_in_process(bytes(signed), _policy(pki, online=False))
    sig = report.signatures[0]
    assert not sig.intact and sig.indication is Indication.TOTAL_FAILED


def test_attack_signature_wrapping(pki: pki_cli.DevPki) -> None:
    """The /ByteRange is rewritten so the signed bytes move behind attacker content."""
    signed = _sign(pki)
    start = signed.index(b"/ByteRange [") + len(b"/ByteRange [")
    end = signed.index(b"]", start)
    a, b, c, d = (int(x) for x in signed[start:end].split())
    forged = f"{a} {b} {c + 10} {d - 10}".encode().ljust(end - start)
    wrapped = signed[:start] + forged + signed[end:]
    _not_clean(wrapped, pki)
