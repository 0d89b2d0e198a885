"""The trust store (signing.trust) and the plain cases of signing.verify: unsigned files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from asn1crypto import pem

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fixtures_pki

from signing.report import summary_vi
from signing.trust import TEST_TRUST_ENV, TrustStore, TrustStoreError, default_trust_store
from signing.verify import VerificationPolicy, verify_in_process


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return fixtures_pki.make_pki(tmp_path_factory.mktemp("trust-pki"))


def test_pem_and_der_files_are_loaded_once(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = pki.root_cert
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", root.dump()))
    (tmp_path / "root.der").write_bytes(root.dump())
    (tmp_path / "gov.crt").write_bytes(pem.armor("CERTIFICATE", pki.cert("gov").dump()))
    (tmp_path / "notes.txt").write_text("ignored")
    store = TrustStore()
    store.add_dir(tmp_path)
    assert sorted(c.subject.native["common_name"] for c in store.roots) == [
        "Test Government CA",
        "Test Root CA",
    ]
    assert len(store.fingerprint()) == 16


def test_a_bad_anchor_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pem"
    bad.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(TrustStoreError, match=r"broken\.pem"):
        TrustStore().add_file(bad)
    with pytest.raises(TrustStoreError, match="cannot read"):
        TrustStore().add_file(tmp_path / "missing.der")


def test_test_root_only_when_configured(pki, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "no-production-roots"
    monkeypatch.delenv(TEST_TRUST_ENV, raising=False)
    assert default_trust_store(trust_dir=empty).roots == []
    monkeypatch.setenv(TEST_TRUST_ENV, str(pki.directory / "trust"))
    roots = default_trust_store(trust_dir=empty).roots
    assert [c.sha256 for c in roots] == [pki.root_cert.sha256]


def test_a_pdf_without_signature_says_so() -> None:
    report = verify_in_process(fixtures_pki.minimal_pdf(), VerificationPolicy(), file_name="a.pdf")
    assert report.status == "unsigned" and report.signatures == []
    assert not report.all_passed and report.indication is None
    assert summary_vi(report) == "Tệp a.pdf không có chữ ký số."


def test_a_path_that_cannot_be_read_is_an_unreadable_report(tmp_path: Path) -> None:
    from signing.verify import verify

    report = verify(tmp_path / "missing.pdf", VerificationPolicy(), isolate=False)
    assert report.status == "unreadable"
    assert report.file_name == "missing.pdf"
    assert report.errors == ["cannot read the file: No such file or directory"]


def test_a_file_over_the_size_limit_is_refused_with_its_digest(tmp_path: Path) -> None:
    import hashlib

    from signing.verify import verify

    path = tmp_path / "big.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"0" * 5000)
    report = verify(path, VerificationPolicy(max_bytes=1000), isolate=False)
    assert report.status == "unreadable"
    assert report.errors == ["file larger than the 1000-byte limit"]
    assert report.size == 5009
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # The same verdict as for the bytes themselves.
    same = verify_in_process(path.read_bytes(), VerificationPolicy(max_bytes=1000))
    assert (same.status, same.errors, same.sha256) == (report.status, report.errors, report.sha256)
