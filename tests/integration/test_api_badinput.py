"""Bad input: a 4xx problem+json with a stable type and plain detail, and nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document, status

import edxml
from edxml import StatusCode

GOOD = edxml.serialize(document(VPCP, [NGHE_AN], document_id="good-1"))

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><x>&xxe;</x></edXML>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<edXML>&lol2;</edXML>"""


@pytest.mark.parametrize(
    ("body", "status_code", "slug"),
    [
        (b"<edXML><unclosed>", 400, "malformed-xml"),
        (b"\x00\x01\x02 not xml at all", 400, "malformed-xml"),
        (XXE, 400, "unsafe-xml"),
        (BILLION_LAUGHS, 400, "unsafe-xml"),
        (
            GOOD.replace("thử".encode(), b"th\xff\xfe"),
            400,
            "malformed-xml",
        ),
        (b'<?xml version="1.0"?><html><body>hello</body></html>', 422, "not-edxml"),
        (
            GOOD.replace(
                b"<edXML:From>\n          <edXML:OrganId>000.00.00.G22</edXML:OrganId>",
                b"<edXML:From>\n          <edXML:OrganId>not an id!</edXML:OrganId>",
            ),
            422,
            "invalid-package",
        ),
        (
            edxml.serialize(status(NGHE_AN, document(VPCP, [NGHE_AN]), StatusCode.RECEIVED)),
            422,
            "wrong-kind",
        ),
    ],
    ids=[
        "malformed",
        "binary",
        "xxe",
        "entities",
        "invalid-utf8",
        "not-edxml",
        "bad-organid",
        "status-to-documents",
    ],
)
async def test_bad_package_is_refused_and_nothing_stored(
    axis: Axis, body: bytes, status_code: int, slug: str | None
) -> None:
    before = await axis.snapshot()
    resp = await axis.post("/api/v1/documents", VPCP, body)
    assert resp.status == status_code, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    problem = await resp.json()
    if slug is not None:
        assert problem["type"] == f"/problems/{slug}"
    assert problem["status"] == status_code
    assert problem["detail"] and "Traceback" not in problem["detail"]
    assert (await axis.snapshot()) == before


async def test_invalid_package_lists_its_problems(axis: Axis) -> None:
    body = GOOD.replace(b"<edXML:Subject>", b"<edXML:Ignored>").replace(
        b"</edXML:Subject>", b"</edXML:Ignored>"
    )
    before = await axis.snapshot()
    resp = await axis.send(VPCP, body)
    assert resp.status == 422
    problem = await resp.json()
    assert problem["type"] == "/problems/invalid-package"
    assert any("Subject" in p["path"] or "Subject" in p["message"] for p in problem["problems"])
    assert (await axis.snapshot()) == before


async def test_unknown_elements_are_accepted_leniently(axis: Axis) -> None:
    body = GOOD.replace(
        b"</edXML:Subject>",
        b"</edXML:Subject><edXML:FutureExtension><edXML:Foo>1</edXML:Foo></edXML:FutureExtension>",
    )
    receipt = await axis.send_ok(VPCP, body)
    stored = await (await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)).read()
    assert b"<edXML:FutureExtension>" in stored  # the sender's bytes are kept as they came


async def test_status_message_rules_on_statuses_route(axis: Axis) -> None:
    before = await axis.snapshot()
    resp = await axis.post("/api/v1/statuses", VPCP, GOOD)
    assert resp.status == 422
    assert (await resp.json())["type"] == "/problems/wrong-kind"
    assert (await axis.snapshot()) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json", "multipart/form-data"],
)
async def test_wrong_content_type_is_415(axis: Axis, content_type: str) -> None:
    before = await axis.snapshot()
    resp = await axis.client.post(
        "/api/v1/documents", data=GOOD, headers=axis.auth(VPCP, **{"Content-Type": content_type})
    )
    assert resp.status == 415
    assert (await resp.json())["type"] == "/problems/unsupported-media-type"
    assert (await axis.snapshot()) == before


@pytest.mark.parametrize("content_type", ["text/xml", "application/octet-stream"])
async def test_other_accepted_content_types(axis: Axis, content_type: str) -> None:
    resp = await axis.client.post(
        "/api/v1/documents", data=GOOD, headers=axis.auth(VPCP, **{"Content-Type": content_type})
    )
    assert resp.status == 201


async def test_empty_body_is_400(axis: Axis) -> None:
    before = await axis.snapshot()
    resp = await axis.post("/api/v1/documents", VPCP, b"")
    assert resp.status == 400
    assert (await resp.json())["type"] == "/problems/empty-body"
    assert (await axis.snapshot()) == before


async def test_oversize_with_content_length_is_413(axis: Axis) -> None:
    limit = axis.config.server.max_body_bytes
    body = GOOD.replace(b"</edXML:Subject>", b"</edXML:Subject><!--" + b"x" * limit + b"-->")
    before = await axis.snapshot()
    resp = await axis.post("/api/v1/documents", VPCP, body)
    assert resp.status == 413
    problem = await resp.json()
    assert problem["type"] == "/problems/payload-too-large"
    assert problem["max_bytes"] == limit
    assert (await axis.snapshot()) == before


async def test_oversize_while_streaming_is_413(axis: Axis) -> None:
    """Chunked upload without Content-Length: the limit is enforced on the bytes received."""
    limit = axis.config.server.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield GOOD[:200]
        for _ in range(limit // 65536 + 2):
            yield b"<!--" + b"y" * 65528 + b"-->"

    before = await axis.snapshot()
    resp = await axis.client.post(
        "/api/v1/documents",
        data=chunks(),
        headers=axis.auth(VPCP, **{"Content-Type": "application/xml"}),
    )
    assert resp.status == 413
    assert (await resp.json())["type"] == "/problems/payload-too-large"
    assert (await axis.snapshot()) == before


async def test_unknown_route_and_method_are_problems(axis: Axis) -> None:
    resp = await axis.get("/api/v1/nothing-here", VPCP)
    assert resp.status == 404
    assert (await resp.json())["type"] == "/problems/not-found"
    resp = await axis.client.delete("/api/v1/inbox", headers=axis.auth(VPCP))
    assert resp.status == 405
    assert (await resp.json())["type"] == "/problems/method-not-allowed"
