"""Verification reports live in the object store (issue 8): each report is an object named by a
``verification_reports`` row; a re-verification adds a row and alters no stored object; report
files of earlier versions are moved into the store at start-up.

Real app, real worker pool, real filesystem store and SQLite; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from axis_client import NGHE_AN, VPCP, Axis, document, sha256

from server.app.application import build_app
from server.http.appkeys import VERIFIER
from server.runtime.config import load_config
from server.signatures.verdicts import report_bytes

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
pytestmark = pytest.mark.usefixtures("offline_verification")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()
PDF = "application/pdf"


async def _report(axis: Axis, doc_id: str, *, refresh: bool = False) -> dict[str, Any]:
    query = "?refresh=1" if refresh else ""
    resp = await axis.get(f"/api/v1/documents/{doc_id}/attachments/0/verification{query}", NGHE_AN)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def _next_second() -> None:
    """Reports carry verified_at to the second: a new one must differ from the last."""
    await asyncio.sleep(1.05)


async def test_a_report_is_an_object_and_a_refresh_adds_a_row(axis: Axis) -> None:
    verifier = axis.client.app[VERIFIER]
    receipt = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("Quyết định.pdf", PDF, ORIGINAL)])
    )
    await verifier.drain()
    key = sha256(ORIGINAL)
    [first] = await verifier.history(key)
    assert first.verdict == "indeterminate"  # intact, foreign root
    assert first.policy.startswith("roots=sha256:") and "hard-fail" in first.policy

    # the report is a content-addressed file under objects/, its bytes the canonical JSON
    path = verifier.objects.local_path(first.report_sha256)
    assert path is not None and path.is_relative_to(axis.config.objects_dir)
    stored_bytes = path.read_bytes()
    assert hashlib.sha256(stored_bytes).hexdigest() == first.report_sha256
    assert len(stored_bytes) == first.report_size
    at_arrival = await _report(axis, receipt["id"])
    assert report_bytes(at_arrival) == stored_bytes
    assert at_arrival["file"]["sha256"] == key

    # a refresh soon after the stored report is answered but not stored (default interval)
    await _next_second()
    fresh = await _report(axis, receipt["id"], refresh=True)
    assert fresh["verified_at"] != at_arrival["verified_at"]
    assert len(await verifier.history(key)) == 1

    # past the interval, a refresh stores a new report beside the first, which stays as it was
    verifier.refresh_min_interval = 0
    await _next_second()
    again = await _report(axis, receipt["id"], refresh=True)
    rows = await verifier.history(key)
    assert len(rows) == 2
    assert rows[0] == first and rows[1].report_sha256 != first.report_sha256
    assert path.read_bytes() == stored_bytes
    assert verifier.objects.local_path(rows[1].report_sha256) is not None
    # readers now get the latest; the archive keeps the arrival report and lists the later one
    assert await _report(axis, receipt["id"]) == again
    meta = await (await axis.get(f"/api/v1/documents/{receipt['id']}/meta", NGHE_AN)).json()
    assert meta["attachments"][0]["verification"]["verified_at"] == again["verified_at"]
    record = await (await axis.get(f"/api/v1/archive/{receipt['id']}", NGHE_AN)).json()
    [entry] = record["verification"]
    assert entry["report"] == at_arrival and entry["later"] == [again]


async def test_arrival_keeps_the_first_report_when_verifications_race(axis: Axis) -> None:
    verifier = axis.client.app[VERIFIER]
    receipt = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("a.pdf", PDF, ORIGINAL)])
    )
    await verifier.drain()
    [first] = await verifier.history(sha256(ORIGINAL))
    # a second arrival-style verification (as if it ran concurrently) names nothing new
    await _next_second()
    report = (await verifier.verify(ORIGINAL, "a.pdf")).to_json()
    kept = await verifier.keep([sha256(ORIGINAL)], report, only_first=True)
    assert await verifier.history(sha256(ORIGINAL)) == [first]
    assert kept == await _report(axis, receipt["id"]) != report


async def test_report_files_of_earlier_versions_move_into_the_store(tmp_path: Path) -> None:
    config = load_config(env={"LIENTHONG_SERVER_LOG_JSON": "0"}, data_dir=tmp_path / "data")
    legacy = config.storage.data_dir / "verification"
    legacy.mkdir(parents=True)
    key = sha256(ORIGINAL)
    old_report = {
        "schema": "lienthong.verification/1",
        "status": "signed",
        "indication": "INDETERMINATE",
        "all_passed": False,
        "verified_at": "2024-05-01T09:30:00+07:00",
        "file": {"name": "Quyết định.pdf", "sha256": key},
        "signatures": [{"index": 0, "indication": "INDETERMINATE", "intact": True}],
        "summary_vi": "Chữ ký chưa xác định được.",
    }
    (legacy / f"{key}.json").write_text(json.dumps(old_report, ensure_ascii=False), "utf-8")
    broken = "0" * 64
    (legacy / f"{broken}.json").write_text("{not json", "utf-8")

    async with TestClient(TestServer(build_app(config))) as client:
        verifier = client.app[VERIFIER]
        [row] = await verifier.history(key)
        assert row.verdict == "indeterminate"
        assert row.verified_at.isoformat() == "2024-05-01T02:30:00+00:00"
        assert await verifier.stored(key) == old_report
        path = verifier.objects.local_path(row.report_sha256)
        assert path is not None and path.read_bytes() == report_bytes(old_report)
        assert await verifier.history(broken) == []
    # the imported file is gone, the unreadable one is left (with a warning) for a person
    assert sorted(p.name for p in legacy.iterdir()) == [f"{broken}.json"]

    # a restart imports nothing twice; once the folder is empty it goes
    (legacy / f"{broken}.json").unlink()
    async with TestClient(TestServer(build_app(config))) as client:
        assert len(await client.app[VERIFIER].history(key)) == 1
    assert not legacy.exists()
