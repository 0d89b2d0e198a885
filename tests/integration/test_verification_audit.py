"""Verification in the audit log (issue 9): the report made at arrival, a stored re-verification
and an agency's upload to ``POST /api/v1/verify`` are entries of the hash chain (the report
entries written with the ``verification_reports`` rows they record); the anonymous public
endpoint records nothing; ``lienthong audit verify`` finds the chain intact.

Real app, real worker pool, real object store and SQLite; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document, sha256

from server.cli import main as cli_main
from server.http.appkeys import DATABASE, VERIFIER
from server.signatures.verdicts import verdict_of
from storage.audit import AuditEntry, AuditRepo

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = [pytest.mark.usefixtures("offline_verification"), pytest.mark.sqlite_only]
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()
TAMPERED = (CORPUS / "pdf-signed-added-page.pdf").read_bytes()  # changed after signing
PDF = "application/pdf"


async def _entries(axis: Axis) -> list[AuditEntry]:
    async with axis.client.app[DATABASE].reader() as tx:
        return await AuditRepo(tx).page(None, 1000)


def _verification(entries: list[AuditEntry]) -> list[AuditEntry]:
    return [e for e in entries if e.action.startswith("verification.")]


async def _audit_verify(axis: Axis, capsys: Any) -> tuple[int, str]:
    code = await asyncio.to_thread(
        cli_main, ["audit", "verify", "--data-dir", str(axis.config.storage.data_dir)]
    )
    return code, capsys.readouterr().out


async def test_verifications_are_audited_and_the_chain_verifies(axis: Axis, capsys: Any) -> None:
    verifier = axis.client.app[VERIFIER]
    sent = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("Quyết định.pdf", PDF, ORIGINAL)])
    )
    doc_id = sent["id"]
    await verifier.drain()
    key = sha256(ORIGINAL)
    [row] = await verifier.history(key)

    # the report at arrival: one entry by the axis naming the document, attachment and report
    [arrival] = _verification(await _entries(axis))
    assert (arrival.action, arrival.actor) == ("verification.arrival", "axis")
    assert arrival.objects == [doc_id, key, row.report_sha256]
    assert arrival.details["attachment"] == 0
    assert arrival.details["verdict"] == row.verdict == "indeterminate"
    assert arrival.details["report_size"] == row.report_size
    # ... and it sits after the send it follows from
    send = next(e for e in await _entries(axis) if e.action == "document.send")
    assert send.seq < arrival.seq

    # reading the stored report again records nothing (no row is written)
    resp = await axis.get(f"/api/v1/documents/{doc_id}/attachments/0/verification", NGHE_AN)
    assert resp.status == 200
    assert len(_verification(await _entries(axis))) == 1

    # a refresh inside the minimum interval is answered, not stored: nothing recorded
    await asyncio.sleep(1.05)  # reports carry verified_at to the second
    url = f"/api/v1/documents/{doc_id}/attachments/0/verification?refresh=1"
    assert (await axis.get(url, NGHE_AN)).status == 200
    assert len(_verification(await _entries(axis))) == 1
    # past the interval it is stored, and recorded with the requesting agency as the actor
    verifier.refresh_min_interval = 0
    await asyncio.sleep(1.05)
    assert (await axis.get(url, NGHE_AN)).status == 200
    rows = await verifier.history(key)
    assert len(rows) == 2
    refresh = _verification(await _entries(axis))[-1]
    assert (refresh.action, refresh.actor) == ("verification.refresh", NGHE_AN)
    assert refresh.objects == [doc_id, key, rows[1].report_sha256]

    # an agency's upload: digest, size and verdict (never content), in an entry of its own
    resp = await axis.client.post(
        "/api/v1/verify", data=TAMPERED, headers=axis.auth(VPCP, **{"Content-Type": PDF})
    )
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    request = _verification(await _entries(axis))[-1]
    assert (request.action, request.actor) == ("verification.request", VPCP)
    assert request.objects == [sha256(TAMPERED)]
    assert request.details == {
        "sha256": sha256(TAMPERED),
        "size": len(TAMPERED),
        "verdict": verdict_of(report),
    }
    assert verdict_of(report) not in ("valid", "none")  # the verdict of this very upload

    # the anonymous public endpoint records nothing (anyone could flood the chain)
    before = await _entries(axis)
    resp = await axis.client.post(
        "/api/v1/public/verify", data=TAMPERED, headers={"Content-Type": PDF}
    )
    assert resp.status == 200, await resp.text()
    assert await _entries(axis) == before

    # every report row has its entry (written together), and the whole chain is intact
    conn = sqlite3.connect(axis.config.db_path)
    try:
        stored = {r[0] for r in conn.execute("SELECT report_sha256 FROM verification_reports")}
    finally:
        conn.close()
    audited = {e.objects[2] for e in _verification(before) if e.action != "verification.request"}
    assert stored == audited
    code, out = await _audit_verify(axis, capsys)
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith(f"audit log OK: {len(before)} entries")
