"""The round trip through the real app: send -> inbox -> fetch -> ack -> status -> sent."""

from __future__ import annotations

from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, VPCP, Axis, document, sha256, status

import edxml
from edxml import StatusCode


async def test_round_trip(axis: Axis) -> None:
    pdf = b"%PDF-1.4 noi dung van ban"
    package = document(
        VPCP, [NGHE_AN, SO_TTTT], attachments=[("Văn bản.pdf", "application/pdf", pdf)]
    )
    body = edxml.serialize(package)
    receipt = await axis.send_ok(VPCP, body)
    assert receipt["document_id"] == package.header.document_id
    assert sorted(receipt["recipients"]) == [SO_TTTT, NGHE_AN] or sorted(
        receipt["recipients"]
    ) == sorted([NGHE_AN, SO_TTTT])
    assert receipt["duplicate"] is False

    # The recipient sees it in the inbox, with the triage fields.
    page = await axis.inbox(NGHE_AN)
    assert page["next"] is None
    [item] = page["items"]
    assert item["document_id"] == receipt["id"]
    assert item["edxml_document_id"] == package.header.document_id
    assert item["kind"] == "document"
    assert item["sender"] == VPCP
    assert item["subject"] == package.header.subject
    assert item["code"] == str(package.header.code)
    assert item["priority"] == 1
    assert item["state"] == "new"

    # Fetch: the stored package is the received one plus the axis TraceHeader.
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)
    assert resp.status == 200
    stored = await resp.read()
    assert sha256(stored) == receipt["sha256"]
    assert resp.headers["ETag"] == f'"{receipt["sha256"]}"'
    assert resp.headers["Content-Type"].startswith("application/xml")
    parsed = edxml.parse(stored)
    assert isinstance(parsed, edxml.Envelope)
    assert parsed.header == package.header
    assert parsed.trace_headers[-1].organ_id == axis.config.server.axis_id
    assert parsed.attachments[0].data == pdf
    # Only the TraceHeader was added: removing it gives back the received bytes.
    assert len(stored) > len(body)

    # Meta lists recipients, attachments, trace.
    meta = await (await axis.get(f"/api/v1/documents/{receipt['id']}/meta", NGHE_AN)).json()
    assert meta["received_sha256"] == sha256(body)
    assert meta["attachments"][0]["name"] == "Văn bản.pdf"
    assert meta["attachments"][0]["size"] == len(pdf)
    assert {r["organ_id"] for r in meta["recipients"]} == {NGHE_AN, SO_TTTT}
    assert meta["trace_headers"][-1]["organ_id"] == axis.config.server.axis_id

    # Ack, twice (idempotent).
    for _ in range(2):
        resp = await axis.client.post(
            f"/api/v1/inbox/{item['delivery_id']}/ack", headers=axis.auth(NGHE_AN)
        )
        assert resp.status == 200
        assert (await resp.json())["state"] == "acked"
    assert (await axis.inbox(NGHE_AN, "?state=new"))["items"] == []
    assert len((await axis.inbox(NGHE_AN, "?state=acked"))["items"]) == 1

    # Status back: 03 accepted by the recipient, routed to the sender's inbox.
    resp = await axis.send_status(NGHE_AN, status(NGHE_AN, package, StatusCode.ACCEPTED))
    assert resp.status == 201, await resp.text()
    status_receipt = await resp.json()
    assert status_receipt["recipients"] == [VPCP]
    sender_inbox = await axis.inbox(VPCP, "?kind=status")
    [status_item] = sender_inbox["items"]
    assert status_item["kind"] == "status"
    assert status_item["status_code"] == "03"
    assert status_item["related_id"] == receipt["id"]
    assert status_item["sender"] == NGHE_AN

    # History and the sent list show it.
    history = await (await axis.get(f"/api/v1/documents/{receipt['id']}/statuses", VPCP)).json()
    assert [(s["code"], s["sender"], s["recipient"]) for s in history["items"]] == [
        ("03", NGHE_AN, VPCP)
    ]
    sent = await (await axis.get("/api/v1/sent", VPCP)).json()
    [entry] = sent["items"]
    by_org = {r["organ_id"]: r for r in entry["recipients"]}
    assert by_org[NGHE_AN]["status"]["code"] == "03"
    assert by_org[NGHE_AN]["state"] == "acked"
    assert by_org[SO_TTTT]["status"] is None
    assert by_org[SO_TTTT]["state"] == "new"


async def test_resend_same_bytes_is_idempotent(axis: Axis) -> None:
    body = edxml.serialize(document(VPCP, [NGHE_AN]))
    first = await axis.send_ok(VPCP, body)
    resp = await axis.send(VPCP, body)
    assert resp.status == 200
    again = await resp.json()
    assert again["id"] == first["id"]
    assert again["sha256"] == first["sha256"]
    assert again["duplicate"] is True
    assert len((await axis.inbox(NGHE_AN))["items"]) == 1
    assert (await axis.snapshot())["rows"]["deliveries"] == 1


