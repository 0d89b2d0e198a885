"""GET /metrics on the real app: who may scrape it, and that the figures follow what happens
(requests, deliveries by state and the oldest pending one, verification runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document
from prometheus_client.parser import text_string_to_metric_families

from server.http.appkeys import DATABASE
from server.http.metrics import METRICS
from server.runtime.tokens import new_token
from storage.repos.tokens import TokenRepo

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
pytestmark = pytest.mark.usefixtures("offline_verification")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _admin(axis: Axis) -> dict[str, str]:
    token, digest = new_token()
    async with axis.client.server.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(VPCP, digest, label="prometheus", roles=("admin",))
    return {"Authorization": f"Bearer {token}"}


async def _scrape(axis: Axis, admin: dict[str, str]) -> Samples:
    resp = await axis.client.get("/metrics", headers=admin)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_only_admins_scrape_by_default(axis: Axis) -> None:
    for headers in ({}, axis.auth(VPCP), {"Authorization": "Bearer lt_unknown"}):
        resp = await axis.client.get("/metrics", headers=headers)
        assert resp.status == 404, headers  # as any resource the caller may not see
        assert "lienthong_" not in await resp.text()
    samples = await _scrape(axis, await _admin(axis))
    assert ("lienthong_deliveries", frozenset({("state", "new")})) in samples


async def test_figures_follow_sends_acks_and_verifications(axis: Axis) -> None:
    admin = await _admin(axis)
    axis.client.server.app[METRICS].snapshot_seconds = 0.0  # read the queue on every scrape
    send = {"method": "POST", "route": "/api/v1/documents", "status": "201"}
    before = await _scrape(axis, admin)
    assert _value(before, "lienthong_deliveries", state="new") == 0
    assert _value(before, "lienthong_delivery_oldest_pending_age_seconds", mode="pull") == 0

    sent = [
        await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], subject=f"Văn bản {n}"))
        for n in range(3)
    ]
    after_send = await _scrape(axis, admin)
    assert _value(after_send, "lienthong_http_requests_total", **send) == (
        _value(before, "lienthong_http_requests_total", **send) + 3
    )
    latency = {"method": "POST", "route": "/api/v1/documents"}
    assert _value(after_send, "lienthong_http_request_duration_seconds_count", **latency) == 3
    assert _value(after_send, "lienthong_deliveries", state="new") == 3
    assert _value(after_send, "lienthong_deliveries", state="acked") == 0
    assert _value(after_send, "lienthong_deliveries_push_pending") == 0  # NGHE_AN pulls
    assert _value(after_send, "lienthong_delivery_oldest_pending_age_seconds", mode="pull") > 0

    # A route with an id is counted under its template, not its path.
    resp = await axis.get(f"/api/v1/documents/{sent[0]['id']}/meta", NGHE_AN)
    assert resp.status == 200
    items = (await axis.inbox(NGHE_AN))["items"]
    for item in items:
        resp = await axis.client.post(
            f"/api/v1/inbox/{item['delivery_id']}/ack", headers=axis.auth(NGHE_AN)
        )
        assert resp.status in (200, 204), await resp.text()
    after_ack = await _scrape(axis, admin)
    assert _value(after_ack, "lienthong_deliveries", state="new") == 0
    assert _value(after_ack, "lienthong_deliveries", state="acked") == 3
    assert _value(after_ack, "lienthong_delivery_oldest_pending_age_seconds", mode="pull") == 0
    meta = {"method": "GET", "route": "/api/v1/documents/{id}/meta", "status": "200"}
    assert _value(after_ack, "lienthong_http_requests_total", **meta) == 1
    assert not any(sent[0]["id"] in dict(labels).get("route", "") for _, labels in after_ack)

    runs = _value(after_ack, "lienthong_verification_duration_seconds_count")
    resp = await axis.client.post(
        "/api/v1/verify",
        data=ORIGINAL,
        headers=axis.auth(VPCP, **{"Content-Type": "application/pdf"}),
    )
    assert resp.status == 200
    after_verify = await _scrape(axis, admin)
    assert _value(after_verify, "lienthong_verification_duration_seconds_count") == runs + 1
    assert _value(after_verify, "lienthong_verification_duration_seconds_sum") > _value(
        after_ack, "lienthong_verification_duration_seconds_sum"
    )
    # Unknown paths share one label value (a scan must not create a series per path).
    resp = await axis.client.get("/no/such/path/42", headers=axis.auth(VPCP))
    assert resp.status == 404
    final = await _scrape(axis, admin)
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _value(final, "lienthong_http_requests_total", **unmatched) == 1
