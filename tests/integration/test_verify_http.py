"""Verification over HTTP: POST /api/v1/verify, the attachment reports made on arrival, and
the /xac-minh page, on the real app (axis fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import FormData
from axis_client import NGHE_AN, OUTSIDER, VPCP, Axis, document, sha256

from server.http.verify import VERIFIER

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
pytestmark = pytest.mark.usefixtures("offline_verification")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()
TAMPERED = (CORPUS / "pdf-signed-added-page.pdf").read_bytes()


async def test_post_pdf_body_gives_the_json_report(axis: Axis) -> None:
    resp = await axis.client.post(
        "/api/v1/verify?name=goc.pdf",
        data=ORIGINAL,
        headers=axis.auth(VPCP, **{"Content-Type": "application/pdf"}),
    )
    assert resp.status == 200
    report = await resp.json()
    assert report["schema"] == "lienthong.verification/1"
    assert report["file"]["name"] == "goc.pdf"
    sig = report["signatures"][0]
    assert sig["intact"] is True and sig["changes"] == "none"
    assert sig["indication"] == "INDETERMINATE"  # a foreign root: not in certs/trust/


async def test_multipart_upload_and_pdf_report(axis: Axis) -> None:
    form = FormData()
    form.add_field("file", TAMPERED, filename="sua.pdf", content_type="application/pdf")
    resp = await axis.client.post("/api/v1/verify", data=form, headers=axis.auth(VPCP))
    assert resp.status == 200
    report = await resp.json()
    assert report["file"]["name"] == "sua.pdf"
    assert report["signatures"][0]["changes"] == "other"
    assert report["signatures"][0]["indication"] == "TOTAL_FAILED"
    resp = await axis.client.post(
        "/api/v1/verify",
        data=TAMPERED,
        headers=axis.auth(VPCP, **{"Content-Type": "application/pdf", "Accept": "application/pdf"}),
    )
    assert resp.status == 200 and resp.content_type == "application/pdf"
    assert (await resp.read()).startswith(b"%PDF-")


async def test_bad_uploads_are_problems(axis: Axis) -> None:
    resp = await axis.client.post("/api/v1/verify", data=ORIGINAL)
    assert resp.status == 401
    resp = await axis.client.post(
        "/api/v1/verify", data=b"", headers=axis.auth(VPCP, **{"Content-Type": "application/pdf"})
    )
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    resp = await axis.client.post(
        "/api/v1/verify", data=b"<x/>", headers=axis.auth(VPCP, **{"Content-Type": "text/xml"})
    )
    assert resp.status == 415
    resp = await axis.client.post(
        "/api/v1/verify",
        data=b"not a pdf at all",
        headers=axis.auth(VPCP, **{"Content-Type": "application/pdf"}),
    )
    assert resp.status == 200
    report = await resp.json()
    assert report["status"] == "unreadable" and "không kiểm tra được" in report["summary_vi"]


async def test_attachments_are_verified_on_arrival(axis: Axis) -> None:
    files = [
        ("Quyết định.pdf", "application/pdf", ORIGINAL),
        ("Bị sửa.pdf", "application/pdf", TAMPERED),
        ("ghi chú.txt", "text/plain", "Xin chào".encode()),
    ]
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=files))
    verifier = axis.client.app[VERIFIER]
    await verifier.drain()
    # the reports made at arrival are stored (objects named by rows) before anyone asks
    stored = [await verifier.latest_row(sha256(data)) for _, _, data in files[:2]]
    for row in stored:
        assert row is not None and await verifier.objects.exists(row.report_sha256)
    base = f"/api/v1/documents/{receipt['id']}"
    resp = await axis.get(f"{base}/attachments/0/verification", NGHE_AN)
    assert resp.status == 200
    first = await resp.json()
    assert first["signatures"][0]["intact"] is True
    resp = await axis.get(f"{base}/attachments/1/verification", NGHE_AN)
    assert (await resp.json())["signatures"][0]["changes"] == "other"
    resp = await axis.get(f"{base}/attachments/2/verification", NGHE_AN)
    assert resp.status == 415
    resp = await axis.get(f"{base}/attachments/0/verification", OUTSIDER)
    assert resp.status == 404
    summary = await (await axis.get(f"{base}/verification", NGHE_AN)).json()
    assert [a["index"] for a in summary["attachments"]] == [0, 1]
    assert summary["attachments"][1]["indication"] == "TOTAL_FAILED"
    assert "sửa đổi sau khi ký" in summary["attachments"][1]["summary_vi"]


async def test_verification_page_is_vietnamese_html_without_cdn(axis: Axis) -> None:
    resp = await axis.get("/xac-minh", None)  # public: a clerk's browser has no token
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert "Xác minh chữ ký số" in html and "/api/v1/public/verify" in html
    assert "http://" not in html and "https://" not in html


async def test_oversized_upload_is_413(axis: Axis, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(axis.client.app[VERIFIER], "upload_max_bytes", 1000)
    resp = await axis.client.post(
        "/api/v1/verify",
        data=ORIGINAL,
        headers=axis.auth(VPCP, **{"Content-Type": "application/pdf"}),
    )
    assert resp.status == 413


async def test_the_event_loop_stays_free_during_verification(axis: Axis) -> None:
    import asyncio
    import time

    slow = (CORPUS / "pades-signed-filled-form.pdf").read_bytes()  # about 1.5 s to verify
    headers = axis.auth(VPCP, **{"Content-Type": "application/pdf"})
    # warm the worker pool first so process start-up is not measured
    await axis.client.post("/api/v1/verify", data=ORIGINAL, headers=headers)
    job = asyncio.ensure_future(axis.client.post("/api/v1/verify", data=slow, headers=headers))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    health = await axis.client.get("/healthz")
    waited = time.monotonic() - started
    assert health.status == 200 and waited < 0.5
    assert not job.done()
    assert (await job).status == 200
