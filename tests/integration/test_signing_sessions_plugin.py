"""The VGCA browser-plugin flow: the plugin downloads the PDF with the session's JWT, signs it
on the officer's token (here: pyHanko with the officer's SoftHSM key, as the VGCA Sign Service
would) and uploads it to FileUploadHandler. Only the served PDF plus exactly one valid signature
by the enrolled certificate is kept."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fixtures_pki
import pytest
from aiohttp import FormData
from axis_client import NGHE_AN, Axis
from signing_session_fixtures import (
    Tokens,
    assert_nothing_written,
    axis_config,
    pdfsig_verdicts,
    sig_pki,
    sig_tokens,
    spool_files,
    stored,
    validate_all,
)

from signing import SigningServices, sign_pdf
from signing import devpki as pki_cli

__all__ = ["axis_config", "sig_pki", "sig_tokens"]


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _session(axis: Axis, pki: pki_cli.DevPki, pdf: bytes | None = None) -> dict[str, Any]:
    form = FormData()
    form.add_field("pdf", pdf or fixtures_pki.minimal_pdf(), filename="cong-van.pdf")
    form.add_field("certificate", pki.cert_path("officer").read_bytes(), filename="cert.pem")
    resp = await axis.client.post("/api/v1/signing-sessions", data=form, headers=axis.auth(NGHE_AN))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def _plugin_sign(
    tokens: Tokens, pki: pki_cli.DevPki, source: Path, out: Path, key: str = "officer"
) -> Path:
    """What the VGCA Sign Service does with the downloaded file: one incremental signature."""
    signer = tokens.officer.signer(key, chain=[pki.cert("gov")])
    services = SigningServices()
    try:
        return await asyncio.to_thread(sign_pdf, source, out, signer, services=services)
    finally:
        services.close()


async def _upload(
    axis: Axis, session: dict[str, Any], data: bytes, token: str | None = None
) -> Any:
    form = FormData()
    form.add_field("file", data, filename="signed.pdf", content_type="application/pdf")
    token = session["vgca"]["JWTToken"] if token is None else token
    return await axis.client.post(
        _local(session["vgca"]["FileUploadHandler"]), data=form,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils missing")
async def test_plugin_downloads_signs_and_uploads(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens, tmp_path: Path
) -> None:
    pdf = fixtures_pki.minimal_pdf(2, "To trinh")
    session = await _session(axis, sig_pki, pdf)
    vgca = session["vgca"]
    assert vgca["SessionId"] == session["session_id"] and vgca["JWTToken"]
    # FileName: downloadable without a bearer token, with the JWT in the URL
    resp = await axis.client.get(_local(vgca["FileName"]))
    assert resp.status == 200 and resp.content_type == "application/pdf"
    served = await resp.read()
    assert served == pdf
    source = tmp_path / "served.pdf"
    source.write_bytes(served)
    signed = await _plugin_sign(sig_tokens, sig_pki, source, tmp_path / "signed.pdf")

    resp = await _upload(axis, session, signed.read_bytes())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["Status"] == 0 and body["state"] == "signed" and body["signed"]["via"] == "upload"
    assert body["signed"]["sha256"] == hashlib.sha256(signed.read_bytes()).hexdigest()
    resp = await axis.get(body["signed"]["url"], NGHE_AN)
    kept = tmp_path / "kept.pdf"
    kept.write_bytes(await resp.read())
    [status] = await asyncio.to_thread(validate_all, kept, sig_pki.root_cert, sig_pki.cert("gov"))
    assert status.intact and status.valid and status.trusted
    assert pdfsig_verdicts(kept) == ["Signature is Valid."]
    # signed once: a second upload and a two-step signature are refused
    resp = await _upload(axis, session, signed.read_bytes())
    assert resp.status == 409
    # the download token no longer matters, but it never opened uploads
    resp = await _upload(axis, session, signed.read_bytes(), token=_token_of(vgca["FileName"]))
    assert resp.status == 401


def _token_of(url: str) -> str:
    return urlsplit(url).query.removeprefix("token=")


async def test_plugin_urls_need_the_right_jwt(axis: Axis, sig_pki: pki_cli.DevPki) -> None:
    one = await _session(axis, sig_pki)
    two = await _session(axis, sig_pki)
    path = urlsplit(one["download_url"]).path
    download_token = _token_of(one["download_url"])
    head, body, sig = download_token.split(".")
    forged = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    for query in (
        "",
        f"?token={one['upload_token']}",  # an upload token does not download
        f"?token={_token_of(two['download_url'])}",  # another session's token
        f"?token={forged}",
        "?token=eyJhbGciOiJub25lIn0.e30.",  # alg none
    ):
        resp = await axis.client.get(path + query)
        assert resp.status == 401, query
        assert (await resp.json())["type"] == "/problems/unauthorized"
    # the agency's bearer token is not a session token either
    resp = await axis.client.get(path, headers=axis.auth(NGHE_AN))
    assert resp.status == 401
    resp = await axis.client.get(f"{path}?token={download_token}")
    assert resp.status == 200


_REASONS = {
    "other-officer": "not made with the enrolled certificate",
    "two-signatures": "it adds 2",
    "other-pdf": "does not start with the PDF this session served",
    "unsigned": "not the served PDF plus a signature",
    "no-new-signature": "it adds 0",
    "tampered": "does not verify",
}


@pytest.mark.parametrize("case", ["other-officer", "two-signatures", "other-pdf", "unsigned",
                                  "no-new-signature", "tampered"])  # fmt: skip
async def test_plugin_upload_refusals(
    case: str, axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens, tmp_path: Path
) -> None:
    pdf = fixtures_pki.minimal_pdf()
    session = await _session(axis, sig_pki, pdf)
    source = tmp_path / "served.pdf"
    source.write_bytes(pdf)
    if case == "other-officer":
        data = await _plugin_sign(sig_tokens, sig_pki, source, tmp_path / "o.pdf", "officer2")
        data_bytes = data.read_bytes()
    elif case == "two-signatures":
        once = await _plugin_sign(sig_tokens, sig_pki, source, tmp_path / "1.pdf")
        data_bytes = (
            await _plugin_sign(sig_tokens, sig_pki, once, tmp_path / "2.pdf")
        ).read_bytes()
    elif case == "other-pdf":
        other = tmp_path / "other.pdf"
        other.write_bytes(fixtures_pki.minimal_pdf(text="Another document"))
        data_bytes = (
            await _plugin_sign(sig_tokens, sig_pki, other, tmp_path / "x.pdf")
        ).read_bytes()
    elif case == "unsigned":
        data_bytes = pdf
    elif case == "no-new-signature":
        # the served PDF with an incremental update that carries no signature
        data_bytes = pdf + b"\n% an incremental update without any signature\n"
    else:
        signed = (await _plugin_sign(sig_tokens, sig_pki, source, tmp_path / "t.pdf")).read_bytes()
        # change the signing time written in the new signature dictionary (a signed byte
        # outside the served PDF): still a readable PDF, no longer what was signed
        at = signed.index(b"/M (D", len(pdf)) + 12  # a digit of the year
        data_bytes = signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1 :]
    before, spool = stored(axis.config), spool_files(axis.config)
    resp = await _upload(axis, session, data_bytes)
    assert resp.status == 422, (case, await resp.text())
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == "/problems/signature-invalid"
    assert _REASONS[case] in problem["detail"], problem["detail"]
    assert_nothing_written(axis.config, before, spool)
    resp = await axis.get(f"/api/v1/signing-sessions/{session['session_id']}", NGHE_AN)
    assert (await resp.json())["state"] == "pending"
