"""Every file of tests/corpus/pdf (written by others) against its expected verdict.

38 attacks or tampered files: never reported intact with no other changes; 17 valid files:
every signature intact (trust may be INDETERMINATE, their roots are foreign); 5 with permitted
changes: intact with changes none or permitted; nothing raises; each file within 5 s in an
isolated worker (pades_infinite_loop.pdf included).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signing.isolation import VerifierPool
from signing.report import Changes, Indication, ValidationReport
from signing.verify import VerificationPolicy

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf"
ROWS = list(csv.DictReader((CORPUS / "expected.tsv").open(encoding="utf-8"), delimiter="\t"))


def category(row: dict[str, str]) -> str:
    verdict = row["expected_verdict"]
    if verdict.startswith("PASS-integrity-permitted"):
        return "permitted"
    if verdict.startswith("PASS-integrity"):
        return "valid"
    if verdict == "NO-HANG":
        return "no-hang"
    return "attack"


def clean(sig) -> bool:  # type: ignore[no-untyped-def]
    """Intact with no changes beyond permitted ones: what an attack must never get."""
    return sig.intact and sig.changes in (Changes.NONE, Changes.PERMITTED)


@pytest.fixture(scope="module")
def pool() -> Iterator[VerifierPool]:
    p = VerifierPool(size=2)
    yield p
    p.close()


@pytest.fixture(scope="module")
def reports(pool: VerifierPool) -> dict[str, tuple[ValidationReport, float]]:
    # Verdicts are what this checks; the 5 s budget that ends a hang is test_verify_hostile's.
    policy = VerificationPolicy(timeout=20.0)
    out = {}
    for row in ROWS:
        data = (CORPUS / row["path"]).read_bytes()
        started = time.monotonic()
        report = pool.verify(data, policy, file_name=row["path"])
        out[row["path"]] = (report, time.monotonic() - started)
    return out


def test_corpus_counts() -> None:
    counts: dict[str, int] = {}
    for row in ROWS:
        counts[category(row)] = counts.get(category(row), 0) + 1
    assert counts == {"attack": 38, "valid": 17, "permitted": 5, "no-hang": 1}


@pytest.mark.parametrize("row", ROWS, ids=[r["path"] for r in ROWS])
def test_corpus_file(
    row: dict[str, str], reports: dict[str, tuple[ValidationReport, float]]
) -> None:
    report, elapsed = reports[row["path"]]
    # The budget ends a hang; the bound is generous so load cannot fail it (figures: bench/).
    assert elapsed < 30, f"took {elapsed:.1f} s"
    assert not any("took longer" in e or "worker died" in e for e in report.errors), report.errors
    kind = category(row)
    if kind == "attack":
        assert not report.all_passed
        if report.status == "signed":
            assert not all(clean(s) for s in report.signatures), report.to_json()
        else:
            assert report.status == "unreadable" and report.errors
    elif kind == "valid":
        assert report.status == "signed", report.errors
        for sig in report.signatures:
            assert sig.intact, (sig.field, sig.reasons)
            assert sig.indication is not Indication.TOTAL_PASSED or sig.trusted
    elif kind == "permitted":
        assert report.status == "signed", report.errors
        for sig in report.signatures:
            assert clean(sig), (sig.field, sig.changes, sig.changes_detail)
        assert any(s.changes is Changes.PERMITTED for s in report.signatures)
    else:
        assert report.status in ("unreadable", "signed", "unsigned")


def test_known_pyhanko_miss_is_caught(reports: dict[str, tuple[ValidationReport, float]]) -> None:
    """Stock pyHanko calls this shadow 'replace' form filling; we call it 'other'."""
    report, _ = reports["mkl-testarea-itext7/replace-shadow-file-signed-manipulated.pdf"]
    (sig,) = report.signatures
    assert sig.intact and sig.changes is Changes.OTHER
    assert "Text1" in (sig.changes_detail or "")
    assert sig.indication is Indication.TOTAL_FAILED


def test_long_term_plugtest_file_is_not_shown_as_modified(
    reports: dict[str, tuple[ValidationReport, float]],
) -> None:
    """Its DSS + document time-stamp revision rebinds page 1 with a fresh, identical copy of
    the page's /Resources: an LTA update (ISO 32000-2 § 12.8.2.2), not a modification."""
    report, _ = reports["esig-dss/Signature-P-DE_SCI-4.pdf"]
    signature, timestamp = report.signatures
    assert signature.intact and signature.changes is Changes.PERMITTED
    assert signature.changes_detail == "lta_updates"
    assert signature.indication is not Indication.TOTAL_FAILED  # foreign roots: indeterminate
    assert not any("modified" in r for r in signature.reasons)
    assert timestamp.kind == "document_timestamp" and timestamp.intact


def test_reader_gaps_closed(reports: dict[str, tuple[ValidationReport, float]]) -> None:
    """Files stock pyHanko raises on now get a verdict with reasons."""
    hybrid, _ = reports["esig-dss/pdf-structtreeroot-changes.pdf"]
    assert any("leniently" in e for e in hybrid.errors)
    ecdsa, _ = reports["esig-dss/dss-PLAIN-ECDSA/TeleSec_PKS_eIDAS_QES_CA_1-baseline-b.pdf"]
    assert ecdsa.signatures[0].crypto_valid and ecdsa.signatures[0].intact
    spoof, _ = reports["esig-dss/pdf-spoofing-attack.pdf"]
    assert spoof.status == "signed" and spoof.signatures[0].changes is Changes.OTHER
    bad, _ = reports["esig-dss/BadEncodedCMS.pdf"]
    assert bad.signatures[0].indication is Indication.TOTAL_FAILED
    assert any("AssertionError" in r for r in bad.signatures[0].reasons)
    encrypted, _ = reports["esig-dss/encrypted.pdf"]
    assert encrypted.signatures[0].intact


def test_reports_are_json_round_trippable(
    reports: dict[str, tuple[ValidationReport, float]],
) -> None:
    for report, _ in reports.values():
        data = report.to_json()
        again = ValidationReport.from_json(data).to_json()
        assert again == data
        for sig in data["signatures"]:
            for key in (
                "indication",
                "subindication",
                "signer",
                "signing_time",
                "intact",
                "changes",
            ):
                assert key in sig
