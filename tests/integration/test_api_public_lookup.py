"""The public lookup API on the real app and real SQLite: no token, what it says and what it never
says, 404 and 400, and the rate limit per client address (429 with Retry-After)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from axis_client import SO_TTTT, XA, Axis
from test_api_dossiers import APPLICANT, intake, moved, seed

from server.runtime.config import Config

BUDGET = 6  # [dossiers] lookup_per_minute of these tests


@pytest.fixture
def axis_config(axis_config: Config) -> Config:
    """The suite's config with a small budget of lookups a minute."""
    dossiers = dataclasses.replace(axis_config.dossiers, lookup_per_minute=BUDGET)
    return dataclasses.replace(axis_config, dossiers=dossiers)


async def look_up(axis: Axis, code: str, expect: int = 200) -> Any:
    resp = await axis.client.get(f"/api/v1/public/dossiers/{code}")  # no token
    body = await resp.json(content_type=None)
    assert resp.status == expect, body
    return body


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*map(str, node), *(s for v in node.values() for s in strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [str(node)]


async def test_a_returned_dossier_as_the_public_sees_it(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis))["code"]
    await moved(axis, SO_TTTT, code, 4, note="Giao chuyên viên Lê Thị Hoa")
    await moved(axis, SO_TTTT, code, 9, note="Đã ký giấy khai sinh")
    await moved(axis, XA, code, 10)
    body = await look_up(axis, code)
    assert set(body) == {
        "code",
        "procedure",
        "status",
        "status_label",
        "applicant_name",
        "received_at",
        "due_at",
        "returned_at",
        "steps",
    }
    assert body["code"] == code
    assert body["procedure"] == {"code": "1.001193", "name": "Đăng ký khai sinh"}
    assert (body["status"], body["status_label"]) == (10, "Đã trả kết quả")
    assert body["applicant_name"] == "Nguyễn V. A."
    assert body["received_at"].endswith("+07:00") and body["due_at"].endswith("+07:00")
    assert body["returned_at"] == body["steps"][-1]["at"]
    assert [(s["status"], s["status_label"]) for s in body["steps"]] == [
        (2, "Được tiếp nhận"),
        (4, "Đang xử lý"),
        (9, "Đã xử lý xong"),
        (10, "Đã trả kết quả"),
    ]
    assert all(set(s) == {"status", "status_label", "at"} for s in body["steps"])
    # nothing of the applicant but the masked name, no notes, no officer, no files
    text = " ".join(strings(body)).replace(code, "")  # the code names the receiving unit
    for secret in (
        APPLICANT["name"],
        "040203001234",
        "0912",
        "345 678",
        APPLICANT["email"],
        "Nghi Phong",
        "Lê Thị Hoa",
        "Đã ký",
        XA,
        SO_TTTT,
        "TK.pdf",
        "sha256",
    ):
        assert secret not in text, secret
    for key in ("id_number", "phone", "email", "address", "files", "applicant", "note", "actor"):
        assert key not in strings(body), key


async def test_a_dossier_in_progress_has_no_return_date(axis: Axis) -> None:
    await seed(axis)
    code = (await intake(axis, applicant={**APPLICANT, "name": "Bình"}))["code"]
    body = await look_up(axis, code)
    assert (body["status"], body["status_label"]) == (2, "Được tiếp nhận")
    assert body["returned_at"] is None
    assert body["applicant_name"] == "B."
    assert len(body["steps"]) == 1


async def test_unknown_and_malformed_codes(axis: Axis) -> None:
    body = await look_up(axis, "000.00.01.H40-260105-0007", expect=404)
    assert body["type"] == "/problems/not-found"
    for text in ("abc", "000.00.01.H40-260105", "%27%20OR%201%3D1"):
        body = await look_up(axis, text, expect=400)
        assert body["type"] == "/problems/invalid-dossier-code"


async def test_rate_limit_per_client_address(axis: Axis) -> None:
    for _ in range(BUDGET):
        await look_up(axis, "000.00.01.H40-260105-0007", expect=404)
    resp = await axis.client.get("/api/v1/public/dossiers/000.00.01.H40-260105-0007")
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    body = await resp.json(content_type=None)
    assert body["type"] == "/problems/too-many-lookups"
    # one token every 60/BUDGET = 10 s
    assert 1 <= int(resp.headers["Retry-After"]) <= 60 // BUDGET
    # malformed codes count too (no free probing), and the page itself is not limited
    await look_up(axis, "abc", expect=429)
    page = await axis.client.get("/tra-cuu")
    assert page.status == 200
