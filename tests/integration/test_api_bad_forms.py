"""Broken multipart forms and webhook URLs are the caller's mistake (400), never a 500; a
non-party asking to seal an attachment learns nothing about the axis's signing set-up (404)."""

from __future__ import annotations

from typing import Any

import pytest
from axis_client import NGHE_AN, OUTSIDER, VPCP, document

FORM_PATHS = ["/api/v1/signing-sessions", "/api/v1/verify", "/api/v1/public/verify"]
BROKEN_FORMS = [
    # (body, Content-Type): no boundary; no starting boundary; a malformed part header
    (b"garbage", "multipart/form-data"),
    (b"x", "multipart/form-data; boundary=x"),
    (b"--x\r\nbad", "multipart/form-data; boundary=x"),
]


@pytest.mark.parametrize("path", FORM_PATHS)
@pytest.mark.parametrize(("body", "content_type"), BROKEN_FORMS)
async def test_broken_multipart_is_bad_request(
    axis: Any, path: str, body: bytes, content_type: str
) -> None:
    resp = await axis.client.post(
        path, data=body, headers=axis.auth(VPCP, **{"Content-Type": content_type})
    )
    problem = await resp.json(content_type=None)
    assert resp.status == 400, problem
    assert resp.content_type == "application/problem+json"
    assert problem["type"] == "/problems/bad-request"
    assert "multipart form" in problem["detail"]


@pytest.mark.parametrize("url", ["http://[::1", "http://example.test:99999/hook"])
async def test_unparsable_webhook_url_is_bad_request(axis: Any, url: str) -> None:
    resp = await axis.client.put(
        "/api/v1/webhook", json={"url": url, "secret": "s" * 32}, headers=axis.auth(NGHE_AN)
    )
    problem = await resp.json(content_type=None)
    assert resp.status == 400, problem
    assert problem["type"] == "/problems/bad-request"
    get = await axis.get("/api/v1/webhook", NGHE_AN)
    assert get.status == 404  # nothing was registered


async def test_seal_by_non_party_is_not_found(axis: Any) -> None:
    sent = await axis.send_ok(
        VPCP, document(VPCP, [NGHE_AN], attachments=[("a.pdf", "application/pdf", b"%PDF-1.7")])
    )
    resp = await axis.client.post(
        f"/api/v1/documents/{sent['id']}/attachments/0/seal",
        json={},
        headers=axis.auth(OUTSIDER),
    )
    problem = await resp.json(content_type=None)
    assert resp.status == 404, problem
    assert problem["type"] == "/problems/not-found"
