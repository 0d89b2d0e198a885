"""The axis seals a PDF attachment with the calling agency's own key on its (SoftHSM) HSM; the
result is a new version of the attachment, the original package never changes."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import fixtures_pki
import pytest
from axis_client import NGHE_AN, OUTSIDER, VPCP, Axis, document
from signing_session_fixtures import (
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

from server.http.appkeys import EXCHANGE
from signing import devpki as pki_cli

__all__ = ["axis_config", "sig_pki", "sig_tokens"]

needs_pdfsig = pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils missing")


async def _sent(axis: Axis, pdf: bytes, name: str = "phu-luc.pdf") -> str:
    body = await axis.send_ok(
        VPCP,
        document(VPCP, [NGHE_AN], attachments=[(name, "application/pdf", pdf),
                                                ("ghi-chu.txt", "text/plain", b"not a pdf")]),
    )  # fmt: skip
    # What the arrival hooks store in the background (the PDF's verification) is done before a
    # test takes its "nothing written" snapshot.
    await axis.client.app[EXCHANGE].settle()
    return str(body["id"])


@needs_pdfsig
async def test_seal_attachment_is_a_new_version(
    axis: Axis, sig_pki: pki_cli.DevPki, tmp_path: Path
) -> None:
    pdf = fixtures_pki.minimal_pdf(text="Phu luc")
    doc_id = await _sent(axis, pdf)
    resp = await axis.client.post(
        f"/api/v1/documents/{doc_id}/attachments/0/seal",
        json={"profile": "issued-attachment", "number": "123/QĐ-UBND",
              "agency": "UBND tỉnh Nghệ An", "level": "B-T"},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    version = await resp.json()
    assert version["kind"] == "seal" and version["base_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert resp.headers["Location"] == version["url"]
    resp = await axis.get(version["url"], NGHE_AN)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    sealed = await resp.read()
    assert hashlib.sha256(sealed).hexdigest() == version["sha256"]
    out = tmp_path / "sealed.pdf"
    out.write_bytes(sealed)
    [status] = await asyncio.to_thread(validate_all, out, sig_pki.root_cert, sig_pki.cert("gov"))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.signing_cert.sha256 == sig_pki.cert("seal").sha256
    assert status.timestamp_validity is not None
    assert pdfsig_verdicts(out) == ["Signature is Valid."]
    # the attachment as sent is unchanged, for both parties
    for organ_id in (VPCP, NGHE_AN):
        resp = await axis.get(f"/api/v1/documents/{doc_id}/attachments/0", organ_id)
        assert await resp.read() == pdf
    # the version is the sealing agency's own
    resp = await axis.get(version["url"], VPCP)
    assert resp.status == 404


@needs_pdfsig
async def test_officer_signs_then_agency_seals(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens, tmp_path: Path
) -> None:
    """Co-signing: the officer's signature through a session, then the seal on top of it."""
    doc_id = await _sent(axis, fixtures_pki.minimal_pdf())
    resp = await axis.client.post(
        "/api/v1/signing-sessions",
        json={"document_id": doc_id, "attachment": 0, "field": "NguoiKy",
              "certificate": sig_pki.cert_path("officer").read_text()},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    session = await resp.json()
    raw = token_sign(sig_tokens, "officer", bytes.fromhex(session["digest"]["hex"]))
    resp = await axis.client.put(
        f"/api/v1/signing-sessions/{session['session_id']}/signature", data=raw,
        headers=axis.auth(NGHE_AN, **{"Content-Type": "application/octet-stream"}),
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    signed_sha = (await resp.json())["signed"]["sha256"]
    resp = await axis.client.post(
        f"/api/v1/documents/{doc_id}/attachments/0/seal", headers=axis.auth(NGHE_AN)
    )
    assert resp.status == 201, await resp.text()
    sealed = await resp.json()
    assert sealed["base_sha256"] == signed_sha  # sealed on top of the officer's version
    resp = await axis.get(f"/api/v1/documents/{doc_id}/attachments/0/versions", NGHE_AN)
    assert [v["kind"] for v in (await resp.json())["items"]] == ["signature", "seal"]
    out = tmp_path / "both.pdf"
    out.write_bytes(await (await axis.get(sealed["url"], NGHE_AN)).read())
    statuses = await asyncio.to_thread(validate_all, out, sig_pki.root_cert, sig_pki.cert("gov"))
    assert [s.signing_cert.sha256 for s in statuses] == [
        sig_pki.cert("officer").sha256, sig_pki.cert("seal").sha256
    ]  # fmt: skip
    assert all(s.intact and s.valid and s.trusted for s in statuses)
    assert pdfsig_verdicts(out) == ["Signature is Valid."] * 2


async def test_seal_refusals(axis: Axis) -> None:
    doc_id = await _sent(axis, fixtures_pki.minimal_pdf())
    before, spool = stored(axis.config), spool_files(axis.config)
    cases = [
        (VPCP, 0, None, 422, "no-seal-key"),  # the sender has no seal key on this axis
        (OUTSIDER, 0, None, 404, "not-found"),  # not a party
        (NGHE_AN, 1, None, 422, "invalid-pdf"),  # a text attachment
        (NGHE_AN, 7, None, 404, "not-found"),  # no such attachment
        (NGHE_AN, 0, {"profile": "copy"}, 400, "bad-request"),  # copy needs its fields
        (NGHE_AN, 0, {"level": "B-Z"}, 400, "bad-request"),
    ]
    for organ_id, index, body, status, slug in cases:
        resp = await axis.client.post(
            f"/api/v1/documents/{doc_id}/attachments/{index}/seal", json=body,
            headers=axis.auth(organ_id),
        )  # fmt: skip
        assert resp.status == status, (organ_id, index, await resp.text())
        assert (await resp.json())["type"] == f"/problems/{slug}"
    assert_nothing_written(axis.config, before, spool)
