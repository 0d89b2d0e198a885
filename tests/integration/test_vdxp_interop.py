"""One exchange, two protocols: what goes in through /vdxp comes out of /api/v1 and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from axis_client import NGHE_AN, SO_TTTT, VPCP, document, sha256, status
from vdxp_fixtures import Vdxp, vdxp_fixture  # noqa: F401 (the vdxp fixture)

import edxml
from edxml import StatusCode
from server.runtime.config import Config, load_config

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "edxml" / "sdk-samples"


@pytest.fixture
def axis_config(tmp_path: Path) -> Config:
    """Room for the SDK's sample packages (about 370 KB each)."""
    return load_config(
        env={"LIENTHONG_SERVER_MAX_BODY_BYTES": str(1024 * 1024), "LIENTHONG_SERVER_LOG_JSON": "0"},
        data_dir=tmp_path / "data",
    )


async def test_sent_through_vdxp_received_through_api(vdxp: Vdxp) -> None:
    axis = vdxp.axis
    package = document(VPCP, [NGHE_AN], subject="Gửi qua VDXP, nhận qua API")
    body = edxml.serialize(package)
    doc_id = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)

    [item] = (await axis.inbox(NGHE_AN))["items"]
    assert item["document_id"] == doc_id
    assert item["sender"] == VPCP
    assert item["subject"] == "Gửi qua VDXP, nhận qua API"
    resp = await axis.get(f"/api/v1/documents/{doc_id}", NGHE_AN)
    stored = await resp.read()
    meta = await (await axis.get(f"/api/v1/documents/{doc_id}/meta", NGHE_AN)).json()
    # The CRLF the SDK appends is not part of the package.
    assert meta["received_sha256"] == sha256(body)
    assert stored == await vdxp[NGHE_AN].get_edoc(doc_id)

    # Acknowledged through /api/v1: VDXP no longer lists it, and the sender sees it received.
    resp = await axis.client.post(
        f"/api/v1/inbox/{item['delivery_id']}/ack", headers=axis.auth(NGHE_AN)
    )
    assert resp.status == 200
    assert await vdxp[NGHE_AN].get_received_edoc_list() == []
    [sent] = await vdxp[VPCP].get_sent_edoc_list()
    assert sent["receiveStatus"] == "done"

    # A status through /api/v1 reaches the sender's VDXP status list.
    resp = await axis.send_status(NGHE_AN, status(NGHE_AN, package, StatusCode.ACCEPTED))
    assert resp.status == 201, await resp.text()
    status_id = (await resp.json())["id"]
    [st] = await vdxp[VPCP].get_received_edoc_list("status")
    assert st["docId"] == status_id
    assert st["from"] == NGHE_AN


async def test_sent_through_api_received_through_vdxp(vdxp: Vdxp) -> None:
    axis = vdxp.axis
    package = document(VPCP, [NGHE_AN, SO_TTTT])
    receipt = await axis.send_ok(VPCP, package)
    doc_id = receipt["id"]

    [item] = await vdxp[NGHE_AN].get_received_edoc_list()
    assert item["docId"] == doc_id
    fetched = await vdxp[NGHE_AN].get_edoc(doc_id)
    assert sha256(fetched) == receipt["sha256"]
    await vdxp[NGHE_AN].update_status(doc_id, "done")
    # The VDXP "done" is the /api/v1 acknowledgement.
    [acked] = (await axis.inbox(NGHE_AN, "?state=acked"))["items"]
    assert acked["document_id"] == doc_id
    assert (await axis.inbox(SO_TTTT, "?state=new"))["items"][0]["document_id"] == doc_id

    # A status back through VDXP shows in the /api/v1 history and sent list.
    answer = edxml.serialize(status(NGHE_AN, package, StatusCode.COMPLETED))
    await vdxp[NGHE_AN].send_edoc(answer, sender=NGHE_AN, to=VPCP, message_type="status")
    history = await (await axis.get(f"/api/v1/documents/{doc_id}/statuses", VPCP)).json()
    assert [(h["code"], h["sender"]) for h in history["items"]] == [("06", NGHE_AN)]
    status_items = (await axis.inbox(VPCP, "?kind=status"))["items"]
    assert [s["sender"] for s in status_items] == [NGHE_AN]


async def test_resend_across_protocols_is_the_same_document(vdxp: Vdxp) -> None:
    axis = vdxp.axis
    body = edxml.serialize(document(VPCP, [NGHE_AN]))
    receipt = await axis.send_ok(VPCP, body)
    again = await vdxp[VPCP].send_edoc(body, sender=VPCP, to=NGHE_AN)
    assert again == receipt["id"]
    assert len((await axis.inbox(NGHE_AN))["items"]) == 1
    assert await vdxp[NGHE_AN].count_receive_edoc() == 1


async def test_sdk_sample_package_travels(vdxp: Vdxp) -> None:
    """A real package of the SDK sample set (attachments zipped by the SDK), its From/To
    rewritten to seeded agencies: sent through VDXP, fetched byte-identical through both."""
    raw = (CORPUS / "edoc_new.edxml").read_bytes()
    parsed = edxml.parse(raw)
    assert isinstance(parsed, edxml.Envelope)
    sender = parsed.header.from_.organ_id
    data = raw.replace(sender.encode(), VPCP.encode())
    for organ_id in {o.organ_id for o in parsed.header.to}:
        data = data.replace(organ_id.encode(), NGHE_AN.encode())
    doc_id = await vdxp[VPCP].send_edoc(data, sender=VPCP, to=[NGHE_AN])
    assert [i["docId"] for i in await vdxp[NGHE_AN].get_received_edoc_list()] == [doc_id]
    via_vdxp = await vdxp[NGHE_AN].get_edoc(doc_id)
    via_api = await (await vdxp.axis.get(f"/api/v1/documents/{doc_id}", NGHE_AN)).read()
    assert via_vdxp == via_api
    assert len(via_vdxp) > len(data)  # the axis TraceHeader was added
