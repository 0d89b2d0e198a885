"""Revocation answers are cached per certificate until their own nextUpdate, across
validation-context rebuilds; without an answer, hard-fail never passes."""

from __future__ import annotations

import importlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fixtures_pki

from signing import devpki
from signing.report import Indication
from signing.revcache import RevocationCache
from signing.verify import VerificationPolicy, verify_in_process

# the module itself: `signing.verify` is the function (signing/__init__.py exports it)
verify_module = importlib.import_module("signing.validation")


def test_cached_answers_survive_a_context_rebuild_but_not_their_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "_CACHE", verify_module._ContextCache())
    pki = fixtures_pki.make_pki(tmp_path / "pki")
    pdf = fixtures_pki.signed_pdf(pki, "officer2")
    # context_ttl=0: every file gets a freshly built validation context
    policy = VerificationPolicy.with_roots([pki.root_cert], online=True, context_ttl=0)
    with devpki.PkiServer(pki):
        first = verify_in_process(pdf, policy).signatures[0]
    assert first.indication is Indication.TOTAL_PASSED, first.reasons

    # the responder is gone: the next context is seeded from the cache
    second = verify_in_process(pdf, policy).signatures[0]
    assert second.indication is Indication.TOTAL_PASSED, second.reasons
    verify_module._CACHE.close()
    cache = verify_module._CACHE.revocation
    assert cache.values("ocsp") and cache.values("crl")

    # certomancer's OCSP answers are valid for 10 minutes: past that they are not used ...
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert cache.values("ocsp", now=later) == []
    # ... and without an answer (responder down) hard-fail does not pass
    fresh = VerificationPolicy.with_roots([pki.root_cert], online=True, context_ttl=0)
    monkeypatch.setattr(verify_module, "_CACHE", verify_module._ContextCache())
    third = verify_in_process(pdf, fresh).signatures[0]
    assert third.indication is Indication.INDETERMINATE
    assert third.intact and third.revocation is not None
    assert third.revocation.status != "good"
    verify_module._CACHE.close()


def test_answers_without_next_update_are_not_cached() -> None:
    cache = RevocationCache()
    cache.put(("ocsp", b"k", 1), object(), None)
    assert len(cache) == 0
    until = datetime.now(UTC) + timedelta(minutes=5)
    cache.put(("ocsp", b"k", 1), "answer", until)
    assert cache.get(("ocsp", b"k", 1)) == "answer"
    assert cache.get(("ocsp", b"k", 1), now=until) is None
    assert len(cache) == 0
