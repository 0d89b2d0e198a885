"""Hostile PDFs end in a verdict within the 5 s budget, never a hang or a traceback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from signing.isolation import VerifierPool
from signing.verify import VerificationPolicy


def build_pdf(objects: list[bytes], trailer_extra: bytes = b"", size: int | None = None) -> bytes:
    """A PDF with a correct classic xref for ``objects`` (object 1 is the catalog)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    count = size if size is not None else len(objects) + 1
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        count,
        trailer_extra,
        xref,
    )
    return bytes(out)


SIG_FIELD = b"<< /FT /Sig /T (S) /V 5 0 R /Type /Annot /Subtype /Widget /Rect [0 0 0 0] >>"
SIG_VALUE = b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached " \
    b"/ByteRange [0 10 20 10] /Contents <3080> >>"  # fmt: skip


def million_entry_xref(entries: int = 1_000_000) -> bytes:
    head = build_pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    )
    body, _, _ = head.partition(b"xref\n")
    offsets = [int(line[:10]) for line in head.split(b"\n") if line.endswith(b" 00000 n ")]
    table = bytearray(b"xref\n0 %d\n0000000000 65535 f \n" % entries)
    for off in offsets:
        table += b"%010d 00000 n \n" % off
    table += b"0000000000 00000 f \n" * (entries - 1 - len(offsets))
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        entries,
        len(body),
    )
    return bytes(body + table + trailer)


def hostile_files() -> dict[str, bytes]:
    depth = 100_000
    return {
        # a page tree whose kids point back at the root of the tree
        "page-tree-loop": build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>",
                b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
                b"<< /Type /Pages /Kids [2 0 R] /Parent 2 0 R /Count 1 >>",
                SIG_FIELD,
                SIG_VALUE,
            ]
        ),
        # form fields whose kids are themselves
        "field-loop": build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [3 0 R] >> >>",
                b"<< /Type /Pages /Kids [] /Count 0 >>",
                b"<< /T (a) /Kids [3 0 R 4 0 R] >>",
                b"<< /T (b) /Parent 3 0 R /Kids [3 0 R 4 0 R] >>",
                SIG_VALUE,
            ]
        ),
        # an indirect reference chain that loops: 3 -> 4 -> 3
        "reference-loop": build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /AcroForm 3 0 R >>",
                b"<< /Type /Pages /Kids [] /Count 0 >>",
                b"4 0 R",
                b"3 0 R",
            ]
        ),
        # 100 000 nested arrays
        "deep-nesting": build_pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [3 0 R] >> >>",
                b"<< /Type /Pages /Kids [] /Count 0 >>",
                b"<< /FT /Sig /T (S) /V " + b"[" * depth + b"]" * depth + b" >>",
            ]
        ),
        # an xref section that claims 50 million entries but lists two
        "lying-xref": build_pdf(
            [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"],
            size=50_000_000,
        ).replace(b"xref\n0 3\n", b"xref\n0 50000000\n"),
        # a well-formed xref table with a million entries (20 MB): parsing alone takes about
        # 6 s here, so the budget must cut it off
        "million-entry-xref": million_entry_xref(),
        "garbage-after-header": b"%PDF-1.7\n" + bytes(range(256)) * 4000,
        "empty": b"",
        "not-a-pdf": "Công văn số 123".encode(),
    }


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    p = VerifierPool(size=2)
    yield p
    p.close()


@pytest.mark.parametrize("name", list(hostile_files()))
def test_hostile_pdf_gets_a_verdict_in_time(pool: VerifierPool, name: str) -> None:
    data = hostile_files()[name]
    started = time.monotonic()
    report = pool.verify(data, VerificationPolicy(timeout=5.0), file_name=name)
    elapsed = time.monotonic() - started
    assert elapsed < 30  # the 5 s budget ends a hang; generous so load cannot fail it
    assert not report.all_passed
    assert report.status in ("unreadable", "unsigned", "signed")
    if report.status == "unreadable":
        assert report.errors
    for sig in report.signatures:
        assert not sig.passed and not sig.intact
    assert report.to_json()["summary_vi"]


def test_budget_overrun_kills_the_worker_and_the_pool_recovers(pool: VerifierPool) -> None:
    from pathlib import Path

    corpus = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
    slow = (corpus / "pades-signed-filled-form.pdf").read_bytes()
    report = pool.verify(slow, VerificationPolicy(timeout=0.05), file_name="slow.pdf")
    assert report.status == "unreadable"
    assert "longer than" in report.errors[0]
    again = pool.verify((corpus / "pdf-signed-original.pdf").read_bytes(), VerificationPolicy())
    assert again.status == "signed" and again.signatures[0].intact


def test_oversized_input_is_refused(pool: VerifierPool) -> None:
    report = pool.verify(b"%PDF-1.7\n" + b" " * 2000, VerificationPolicy(max_bytes=1000))
    assert report.status == "unreadable" and "limit" in report.errors[0]
