"""Verification on arrival through the Exchange's post-acceptance hook, the verdicts in ``meta``
and the inbox, catch-up after a missed arrival, and the public bounded upload of /xac-minh.

Real app, real worker pool, real PDFs (corpus and the test PKI); no part is mocked.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fixtures_pki
from axis_client import NGHE_AN, VPCP, Axis, document

from server.exchange import AcceptedDocument
from server.http.appkeys import EXCHANGE, VERIFIER
from signing import devpki
from signing.trust import TEST_TRUST_ENV

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = [pytest.mark.usefixtures("offline_verification"), pytest.mark.sqlite_only]
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()  # intact, foreign root
TAMPERED = (CORPUS / "pdf-signed-added-page.pdf").read_bytes()  # a page added after signing
UNSIGNED = fixtures_pki.minimal_pdf()
PDF = "application/pdf"


async def _meta(axis: Axis, doc_id: str, organ_id: str = NGHE_AN) -> dict[str, Any]:
    resp = await axis.get(f"/api/v1/documents/{doc_id}/meta", organ_id)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def _inbox_verdict(axis: Axis, doc_id: str) -> str:
    items = (await axis.inbox(NGHE_AN))["items"]
    [item] = [i for i in items if i["document_id"] == doc_id]
    return str(item["signatures"])


def _report_rows(axis: Axis) -> int:
    """How many verification reports the axis has stored (rows naming report objects)."""
    conn = sqlite3.connect(axis.config.db_path)
    try:
        return int(conn.execute("SELECT count(*) FROM verification_reports").fetchone()[0])
    finally:
        conn.close()


def _verdicts(meta: dict[str, Any]) -> list[str]:
    return [a["verification"]["verdict"] for a in meta["attachments"]]


async def test_the_hook_is_registered_on_the_exchange_not_wrapped(axis: Axis) -> None:
    app = axis.client.app
    exchange, verifier = app[EXCHANGE], app[VERIFIER]
    assert verifier.on_accepted in exchange.on_accepted
    assert "accept_document" not in vars(exchange)  # the class's method, not a wrapper


async def test_receipt_does_not_wait_meta_and_inbox_show_pending_then_verdicts(
    axis: Axis,
) -> None:
    verifier = axis.client.app[VERIFIER]
    files = [
        ("Quyết định.pdf", PDF, ORIGINAL),
        ("Bị sửa.pdf", PDF, TAMPERED),
        ("Chưa ký.pdf", PDF, UNSIGNED),
        ("ghi chú.txt", "text/plain", "Xin chào".encode()),
    ]
    # Every worker slot is taken: verification cannot start, yet the sender gets its 201.
    slots = verifier.pool.size
    for _ in range(slots):
        await verifier.workers.acquire()
    try:
        receipt = await asyncio.wait_for(
            axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=files)), timeout=10
        )
        meta = await _meta(axis, receipt["id"])
        assert _verdicts(meta) == ["pending", "pending", "pending", "not_pdf"]
        assert meta["signatures"] == "pending"
        assert await _inbox_verdict(axis, receipt["id"]) == "pending"
    finally:
        for _ in range(slots):
            verifier.workers.release()
    await verifier.drain()

    meta = await _meta(axis, receipt["id"])
    assert _verdicts(meta) == ["indeterminate", "invalid", "none", "not_pdf"]
    assert meta["signatures"] == "invalid"  # the worst of the PDF attachments
    first = meta["attachments"][0]["verification"]
    [sig] = first["signatures"]
    assert sig["intact"] is True and sig["changes"] == "none"
    assert sig["indication"] == "INDETERMINATE" and sig["signer"]
    assert first["summary_vi"] and first["sha256"] == meta["attachments"][0]["sha256"]
    tampered = meta["attachments"][1]["verification"]
    assert tampered["signatures"][0]["changes"] == "other"
    assert "sửa đổi sau khi ký" in tampered["summary_vi"]
    unsigned = meta["attachments"][2]["verification"]
    assert unsigned["status"] == "unsigned" and unsigned["signatures"] == []
    assert "report" not in meta["attachments"][3]["verification"]
    # the summary links to the full report, which is the one made at arrival
    resp = await axis.get(first["report"], VPCP)
    assert resp.status == 200
    assert (await resp.json())["verified_at"] == first["verified_at"]
    assert await _inbox_verdict(axis, receipt["id"]) == "invalid"


async def test_hook_failures_never_fail_the_send(axis: Axis) -> None:
    exchange = axis.client.app[EXCHANGE]
    seen: list[AcceptedDocument] = []

    def broken_at_call(accepted: AcceptedDocument) -> Any:
        raise RuntimeError("hook bug")

    async def broken_later(accepted: AcceptedDocument) -> None:
        raise RuntimeError("hook bug in the background")

    async def recording(accepted: AcceptedDocument) -> None:
        seen.append(accepted)

    exchange.on_accepted.extend([broken_at_call, broken_later, recording])
    try:
        package = document(VPCP, [NGHE_AN], attachments=[("a.pdf", PDF, TAMPERED)])
        receipt = await axis.send_ok(VPCP, package)
        await exchange.settle()
    finally:
        for hook in (broken_at_call, broken_later, recording):
            exchange.on_accepted.remove(hook)
    [accepted] = seen
    assert accepted.document.id == receipt["id"] and accepted.recipients == [NGHE_AN]
    assert accepted.meta["attachments"][0]["name"] == "a.pdf"
    # the verifier's own hook still ran
    assert (await _meta(axis, receipt["id"]))["signatures"] == "invalid"
    # a resend of the same bytes is answered idempotently and announces nothing again
    resend = await axis.send(VPCP, package)
    assert resend.status == 200  # idempotent: the first send was the 201
    assert len(seen) == 1


async def test_a_missed_arrival_is_caught_up_when_someone_looks(axis: Axis) -> None:
    app = axis.client.app
    exchange, verifier = app[EXCHANGE], app[VERIFIER]
    exchange.on_accepted.remove(verifier.on_accepted)  # as if the server stopped in between
    try:
        receipt = await axis.send_ok(
            VPCP, document(VPCP, [NGHE_AN], attachments=[("x.pdf", PDF, TAMPERED)])
        )
        await exchange.settle()
    finally:
        exchange.on_accepted.append(verifier.on_accepted)
    assert not verifier.pending and _report_rows(axis) == 0
    assert await _inbox_verdict(axis, receipt["id"]) == "pending"  # and now it is running
    assert verifier.pending
    await verifier.drain()
    assert (await _meta(axis, receipt["id"]))["signatures"] == "invalid"


def _zip_bomb() -> bytes:
    """A zip whose one member (declared a PDF) expands 8 MiB from a few kilobytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("b0m.pdf", b"%PDF-1.7\n" + bytes(8 * 1024 * 1024))
    return buffer.getvalue()


