"""The archive carries the verification reports made at arrival: in the record, as JSON files in
the BagIt package, and `lienthong archive verify` compares the attachments with them."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import bagit
import pytest
from axis_client import NGHE_AN, VPCP, Axis, document, sha256

from server.cli import main
from server.http.appkeys import VERIFIER

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
pytestmark = pytest.mark.usefixtures("offline_verification")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()
TAMPERED = (CORPUS / "pdf-signed-added-page.pdf").read_bytes()
NAME = "Quyết định.pdf"


async def _send(axis: Axis) -> str:
    files = [(NAME, "application/pdf", ORIGINAL), ("ghi chú.txt", "text/plain", b"note")]
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=files))
    return str(receipt["id"])


async def _bag(axis: Axis, doc_id: str, target: Path) -> Path:
    resp = await axis.get(f"/api/v1/archive/{doc_id}/package", NGHE_AN)
    assert resp.status == 200
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        zf.extractall(target)
    return target / f"lienthong-{doc_id}"


async def test_record_lists_each_pdf_attachments_report(axis: Axis) -> None:
    doc_id = await _send(axis)
    await axis.client.app[VERIFIER].drain()
    resp = await axis.get(f"/api/v1/archive/{doc_id}", NGHE_AN)
    assert resp.status == 200
    record = await resp.json()
    [entry] = record["verification"]  # the text attachment has none
    assert entry["index"] == 0 and entry["name"] == NAME
    assert entry["sha256"] == sha256(ORIGINAL) == record["attachments"][0]["sha256"]
    assert entry["verdict"] == "indeterminate"  # intact, but its root is foreign
    report = entry["report"]
    assert report["schema"] == "lienthong.verification/1"
    assert report["file"]["sha256"] == sha256(ORIGINAL)
    assert report["signatures"][0]["intact"] is True


async def test_bag_carries_the_reports_and_archive_verify_compares(
    axis: Axis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc_id = await _send(axis)
    # no drain: the bag waits for the verification still running
    bag_dir = await _bag(axis, doc_id, tmp_path / "bag")
    bagit.Bag(str(bag_dir)).validate()
    stored = bag_dir / "data" / "verification" / f"00-{NAME}.json"
    report = json.loads(stored.read_text("utf-8"))
    assert report["file"]["sha256"] == sha256(
        (bag_dir / "data" / "attachments" / f"00-{NAME}").read_bytes()
    )
    resp = await axis.get(f"/api/v1/documents/{doc_id}/attachments/0/verification", NGHE_AN)
    assert await resp.json() == report  # the very report made at arrival

    code = await asyncio.to_thread(main, ["archive", "verify", str(bag_dir)])
    printed = capsys.readouterr().out
    assert code == 2  # the root is foreign: INDETERMINATE
    assert f"00-{NAME}: at arrival INDETERMINATE" in printed

    # A forger swaps the PDF and rebuilds the manifests: the bag is "valid", the report is not.
    (bag_dir / "data" / "attachments" / f"00-{NAME}").write_bytes(TAMPERED)
    bag = bagit.Bag(str(bag_dir))
    bag.save(manifests=True)
    bag.validate()
    code = await asyncio.to_thread(main, ["archive", "verify", str(bag_dir)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "DIFFERS from the file verified at arrival" in printed
