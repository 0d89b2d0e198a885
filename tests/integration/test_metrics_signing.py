"""The signing latency histogram of /metrics follows real signing work: an officer's session
(prepare, then finish with the SoftHSM token's signature) and an agency seal on the HSM."""

from __future__ import annotations

import fixtures_pki
from axis_client import NGHE_AN, VPCP, Axis, document
from prometheus_client.parser import text_string_to_metric_families
from signing_session_fixtures import Tokens, axis_config, sig_pki, sig_tokens, token_sign

from server.http.appkeys import DATABASE
from server.runtime.tokens import new_token
from signing import devpki as pki_cli
from storage.repos.tokens import TokenRepo

__all__ = ["axis_config", "sig_pki", "sig_tokens"]


async def _signing_counts(axis: Axis, admin: dict[str, str]) -> dict[str, float]:
    resp = await axis.client.get("/metrics", headers=admin)
    assert resp.status == 200
    counts = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            if sample.name == "lienthong_signing_duration_seconds_count":
                counts[sample.labels["operation"]] = sample.value
    return counts


async def test_signing_latency_is_recorded(
    axis: Axis, sig_pki: pki_cli.DevPki, sig_tokens: Tokens
) -> None:
    token, digest = new_token()
    async with axis.client.server.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(VPCP, digest, label="prometheus", roles=("admin",))
    admin = {"Authorization": f"Bearer {token}"}
    assert await _signing_counts(axis, admin) == {}

    pdf = fixtures_pki.minimal_pdf(text="Phu luc")
    attachments = [("phu-luc.pdf", "application/pdf", pdf)]
    doc_id = (await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=attachments)))["id"]
    resp = await axis.client.post(
        "/api/v1/signing-sessions",
        json={"document_id": doc_id, "attachment": 0, "field": "NguoiKy",
              "certificate": sig_pki.cert_path("officer").read_text()},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    session = await resp.json()
    assert await _signing_counts(axis, admin) == {"session_prepare": 1}

    raw = token_sign(sig_tokens, "officer", bytes.fromhex(session["digest"]["hex"]))
    resp = await axis.client.put(
        f"/api/v1/signing-sessions/{session['session_id']}/signature", data=raw,
        headers=axis.auth(NGHE_AN, **{"Content-Type": "application/octet-stream"}),
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    resp = await axis.client.post(
        f"/api/v1/documents/{doc_id}/attachments/0/seal", headers=axis.auth(NGHE_AN)
    )
    assert resp.status == 201, await resp.text()
    assert await _signing_counts(axis, admin) == {
        "session_prepare": 1,
        "session_finish": 1,
        "seal": 1,
    }