def _broken_zip() -> bytes:
    """A zip (it starts like one) whose central directory was cut off."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.pdf", UNSIGNED)
    return buffer.getvalue()[:60]


def _garbled_zip() -> bytes:
    """A zip whose directory is sound but whose member's compressed bytes were overwritten."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("c.pdf", ORIGINAL)
    data = buffer.getvalue()
    start = 30 + len("c.pdf")  # after the local file header
    return data[:start] + bytes(b ^ 0x5A for b in data[start : start + 160]) + data[start + 160 :]


async def test_an_undecodable_pdf_attachment_gets_one_final_verdict(
    axis: Axis, caplog: pytest.LogCaptureFixture
) -> None:
    """A zip bomb or a broken zip declared application/pdf: verified once, stored once as
    unreadable (indeterminate) with the reason, logged once without a traceback, and never
    tried again however often meta and the inbox are read."""
    caplog.set_level(logging.DEBUG, logger="lienthong")
    verifier = axis.client.app[VERIFIER]
    files = [
        ("Công văn.pdf", PDF, _zip_bomb()),
        ("Phụ lục.pdf", PDF, _broken_zip()),
        ("Tờ trình.pdf", PDF, _garbled_zip()),
    ]
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=files))
    doc_id = receipt["id"]
    await verifier.drain()
    assert _report_rows(axis) == 3
    for _ in range(3):
        meta = await _meta(axis, doc_id)
        assert not verifier.pending  # nothing was started again by reading
        assert _verdicts(meta) == ["indeterminate"] * 3
        assert meta["signatures"] == "indeterminate"
        assert [a["verification"]["status"] for a in meta["attachments"]] == ["unreadable"] * 3
        assert await _inbox_verdict(axis, doc_id) == "indeterminate"
        assert not verifier.pending
        await verifier.drain()
    assert _report_rows(axis) == 3
    bomb, broken, garbled = meta["attachments"]
    assert "zip bomb" in bomb["verification"]["summary_vi"]
    assert bomb["verification"]["sha256"] == bomb["sha256"]
    resp = await axis.get(bomb["verification"]["report"], NGHE_AN)
    assert resp.status == 200
    report = await resp.json()
    assert report["status"] == "unreadable" and report["signatures"] == []
    assert any("zip bomb" in e for e in report["errors"])
    resp = await axis.get(broken["verification"]["report"], NGHE_AN)
    assert any("not a zip" in e for e in (await resp.json())["errors"])
    resp = await axis.get(garbled["verification"]["report"], NGHE_AN)
    assert any("corrupt" in e for e in (await resp.json())["errors"])
    assert _report_rows(axis) == 3  # reading the reports stored nothing more
    # logged once per attachment, as a warning with the reason, never with a traceback
    assert not [r for r in caplog.records if r.exc_info or r.exc_text]
    said = [
        r for r in caplog.records if r.name == "lienthong.verify" and r.levelno >= logging.WARNING
    ]
    assert sorted(r.__dict__.get("index") for r in said) == [0, 1, 2]
    assert "zip bomb" in said[[r.__dict__.get("index") for r in said].index(0)].__dict__["reason"]


