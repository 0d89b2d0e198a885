"""Two-step signing over HTTP: the axis prepares, the officer's SoftHSM token signs the digest
(CKM_RSA_PKCS over a DigestInfo, as browser plug-ins do), the axis checks and finishes.

Every signed PDF is validated by pyHanko against the test root (hard-fail revocation) and by
poppler's pdfsig. Refusals leave nothing half written.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fixtures_pki
import pytest
from aiohttp import FormData
from axis_client import NGHE_AN, VPCP, Axis, document
from signing_session_fixtures import (
    IMAGES,
    Tokens,
    assert_nothing_written,
    axis_config,
    pdfsig_verdicts,
    sig_pki,
    sig_tokens,
    spool_files,
    stored,
    token_sign,
    validate_all,
)

from server.app.application import build_app
from server.http.appkeys import DATABASE
from signing import devpki as pki_cli
from storage.ids import to_db_time

__all__ = ["axis_config", "sig_pki", "sig_tokens"]

REPO = Path(__file__).resolve().parents[2]
needs_pdfsig = pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils missing")


def _form(pdf: bytes, cert_pem: bytes, **fields: str) -> FormData:
    form = FormData()
    form.add_field("pdf", pdf, filename="to-trinh.pdf", content_type="application/pdf")
    form.add_field("certificate", cert_pem, filename="officer.pem")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


def _pem(pki: pki_cli.DevPki, label: str) -> bytes:
    return pki.cert_path(label).read_bytes()


async def _create(axis: Axis, organ_id: str, form: Any, **kw: Any) -> Any:
    return await axis.client.post(
        "/api/v1/signing-sessions", data=form, headers=axis.auth(organ_id), **kw
    )


async def _put_signature(axis: Axis, organ_id: str, session_id: str, raw: bytes) -> Any:
    return await axis.client.put(
        f"/api/v1/signing-sessions/{session_id}/signature",
        data=raw,
        headers=axis.auth(organ_id, **{"Content-Type": "application/octet-stream"}),
    )


@needs_pdfsig
async def test_signing_session_round_trip_with_signer_stamp(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens, tmp_path: Path
) -> None:
    pdf = fixtures_pki.minimal_pdf()
    form = _form(
        pdf, _pem(sig_pki, "officer"), profile="signer", level="B-T",
        title="KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH", full_name="Nguyễn Văn Ánh",
        reason="Phê duyệt", location="Nghệ An",
    )  # fmt: skip
    form.add_field("image", (IMAGES / "sample-signature.png").read_bytes(), filename="sig.png")
    resp = await _create(axis, NGHE_AN, form)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    session_id = body["session_id"]
    assert resp.headers["Location"] == f"/api/v1/signing-sessions/{session_id}"
    digest = base64.b64decode(body["digest"]["base64"])
    assert digest.hex() == body["digest"]["hex"] and len(digest) == 32
    assert (
        body["state"] == "pending" and body["source"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    )
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)
    assert body["download_url"].startswith("http") and "token=" in body["download_url"]
    assert body["vgca"]["FileUploadHandler"] == body["upload_url"]

    raw = token_sign(sig_tokens, "officer", digest)
    resp = await _put_signature(axis, NGHE_AN, session_id, raw)
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["state"] == "signed" and done["signed"]["via"] == "signature"

    resp = await axis.get(f"/api/v1/signing-sessions/{session_id}", NGHE_AN)
    assert (await resp.json())["signed"]["url"] == f"/api/v1/signing-sessions/{session_id}/signed"
    resp = await axis.get(f"/api/v1/signing-sessions/{session_id}/signed", NGHE_AN)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    signed = await resp.read()
    assert hashlib.sha256(signed).hexdigest() == done["signed"]["sha256"]
    assert signed.startswith(pdf[:-1].rsplit(b"%%EOF", 1)[0])  # incremental: original intact
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    [status] = await asyncio.to_thread(validate_all, out, sig_pki.root_cert, sig_pki.cert("gov"))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.signing_cert.subject.native["common_name"] == "Nguyễn Văn Ánh"
    assert status.timestamp_validity is not None  # B-T
    assert pdfsig_verdicts(out) == ["Signature is Valid."]


async def test_signing_session_json_attachment_and_b64_signature(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens
) -> None:
    """A session on a received attachment (JSON request), the signature sent as base64 text:
    the signed PDF becomes a version of that attachment, the package is untouched."""
    pdf = fixtures_pki.minimal_pdf(text="Quyet dinh")
    sent = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("qd.pdf", "application/pdf", pdf)])
    )
    resp = await axis.client.post(
        "/api/v1/signing-sessions",
        json={
            "document_id": sent["id"], "attachment": 0,
            "certificate": base64.b64encode(sig_pki.cert("officer").dump()).decode(),
        },
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["document_id"] == sent["id"] and body["attachment"] == 0
    raw = token_sign(sig_tokens, "officer", bytes.fromhex(body["digest"]["hex"]))
    resp = await axis.client.put(
        f"/api/v1/signing-sessions/{body['session_id']}/signature",
        data=base64.b64encode(raw),
        headers=axis.auth(NGHE_AN, **{"Content-Type": "text/plain"}),
    )
    assert resp.status == 200, await resp.text()
    signed = (await resp.json())["signed"]
    resp = await axis.get(f"/api/v1/documents/{sent['id']}/attachments/0/versions", NGHE_AN)
    [version] = (await resp.json())["items"]
    assert version["kind"] == "signature" and version["sha256"] == signed["sha256"]
    assert version["base_sha256"] == hashlib.sha256(pdf).hexdigest()
    resp = await axis.get(f"/api/v1/documents/{sent['id']}/attachments/0", NGHE_AN)
    assert await resp.read() == pdf  # the attachment as sent never changes
    # the sender sees neither the recipient's versions nor its session
    resp = await axis.get(f"/api/v1/documents/{sent['id']}/attachments/0/versions", VPCP)
    assert (await resp.json())["items"] == []
    resp = await axis.get(version["url"], VPCP)
    assert resp.status == 404


async def test_signing_session_refuses_bad_signatures_then_accepts_once(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens
) -> None:
    resp = await _create(axis, NGHE_AN, _form(fixtures_pki.minimal_pdf(), _pem(sig_pki, "officer")))
    body = await resp.json()
    session_id, digest = body["session_id"], bytes.fromhex(body["digest"]["hex"])
    before, spool = stored(axis.config), spool_files(axis.config)
    # another officer's key, garbage, and the right key over the wrong digest
    for raw in (
        token_sign(sig_tokens, "officer2", digest),
        b"\x00" * 256,
        token_sign(sig_tokens, "officer", hashlib.sha256(b"other").digest()),
    ):
        resp = await _put_signature(axis, NGHE_AN, session_id, raw)
        assert resp.status == 422, await resp.text()
        problem = await resp.json()
        assert problem["type"] == "/problems/signature-invalid"
        assert resp.content_type == "application/problem+json"
    assert_nothing_written(axis.config, before, spool)
    resp = await _put_signature(axis, NGHE_AN, session_id, b"")
    assert resp.status == 400
    # another agency: not found, as if absent
    raw = token_sign(sig_tokens, "officer", digest)
    resp = await _put_signature(axis, VPCP, session_id, raw)
    assert resp.status == 404
    resp = await axis.get(f"/api/v1/signing-sessions/{session_id}", VPCP)
    assert resp.status == 404
    resp = await _put_signature(axis, NGHE_AN, session_id, raw)
    assert resp.status == 200, await resp.text()
    resp = await _put_signature(axis, NGHE_AN, session_id, raw)
    assert resp.status == 409
    assert (await resp.json())["type"] == "/problems/session-closed"


async def test_signing_session_expires(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens
) -> None:
    resp = await _create(axis, NGHE_AN, _form(fixtures_pki.minimal_pdf(), _pem(sig_pki, "officer")))
    body = await resp.json()
    conn = sqlite3.connect(axis.config.db_path)
    with conn:
        conn.execute(
            "UPDATE signing_sessions SET expires_at = ? WHERE id = ?",
            (to_db_time(datetime.now(UTC) - timedelta(seconds=1)), body["session_id"]),
        )
    conn.close()
    raw = token_sign(sig_tokens, "officer", bytes.fromhex(body["digest"]["hex"]))
    resp = await _put_signature(axis, NGHE_AN, body["session_id"], raw)
    assert resp.status == 410
    assert (await resp.json())["type"] == "/problems/session-expired"
    resp = await axis.get(f"/api/v1/signing-sessions/{body['session_id']}", NGHE_AN)
    assert (await resp.json())["state"] == "expired"


@pytest.mark.parametrize(
    ("label", "match"), [("officer-revoked", "revoked"), ("officer-expired", "expired")]
)
async def test_signing_session_refuses_revoked_and_expired_certificates(
    axis: Axis, sig_pki: pki_cli.DevPki, label: str, match: str
) -> None:
    before, spool = stored(axis.config), spool_files(axis.config)
    resp = await _create(axis, NGHE_AN, _form(fixtures_pki.minimal_pdf(), _pem(sig_pki, label)))
    assert resp.status == 422, await resp.text()
    problem = await resp.json()
    assert problem["type"] == "/problems/certificate-rejected"
    assert match in problem["detail"]
    assert_nothing_written(axis.config, before, spool)


def _encrypted_pdf() -> bytes:
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter()
    writer.insert_page(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                generic.pdf_name("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 0, 595, 842)]
                ),
            }
        )
    )
    writer.encrypt("owner-secret", "user-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("pdf", "cert", "status", "slug"),
    [
        (b"GIF89a not a pdf at all", "officer", 422, "invalid-pdf"),
        (fixtures_pki.minimal_pdf()[:200], "officer", 422, "invalid-pdf"),
        (b"encrypted", "officer", 422, "invalid-pdf"),
        (fixtures_pki.minimal_pdf(), "garbage", 400, "bad-request"),
        (fixtures_pki.minimal_pdf(), "lookalike-officer", 422, "certificate-rejected"),
    ],
    ids=["not-pdf", "corrupt", "encrypted", "bad-certificate", "untrusted-lookalike"],
)
async def test_signing_session_bad_input_is_a_clear_problem(
    axis: Axis, sig_pki: pki_cli.DevPki, pdf: bytes, cert: str, status: int, slug: str
) -> None:
    if pdf == b"encrypted":
        pdf = _encrypted_pdf()
    cert_pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    if cert != "garbage":
        cert_pem = _pem(sig_pki, cert)
    before, spool = stored(axis.config), spool_files(axis.config)
    resp = await _create(axis, NGHE_AN, _form(pdf, cert_pem))
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == f"/problems/{slug}", problem
    assert_nothing_written(axis.config, before, spool)


async def test_signing_session_needs_a_source_and_a_certificate(
    axis: Axis, sig_pki: pki_cli.DevPki
) -> None:
    resp = await axis.client.post(
        "/api/v1/signing-sessions", json={"certificate": _pem(sig_pki, "officer").decode()},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 400
    resp = await axis.client.post(
        "/api/v1/signing-sessions", json={"document_id": "nope", "attachment": 0},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 400
    resp = await axis.client.post(
        "/api/v1/signing-sessions",
        json={"document_id": "nope", "attachment": 0,
              "certificate": _pem(sig_pki, "officer").decode()},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 404
    csv = axis.auth(NGHE_AN, **{"Content-Type": "text/csv"})
    resp = await axis.client.post("/api/v1/signing-sessions", data=b"x", headers=csv)
    assert resp.status == 415
    resp = await axis.client.post("/api/v1/signing-sessions", json={})
    assert resp.status == 401


async def test_signing_session_survives_a_restart(
    aiohttp_client: Any, axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens
) -> None:
    """Prepared by one app instance, finished by a fresh one on the same data: the session's
    state lives in the database and object store only."""
    resp = await _create(axis, NGHE_AN, _form(fixtures_pki.minimal_pdf(), _pem(sig_pki, "officer")))
    body = await resp.json()
    await axis.client.close()
    app = build_app(axis.config)
    client = await aiohttp_client(app)
    assert app[DATABASE] is not None
    raw = token_sign(sig_tokens, "officer", bytes.fromhex(body["digest"]["hex"]))
    resp = await client.put(
        f"/api/v1/signing-sessions/{body['session_id']}/signature",
        data=raw,
        headers=axis.auth(NGHE_AN, **{"Content-Type": "application/octet-stream"}),
    )
    assert resp.status == 200, await resp.text()


async def _lienthong(tokens: Tokens, *args: str) -> tuple[int, str, str]:
    """Run the ``lienthong`` CLI in its own process (its own PKCS#11 login), without blocking
    the event loop that serves the axis it talks to."""
    env = dict(os.environ, SOFTHSM2_CONF=str(tokens.conf), LIENTHONG_PIN=fixtures_pki.OFFICER_PIN)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())",
        *args, env=env, cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return int(proc.returncode or 0), out.decode(), err.decode()


@needs_pdfsig
async def test_signing_session_signed_by_the_cli_in_another_process(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens, tmp_path: Path
) -> None:
    resp = await _create(axis, NGHE_AN, _form(fixtures_pki.minimal_pdf(), _pem(sig_pki, "officer")))
    session_id = (await resp.json())["session_id"]
    server = str(axis.client.make_url("/"))
    common = (
        "sign", "--session", session_id, "--server", server, "--token", axis.tokens[NGHE_AN],
        "--token-module", fixtures_pki.SOFTHSM2_MODULE,
        "--token-label", fixtures_pki.OFFICER_TOKEN,
    )  # fmt: skip
    # the wrong key: refused on the officer's side, one line, nothing sent
    code, out, err = await _lienthong(sig_tokens, *common, "--key-label", "officer2")
    assert code == 1 and "not the one this session was opened for" in err, (out, err)
    assert len(err.strip().splitlines()) == 1
    target = tmp_path / "signed.pdf"
    code, out, err = await _lienthong(
        sig_tokens, *common, "--key-label", "officer", "-o", str(target)
    )
    assert code == 0, err
    assert f"signed session {session_id}" in out
    [status] = await asyncio.to_thread(validate_all, target, sig_pki.root_cert, sig_pki.cert("gov"))
    assert status.intact and status.valid and status.trusted
    assert pdfsig_verdicts(target) == ["Signature is Valid."]
    # a signed session has nothing left to sign
    code, out, err = await _lienthong(sig_tokens, *common, "--key-label", "officer")
    assert code == 1 and "is signed" in err
