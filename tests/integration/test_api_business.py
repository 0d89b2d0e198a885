"""Revoke / update / replace (Bussiness 1-3) and who may send which status."""

from __future__ import annotations

from pathlib import Path

import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, VPCP, XA, Axis, document, status

import edxml
from edxml import Business, BusinessDocType, ReplacementInfo, ResponseFor, StatusCode

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "edxml" / "sdk-samples"


@pytest.mark.parametrize(
    "doc_type", [BusinessDocType.REVOKE, BusinessDocType.UPDATE, BusinessDocType.REPLACE]
)
async def test_change_is_linked_and_delivered_to_original_recipients(
    axis: Axis, doc_type: BusinessDocType
) -> None:
    original = document(VPCP, [NGHE_AN, SO_TTTT])
    first = await axis.send_ok(VPCP, original)
    original_id = original.header.document_id
    assert original_id is not None
    business = Business(
        doc_type=doc_type,
        reason="Sai sót",
        document_id=original_id if doc_type != BusinessDocType.REPLACE else None,
        replacements=(ReplacementInfo(original_id, (NGHE_AN,)),)
        if doc_type == BusinessDocType.REPLACE
        else (),
    )
    # Addressed to one recipient only (plus a new one): delivered to both originals too.
    change = document(VPCP, [XA], business=business)
    receipt = await axis.send_ok(VPCP, change)
    assert sorted(receipt["recipients"]) == sorted([NGHE_AN, SO_TTTT, XA])
    for organ in (NGHE_AN, SO_TTTT, XA):
        items = (await axis.inbox(organ))["items"]
        assert receipt["id"] in [i["document_id"] for i in items]
        [item] = [i for i in items if i["document_id"] == receipt["id"]]
        assert item["business_type"] == int(doc_type)
        assert item["related_id"] == first["id"]
    # Both metas show the link.
    change_meta = await (await axis.get(f"/api/v1/documents/{receipt['id']}/meta", NGHE_AN)).json()
    assert change_meta["related"]["original"]["id"] == first["id"]
    assert change_meta["business"]["type"] == int(doc_type)
    orig_meta = await (await axis.get(f"/api/v1/documents/{first['id']}/meta", NGHE_AN)).json()
    assert [c["id"] for c in orig_meta["related"]["changes"]] == [receipt["id"]]


async def test_revocation_keeping_the_original_document_id(axis: Axis) -> None:
    """A revocation keeps the original DocumentId in MessageHeader (as the SDK sample does)."""
    original = document(VPCP, [NGHE_AN])
    first = await axis.send_ok(VPCP, original)
    revoke = document(
        VPCP,
        [NGHE_AN],
        document_id=original.header.document_id,
        business=Business(doc_type=BusinessDocType.REVOKE, reason="Thu hồi"),
        response_for=[ResponseFor(organ_id=VPCP, document_id=original.header.document_id)],
    )
    body = edxml.serialize(revoke)
    receipt = await axis.send_ok(VPCP, body)
    assert receipt["document_id"] == original.header.document_id
    assert receipt["id"] != first["id"]
    # Resending the revocation is idempotent.
    resp = await axis.send(VPCP, body)
    assert resp.status == 200
    assert (await resp.json())["id"] == receipt["id"]


async def test_only_the_original_sender_may_change_a_document(axis: Axis) -> None:
    original = document(VPCP, [NGHE_AN])
    await axis.send_ok(VPCP, original)
    # NGHE_AN tries to revoke VPCP's document, naming it through ResponseFor.
    hijack = document(
        NGHE_AN,
        [SO_TTTT],
        business=Business(doc_type=BusinessDocType.REVOKE),
        response_for=[ResponseFor(organ_id=VPCP, document_id=original.header.document_id)],
    )
    before = await axis.snapshot()
    resp = await axis.send(NGHE_AN, hijack)
    assert resp.status == 403
    assert (await resp.json())["type"] == "/problems/not-original-sender"
    # Naming a document nobody sent.
    ghost = document(
        VPCP, [NGHE_AN], business=Business(doc_type=BusinessDocType.UPDATE, document_id="nope")
    )
    resp = await axis.send(VPCP, ghost)
    assert resp.status == 422
    assert (await resp.json())["type"] == "/problems/original-not-found"
    assert (await axis.snapshot()) == before


async def test_sdk_revocation_sample(axis: Axis) -> None:
    """The SDK's edoc_revocation.edxml after its original, ids mapped to our agencies."""
    mapping = {
        b"000.00.00.H14": SO_TTTT.encode(),
        b"000.00.00.G17": OUTSIDER.encode(),
        b"000.00.04.G14": b"000.00.04.G14",
    }
    raw = (CORPUS / "edoc_revocation.edxml").read_bytes()
    for old, new in mapping.items():
        raw = raw.replace(old, new)
    parsed = edxml.parse(raw)
    assert isinstance(parsed, edxml.Envelope)
    original = document(VPCP, [NGHE_AN], document_id=parsed.header.document_id)
    first = await axis.send_ok(VPCP, original)
    receipt = await axis.send_ok(VPCP, raw)
    assert receipt["id"] != first["id"]
    meta = await (await axis.get(f"/api/v1/documents/{receipt['id']}/meta", VPCP)).json()
    assert meta["related"]["original"]["id"] == first["id"]
    assert NGHE_AN in receipt["recipients"]


async def test_status_permissions(axis: Axis) -> None:
    package = document(VPCP, [NGHE_AN, SO_TTTT])
    doc = await axis.send_ok(VPCP, package)
    recipient_codes = [c for c in StatusCode if c is not StatusCode.RECALL_REQUESTED]
    # Every recipient code from a recipient: accepted, routed to the sender.
    for code in recipient_codes:
        resp = await axis.send_status(NGHE_AN, status(NGHE_AN, package, code))
        assert resp.status == 201, (code, await resp.text())
        assert (await resp.json())["recipients"] == [VPCP]
    # The sender may not report recipient codes about its own document...
    resp = await axis.send_status(VPCP, status(VPCP, package, StatusCode.COMPLETED))
    assert resp.status == 403
    assert (await resp.json())["type"] == "/problems/status-not-allowed"
    # ...and a recipient may not send 13 (recall request).
    resp = await axis.send_status(NGHE_AN, status(NGHE_AN, package, StatusCode.RECALL_REQUESTED))
    assert resp.status == 403
    # The sender's 13 goes to every recipient.
    resp = await axis.send_status(VPCP, status(VPCP, package, StatusCode.RECALL_REQUESTED))
    assert resp.status == 201
    assert sorted((await resp.json())["recipients"]) == sorted([NGHE_AN, SO_TTTT])
    for organ in (NGHE_AN, SO_TTTT):
        codes = [i["status_code"] for i in (await axis.inbox(organ, "?kind=status"))["items"]]
        assert codes == ["13"]
    # From must be the caller.
    resp = await axis.send_status(SO_TTTT, status(NGHE_AN, package, StatusCode.RECEIVED))
    assert resp.status == 403
    assert (await resp.json())["type"] == "/problems/sender-mismatch"
    history = await (await axis.get(f"/api/v1/documents/{doc['id']}/statuses", SO_TTTT)).json()
    assert [s["code"] for s in history["items"]][: len(recipient_codes)] == [
        c.value for c in recipient_codes
    ]
    sent = await (await axis.get("/api/v1/sent", VPCP)).json()
    latest = {r["organ_id"]: r["status"] for r in sent["items"][0]["recipients"]}
    assert latest[NGHE_AN]["code"] == recipient_codes[-1].value
    assert latest[SO_TTTT] is None
