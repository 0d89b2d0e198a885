"""Issue 18, finding 4: an admin-only token (the scrape token of docs/operations.md) reads the
metrics and the audit log, and nothing an agency does: 403 ``role-not-allowed`` elsewhere."""

from __future__ import annotations

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document

import edxml
from server.http.appkeys import DATABASE
from server.runtime.tokens import new_token
from storage.repos.tokens import TokenRepo


async def _token(axis: Axis, *roles: str) -> dict[str, str]:
    token, digest = new_token()
    async with axis.client.server.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(VPCP, digest, label="ops", roles=roles)
    return {"Authorization": f"Bearer {token}"}


async def test_admin_token_reads_metrics_and_audit_only(axis: Axis) -> None:
    admin = await _token(axis, "admin")
    assert (await axis.client.get("/metrics", headers=admin)).status == 200
    assert (await axis.client.get("/api/v1/audit", headers=admin)).status == 200
    # A package waits in VPCP's inbox: the admin token of VPCP must not see it.
    await axis.send_ok(NGHE_AN, document(NGHE_AN, [VPCP]))
    body = edxml.serialize(document(VPCP, [NGHE_AN]))
    hook = b'{"url": "https://example.org/h", "secret": "0123456789abcdef"}'
    refused = [
        ("GET", "/api/v1/inbox", None),
        ("GET", "/api/v1/sent", None),
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/agencies", None),
        ("POST", "/api/v1/documents", body),
        ("PUT", "/api/v1/webhook", hook),
        ("DELETE", "/api/v1/webhook", None),
        ("GET", "/api/v1/dossiers", None),
        ("POST", "/api/v1/signing-sessions", b"{}"),
    ]
    for method, path, data in refused:
        kind = "application/xml" if path.endswith("documents") else "application/json"
        headers = {**admin, "Content-Type": kind}
        resp = await axis.client.request(method, path, data=data, headers=headers)
        assert resp.status == 403, (method, path, resp.status, await resp.text())
        problem = await resp.json()
        assert problem["type"].endswith("/role-not-allowed"), problem
    # Nothing was sent in VPCP's name, and its inbox still holds the package.
    assert (await axis.inbox(VPCP))["items"], "the package was taken from the inbox"
    sent = await axis.get("/api/v1/sent", VPCP)
    assert (await sent.json())["items"] == []


@pytest.mark.parametrize("roles", [("agency", "admin"), ("agency",)])
async def test_agency_tokens_keep_their_rights(axis: Axis, roles: tuple[str, ...]) -> None:
    headers = await _token(axis, *roles)
    assert (await axis.client.get("/api/v1/inbox", headers=headers)).status == 200
    audit = await axis.client.get("/api/v1/audit", headers=headers)
    assert audit.status == (200 if "admin" in roles else 404)
