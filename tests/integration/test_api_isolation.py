"""Isolation: an agency that neither sent nor received a package gets 404 on every path of it;
anonymous callers get 401 everywhere under /api/v1 except the OpenAPI document."""

from __future__ import annotations

from axis_client import NGHE_AN, OUTSIDER, VPCP, Axis, document, status

import edxml
from edxml import StatusCode


async def _exchange(axis: Axis) -> dict[str, str]:
    """A document with an attachment, delivered and answered; returns the ids involved."""
    package = document(VPCP, [NGHE_AN], attachments=[("a.txt", "text/plain", b"xin chao")])
    doc = await axis.send_ok(VPCP, package)
    [item] = (await axis.inbox(NGHE_AN))["items"]
    resp = await axis.send_status(NGHE_AN, status(NGHE_AN, package, StatusCode.RECEIVED))
    assert resp.status == 201
    status_id = (await resp.json())["id"]
    [status_item] = (await axis.inbox(VPCP))["items"]
    return {
        "doc": doc["id"],
        "delivery": item["delivery_id"],
        "status_package": status_id,
        "status_delivery": status_item["delivery_id"],
    }


def _read_paths(ids: dict[str, str]) -> list[str]:
    doc, status_package = ids["doc"], ids["status_package"]
    return [
        f"/api/v1/documents/{doc}",
        f"/api/v1/documents/{doc}/meta",
        f"/api/v1/documents/{doc}/attachments/0",
        f"/api/v1/documents/{doc}/statuses",
        f"/api/v1/documents/{status_package}",
        f"/api/v1/documents/{status_package}/meta",
    ]


async def test_outsider_gets_404_on_every_package_path(axis: Axis) -> None:
    ids = await _exchange(axis)
    # The parties can read everything.
    for path in _read_paths(ids):
        for party in (VPCP, NGHE_AN):
            resp = await axis.get(path, party)
            assert resp.status == 200, (path, party, await resp.text())
    # The outsider: 404 problem+json, the same as for an id that does not exist.
    for path in [*_read_paths(ids), "/api/v1/documents/0123456789abcdef/meta"]:
        resp = await axis.get(path, OUTSIDER)
        assert resp.status == 404, path
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert (await resp.json())["type"] == "/problems/not-found"
    # Deliveries: acking someone else's delivery is 404 and changes nothing.
    for key, owner in (("delivery", NGHE_AN), ("status_delivery", VPCP)):
        for stranger in (OUTSIDER, VPCP if owner == NGHE_AN else NGHE_AN):
            resp = await axis.client.post(
                f"/api/v1/inbox/{ids[key]}/ack", headers=axis.auth(stranger)
            )
            assert resp.status == 404
    assert {i["state"] for i in (await axis.inbox(NGHE_AN))["items"]} == {"new"}
    # Lists show the outsider nothing.
    assert (await axis.inbox(OUTSIDER))["items"] == []
    assert (await (await axis.get("/api/v1/sent", OUTSIDER)).json())["items"] == []


async def test_outsider_cannot_send_a_status_about_others_documents(axis: Axis) -> None:
    package = document(VPCP, [NGHE_AN])
    await axis.send_ok(VPCP, package)
    before = await axis.snapshot()
    resp = await axis.send_status(OUTSIDER, status(OUTSIDER, package, StatusCode.RECEIVED))
    assert resp.status == 422
    # The same answer as for a document that does not exist: nothing is revealed.
    assert (await resp.json())["type"] == "/problems/unknown-document"
    ghost = document(VPCP, [NGHE_AN])
    resp = await axis.send_status(OUTSIDER, status(OUTSIDER, ghost, StatusCode.RECEIVED))
    assert (await resp.json())["type"] == "/problems/unknown-document"
    assert (await axis.snapshot()) == before


async def test_anonymous_and_bad_tokens_get_401_everywhere(axis: Axis) -> None:
    ids = await _exchange(axis)
    body = edxml.serialize(document(VPCP, [NGHE_AN]))
    requests = [("GET", p) for p in _read_paths(ids)] + [
        ("GET", "/api/v1/inbox"),
        ("GET", "/api/v1/sent"),
        ("GET", "/api/v1/agencies"),
        ("POST", "/api/v1/documents"),
        ("POST", "/api/v1/statuses"),
        ("POST", f"/api/v1/inbox/{ids['delivery']}/ack"),
    ]
    for headers in ({}, {"Authorization": "Bearer lt_not-a-token"}, {"Authorization": "Basic x"}):
        for method, path in requests:
            resp = await axis.client.request(
                method,
                path,
                data=body if method == "POST" else None,
                headers={**headers, "Content-Type": "application/xml"},
            )
            assert resp.status == 401, (method, path, headers)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await resp.json())["type"] == "/problems/unauthorized"
    # Public: the OpenAPI document, health, home.
    for path in ("/api/v1/openapi.json", "/healthz", "/"):
        assert (await axis.get(path, None)).status == 200
    assert (await axis.snapshot())["rows"]["documents"] == 2


async def test_revoked_token_is_refused(axis: Axis) -> None:
    from server.http.appkeys import DATABASE
    from server.runtime.tokens import hash_token
    from storage.repos.tokens import TokenRepo

    assert (await axis.get("/api/v1/inbox", NGHE_AN)).status == 200
    database = axis.client.app[DATABASE]
    async with database.transaction() as tx:
        principal = await TokenRepo(tx).find(hash_token(axis.tokens[NGHE_AN]))
        assert principal is not None
        assert await TokenRepo(tx).revoke(principal.token_id)
    assert (await axis.get("/api/v1/inbox", NGHE_AN)).status == 401