# --- the public upload of /xac-minh ------------------------------------------------------------


async def test_public_upload_needs_no_token_and_stores_nothing(axis: Axis) -> None:
    before = (_report_rows(axis), (await axis.snapshot())["objects"])
    resp = await axis.client.post(
        "/api/v1/public/verify?name=sua.pdf", data=TAMPERED, headers={"Content-Type": PDF}
    )
    assert resp.status == 200
    report = await resp.json()
    assert report["file"]["name"] == "sua.pdf"
    assert report["signatures"][0]["indication"] == "TOTAL_FAILED"
    assert (_report_rows(axis), (await axis.snapshot())["objects"]) == before
    # the agencies' endpoint keeps its token
    resp = await axis.client.post("/api/v1/verify", data=TAMPERED, headers={"Content-Type": PDF})
    assert resp.status == 401
    resp = await axis.client.get("/xac-minh")
    assert resp.status == 200


async def test_public_upload_is_bounded_busy_is_503_with_retry_after(
    axis: Axis, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = axis.client.app[VERIFIER]
    monkeypatch.setattr(verifier, "public_slots", 1)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield ORIGINAL[:1000]
        await release.wait()  # a slow client: its body trickles in
        yield ORIGINAL[1000:]

    # A stalled upload holds an upload slot, not the public one (taken once the body is here).
    stalled = asyncio.ensure_future(
        axis.client.post("/api/v1/public/verify", data=slow_body(), headers={"Content-Type": PDF})
    )
    for _ in range(200):
        if verifier.in_use["upload"]:
            break
        await asyncio.sleep(0.01)
    assert (verifier.in_use["upload"], verifier.public_in_use) == (1, 0)
    passes = await axis.client.post(
        "/api/v1/public/verify", data=TAMPERED, headers={"Content-Type": PDF}
    )
    assert passes.status == 200
    # The public slot held by a verification in progress: 503 with Retry-After.
    async with verifier.public_slot():
        busy = await axis.client.post(
            "/api/v1/public/verify", data=TAMPERED, headers={"Content-Type": PDF}
        )
    assert busy.status == 503
    assert busy.headers["Retry-After"] == str(verifier.retry_after)
    assert (await busy.json())["type"] == "/problems/verification-busy"
    release.set()
    assert (await stalled).status == 200
    assert verifier.in_use == {"upload": 0, "public": 0}
    assert not list(axis.config.spool_dir.iterdir())  # the uploads' spool files are gone


async def test_public_upload_over_the_size_limit_is_413(
    axis: Axis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(axis.client.app[VERIFIER], "public_max_bytes", 1000)
    resp = await axis.client.post(
        "/api/v1/public/verify", data=ORIGINAL, headers={"Content-Type": PDF}
    )
    assert resp.status == 413
    assert axis.client.app[VERIFIER].public_in_use == 0


# --- a signature the axis trusts: "valid" --------------------------------------------------------


@pytest.fixture
def trusted_pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[devpki.DevPki]:
    """The test PKI, trusted by the app (set before the app starts) and serving OCSP/CRL."""
    pki = fixtures_pki.make_pki(tmp_path / "pki")
    monkeypatch.setenv(TEST_TRUST_ENV, str(pki.directory / "trust"))
    monkeypatch.setenv("LIENTHONG_VERIFY_ONLINE", "1")
    with devpki.PkiServer(pki):
        yield pki


async def test_a_trusted_signature_is_valid_and_an_unsigned_pdf_lowers_it_to_none(
    trusted_pki: devpki.DevPki, axis: Axis
) -> None:
    # pyHanko's sync API: off the loop
    valid = await asyncio.to_thread(fixtures_pki.signed_pdf, trusted_pki)
    verifier = axis.client.app[VERIFIER]
    only_valid = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("Công văn.pdf", PDF, valid)])
    )
    with_unsigned = await axis.send_ok(
        VPCP,
        document(
            VPCP,
            [NGHE_AN],
            attachments=[("Công văn.pdf", PDF, valid), ("Phụ lục.pdf", PDF, UNSIGNED)],
        ),
    )
    await verifier.drain()
    meta = await _meta(axis, only_valid["id"])
    assert meta["signatures"] == "valid"
    summary = meta["attachments"][0]["verification"]
    assert summary["all_passed"] is True
    assert summary["signatures"][0]["signer"] == "Nguyễn Văn Ánh"
    assert "Chữ ký hợp lệ của Nguyễn Văn Ánh" in summary["summary_vi"]
    assert await _inbox_verdict(axis, only_valid["id"]) == "valid"
    assert (await _meta(axis, with_unsigned["id"]))["signatures"] == "none"
    assert await _inbox_verdict(axis, with_unsigned["id"]) == "none"
