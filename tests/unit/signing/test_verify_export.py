"""``signing.verify(pdf, policy) -> ValidationReport`` is callable from the package (issue 7),
while the submodule stays importable under the same name."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import fixtures_pki

import signing


def test_signing_verify_is_the_function_and_the_module_still_imports() -> None:
    module = importlib.import_module("signing.verify")
    from signing.verify import verify, verify_in_process

    assert callable(signing.verify) and signing.verify is verify is module.verify
    assert verify_in_process is module.verify_in_process
    assert signing.ValidationReport is module.ValidationReport
    assert {"verify", "ValidationReport", "VerificationPolicy", "sign_pdf"} <= set(signing.__all__)


def test_signing_verify_gives_a_report() -> None:
    policy = signing.VerificationPolicy.from_trust_store(online=False)
    report = signing.verify(fixtures_pki.minimal_pdf(), policy, file_name="a.pdf", isolate=False)
    assert isinstance(report, signing.ValidationReport)
    assert report.status == "unsigned" and report.file_name == "a.pdf"
