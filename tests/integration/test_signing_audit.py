"""Signatures in the audit log (issue 9): a signing session created, a signature refused then
accepted, a VGCA plugin upload refused then accepted, an agency seal made: each is an entry of
the hash chain, written with the row it records, and `lienthong audit verify` finds the chain
intact. Real server, real SoftHSM tokens, real test PKI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fixtures_pki
from aiohttp import FormData
from axis_client import NGHE_AN, VPCP, Axis, document
from signing_session_fixtures import Tokens, axis_config, sig_pki, sig_tokens, token_sign

from server.cli import main as cli_main
from server.http.appkeys import DATABASE
from signing import SigningServices, sign_pdf
from signing import devpki as pki_cli
from storage.audit import AuditEntry, AuditRepo

__all__ = ["axis_config", "sig_pki", "sig_tokens"]


async def _entries(axis: Axis) -> list[AuditEntry]:
    async with axis.client.app[DATABASE].reader() as tx:
        return await AuditRepo(tx).page(None, 1000)


def _signing(entries: list[AuditEntry]) -> list[tuple[str, str, list[str]]]:
    return [(e.action, e.actor, e.objects) for e in entries if e.action.startswith("signature.")]


async def _new_session(axis: Axis, pki: pki_cli.DevPki, json: dict[str, Any]) -> dict[str, Any]:
    body = {"certificate": base64.b64encode(pki.cert("officer").dump()).decode(), **json}
    resp = await axis.client.post("/api/v1/signing-sessions", json=body, headers=axis.auth(NGHE_AN))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def _put_signature(axis: Axis, session_id: str, raw: bytes) -> Any:
    return await axis.client.put(
        f"/api/v1/signing-sessions/{session_id}/signature",
        data=raw,
        headers=axis.auth(NGHE_AN, **{"Content-Type": "application/octet-stream"}),
    )


async def _upload(axis: Axis, session: dict[str, Any], data: bytes) -> Any:
    form = FormData()
    form.add_field("file", data, filename="signed.pdf", content_type="application/pdf")
    url = urlsplit(session["vgca"]["FileUploadHandler"])
    return await axis.client.post(
        url.path + (f"?{url.query}" if url.query else ""), data=form,
        headers={"Authorization": f"Bearer {session['vgca']['JWTToken']}"},
    )  # fmt: skip


def _plugin_sign(tokens: Tokens, pki: pki_cli.DevPki, source: Path, out: Path) -> Path:
    services = SigningServices()
    try:
        signer = tokens.officer.signer("officer", chain=[pki.cert("gov")])
        return sign_pdf(source, out, signer, services=services)
    finally:
        services.close()


async def test_signing_actions_are_audited_and_the_chain_verifies(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens, tmp_path: Path, capsys: Any
) -> None:
    pdf = fixtures_pki.minimal_pdf(text="Quyet dinh")
    sent = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("qd.pdf", "application/pdf", pdf)])
    )
    doc_id = sent["id"]
    officer_sha = sig_pki.cert("officer").sha256.hex()

    # Two-step: a session on the attachment, a signature that does not verify, the right one.
    two_step = await _new_session(axis, sig_pki, {"document_id": doc_id, "attachment": 0})
    sid = two_step["session_id"]
    resp = await _put_signature(axis, sid, b"\x01" * 256)
    assert resp.status == 422, await resp.text()
    raw = token_sign(sig_tokens, "officer", bytes.fromhex(two_step["digest"]["hex"]))
    resp = await _put_signature(axis, sid, raw)
    assert resp.status == 200, await resp.text()
    signed_sha = (await resp.json())["signed"]["sha256"]
    resp = await _put_signature(axis, sid, raw)  # signed already: refused, recorded
    assert resp.status == 409, await resp.text()

    # The VGCA plugin: an upload of another PDF, then the served PDF signed once.
    form = FormData()
    form.add_field("pdf", pdf, filename="cong-van.pdf", content_type="application/pdf")
    form.add_field("certificate", sig_pki.cert_path("officer").read_bytes(), filename="o.pem")
    resp = await axis.client.post("/api/v1/signing-sessions", data=form, headers=axis.auth(NGHE_AN))
    assert resp.status == 201, await resp.text()
    plugin = dict(await resp.json())
    other = tmp_path / "other.pdf"
    other.write_bytes(fixtures_pki.minimal_pdf(text="Another document"))
    wrong = await asyncio.to_thread(_plugin_sign, sig_tokens, sig_pki, other, tmp_path / "w.pdf")
    resp = await _upload(axis, plugin, wrong.read_bytes())
    assert resp.status == 422, await resp.text()
    served = tmp_path / "served.pdf"
    served.write_bytes(pdf)
    good = await asyncio.to_thread(_plugin_sign, sig_tokens, sig_pki, served, tmp_path / "g.pdf")
    resp = await _upload(axis, plugin, good.read_bytes())
    assert resp.status == 200, await resp.text()

    # The agency seal on the axis HSM, over the officer's signed version.
    resp = await axis.client.post(
        f"/api/v1/documents/{doc_id}/attachments/0/seal", json={"level": "B-B"},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    version = await resp.json()

    entries = await _entries(axis)
    psid = plugin["session_id"]
    assert _signing(entries) == [
        ("signature.session.create", NGHE_AN, [sid, doc_id]),
        ("signature.refuse", NGHE_AN, [sid, doc_id]),
        ("signature.accept", NGHE_AN, [sid, doc_id]),
        ("signature.refuse", NGHE_AN, [sid, doc_id]),
        ("signature.session.create", NGHE_AN, [psid]),
        ("signature.upload.refuse", NGHE_AN, [psid]),
        ("signature.upload.accept", NGHE_AN, [psid]),
        ("signature.seal", NGHE_AN, [version["version"], doc_id]),
    ]
    by_action = {(e.action, e.objects[0]): e.details for e in entries}
    created = by_action[("signature.session.create", sid)]
    assert created["certificate_sha256"] == officer_sha and created["attachment"] == 0
    assert created["level"] == "B-B" and created["source_sha256"] == hashlib.sha256(pdf).hexdigest()
    refusals = [e.details["reason"] for e in entries if e.action.endswith(".refuse")]
    assert "does not verify against the enrolled certificate" in refusals[0]
    assert "signed already" in refusals[1]
    assert "does not start with the PDF this session served" in refusals[2]
    assert by_action[("signature.accept", sid)]["signed_sha256"] == signed_sha
    seal = by_action[("signature.seal", version["version"])]
    assert seal["sha256"] == version["sha256"] and seal["base_sha256"] == signed_sha
    assert seal["token_label"] == next(iter(fixtures_pki.AGENCY_SEAL_TOKENS))

    # Each accepted entry sits with its row: the session row says signed, the version exists.
    conn = sqlite3.connect(axis.config.db_path)
    try:
        states = dict(conn.execute("SELECT id, state FROM signing_sessions").fetchall())
        versions = {r[0] for r in conn.execute("SELECT id FROM attachment_versions")}
    finally:
        conn.close()
    assert states == {sid: "signed", psid: "signed"} and version["version"] in versions

    code = await asyncio.to_thread(
        cli_main,
        [
            "audit", "verify", "--data-dir", str(axis.config.storage.data_dir),
            "--trust", str(sig_pki.directory / "trust" / "root.cert.pem"),
        ],
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith(f"audit log OK: {len(entries)} entries")


async def test_a_refused_session_request_leaves_no_entry(
    axis: Axis, sig_pki: pki_cli.DevPki
) -> None:
    """A session that is never created (a look-alike certificate) records nothing: entries
    commit with their rows, and there is no row."""
    before = len(await _entries(axis))
    form = FormData()
    form.add_field("pdf", fixtures_pki.minimal_pdf(), filename="a.pdf")
    form.add_field(
        "certificate", sig_pki.cert_path("lookalike-officer").read_bytes(), filename="c.pem"
    )
    resp = await axis.client.post("/api/v1/signing-sessions", data=form, headers=axis.auth(NGHE_AN))
    assert resp.status == 422, await resp.text()
    assert [e.action for e in (await _entries(axis))[before:]] == []
