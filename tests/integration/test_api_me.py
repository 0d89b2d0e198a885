"""GET /api/v1/me, and JSON answers keeping Vietnamese readable (not \\u escapes)."""

from __future__ import annotations

from axis_client import NGHE_AN, VPCP, Axis

from server.http.appkeys import DATABASE
from server.runtime.tokens import new_token
from storage.repos.tokens import TokenRepo


async def test_me_names_the_tokens_agency_and_roles(axis: Axis) -> None:
    for organ_id, name in ((VPCP, "Văn phòng Chính phủ"), (NGHE_AN, "UBND tỉnh Nghệ An")):
        resp = await axis.get("/api/v1/me", organ_id)
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        assert await resp.json() == {"organ_id": organ_id, "name": name, "roles": ["agency"]}

    # Roles come from the token used, sorted.
    token, token_hash = new_token()
    async with axis.client.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(NGHE_AN, token_hash, label="ops", roles=("axis", "agency"))
    resp = await axis.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await resp.json())["roles"] == ["agency", "axis"]


async def test_me_needs_a_token(axis: Axis) -> None:
    resp = await axis.get("/api/v1/me", None)
    assert resp.status == 401
    assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_json_answers_keep_vietnamese_readable(axis: Axis) -> None:
    for path in ("/api/v1/me", "/api/v1/agencies"):
        resp = await axis.get(path, VPCP)
        raw = await resp.read()
        assert "Văn phòng Chính phủ".encode() in raw, raw[:200]
        assert b"\\u" not in raw