async def test_same_document_id_other_bytes_is_409(axis: Axis) -> None:
    package = document(VPCP, [NGHE_AN])
    await axis.send_ok(VPCP, package)
    other = document(VPCP, [NGHE_AN], document_id=package.header.document_id, subject="Khác")
    before = await axis.snapshot()
    resp = await axis.send(VPCP, other)
    assert resp.status == 409
    problem = await resp.json()
    assert problem["type"] == "/problems/duplicate-document"
    assert (await axis.snapshot())["rows"] == before["rows"]


async def test_from_must_be_the_caller(axis: Axis) -> None:
    before = await axis.snapshot()
    resp = await axis.send(NGHE_AN, document(VPCP, [NGHE_AN]))
    assert resp.status == 403
    assert (await resp.json())["type"] == "/problems/sender-mismatch"
    assert (await axis.snapshot()) == before


async def test_unknown_recipient_is_named(axis: Axis) -> None:
    before = await axis.snapshot()
    resp = await axis.send(VPCP, document(VPCP, [NGHE_AN, "999.99.99.Z99"]))
    assert resp.status == 422
    problem = await resp.json()
    assert problem["type"] == "/problems/unknown-recipient"
    assert problem["unknown"] == ["999.99.99.Z99"]
    assert "999.99.99.Z99" in problem["detail"]
    assert (await axis.snapshot()) == before


async def test_inbox_pagination(axis: Axis) -> None:
    ids = [(await axis.send_ok(VPCP, document(VPCP, [NGHE_AN])))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = await axis.inbox(NGHE_AN, f"?limit=2{cursor}")
        pages += 1
        seen += [i["document_id"] for i in page["items"]]
        if page["next"] is None:
            break
        cursor = f"&after={page['next']}"
    assert seen == ids
    assert pages == 3
    resp = await axis.get("/api/v1/inbox?limit=0", NGHE_AN)
    assert resp.status == 400
    assert (await resp.json())["type"] == "/problems/invalid-query"
    resp = await axis.get("/api/v1/inbox?kind=other", NGHE_AN)
    assert resp.status == 400


async def test_sent_pagination_and_agencies(axis: Axis) -> None:
    for _ in range(3):
        await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    first = await (await axis.get("/api/v1/sent?limit=2", VPCP)).json()
    assert len(first["items"]) == 2 and first["next"]
    second = await (await axis.get(f"/api/v1/sent?limit=2&after={first['next']}", VPCP)).json()
    assert len(second["items"]) == 1 and second["next"] is None
    assert (await (await axis.get("/api/v1/sent", OUTSIDER)).json())["items"] == []
    agencies = await (await axis.get("/api/v1/agencies", OUTSIDER)).json()
    assert {a["organ_id"] for a in agencies["items"]} >= {VPCP, NGHE_AN, SO_TTTT}


async def test_range_and_etag(axis: Axis) -> None:
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    path = f"/api/v1/documents/{receipt['id']}"
    full = await (await axis.get(path, NGHE_AN)).read()
    etag = f'"{receipt["sha256"]}"'

    resp = await axis.get(path, NGHE_AN, **{"If-None-Match": etag})
    assert resp.status == 304
    resp = await axis.get(path, NGHE_AN, Range="bytes=10-19")
    assert resp.status == 206
    assert await resp.read() == full[10:20]
    assert resp.headers["Content-Range"] == f"bytes 10-19/{len(full)}"
    resp = await axis.get(path, NGHE_AN, Range="bytes=-7")
    assert resp.status == 206
    assert await resp.read() == full[-7:]
    resp = await axis.get(path, NGHE_AN, Range=f"bytes={len(full) - 3}-")
    assert await resp.read() == full[-3:]
    resp = await axis.get(path, NGHE_AN, Range=f"bytes={len(full)}-")
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{len(full)}"
    assert (await resp.json())["type"] == "/problems/range-not-satisfiable"
    # A stale If-Range sends the whole package.
    resp = await axis.get(path, NGHE_AN, Range="bytes=0-3", **{"If-Range": '"other"'})
    assert resp.status == 200
    assert await resp.read() == full


async def test_health_home_and_problem_pages(axis: Axis) -> None:
    resp = await axis.get("/healthz", None)
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    resp = await axis.get("/", None)
    assert resp.status == 200
    html = await resp.text()
    assert "Liên Thông" in html and "/api/v1/openapi.json" in html
    resp = await axis.get("/problems/duplicate-document", None)
    assert resp.status == 200
    resp = await axis.get("/problems/nope", None)
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/problem+json")
