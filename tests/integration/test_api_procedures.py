"""GET /api/v1/procedures and /api/v1/procedures/{code} on the real app: the catalogue stored by
the domain (as ``lienthong procedure import`` stores it), paged like the inbox."""

from __future__ import annotations

from typing import Any

from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, XA, Axis

from server.dossiers.catalogue import Located, store_procedures
from server.dossiers.procedures import procedure_from_mapping
from server.http.appkeys import DATABASE
from server.runtime.audit import ADMIN

CODES = ["1.000419", "1.001193", "2.000806", "2.001263", "3.000001"]


async def seed(axis: Axis) -> None:
    entries = []
    for code in CODES:
        data: dict[str, Any] = {
            "code": code,
            "name": f"Thủ tục {code}",
            "field": "Hộ tịch",
            "agency": XA,
            "days": 3,
            "online_level": "toàn trình",
            "components": [{"code": "TK", "name": "Tờ khai", "required": True}],
            "fees": [{"amount": 8000, "description": "Lệ phí"}],
        }
        if code == "2.000806":
            data.update(agency=NGHE_AN, days=15, calendar_days=True)
            data["steps"] = [{"agency": XA, "days": 2}, {"agency": SO_TTTT, "days": 13}]
        entries.append(Located(code, procedure_from_mapping(data)))
    async with axis.client.app[DATABASE].transaction() as tx:
        await store_procedures(tx, entries, ADMIN, "test")


async def test_the_catalogue_in_pages(axis: Axis) -> None:
    empty = await axis.get("/api/v1/procedures", OUTSIDER)
    assert empty.status == 200 and await empty.json() == {"items": [], "next": None}
    await seed(axis)
    seen: list[str] = []
    cursor = ""
    for _ in range(3):
        resp = await axis.get(f"/api/v1/procedures?limit=2{cursor}", OUTSIDER)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        seen += [item["code"] for item in page["items"]]
        if page["next"] is None:
            break
        cursor = f"&after={page['next']}"
    assert seen == CODES
    assert page["next"] is None and len(page["items"]) == 1


async def test_one_procedure_as_the_api_shows_it(axis: Axis) -> None:
    await seed(axis)
    resp = await axis.get("/api/v1/procedures/2.000806", NGHE_AN)
    assert resp.status == 200
    assert await resp.json() == {
        "code": "2.000806",
        "name": "Thủ tục 2.000806",
        "field": "Hộ tịch",
        "agency": NGHE_AN,
        "days": 15,
        "calendar_days": True,
        "online_level": "full",
        "online_level_label": "Toàn trình",
        "components": [{"code": "TK", "name": "Tờ khai", "required": True}],
        "fees": [{"amount": 8000, "description": "Lệ phí"}],
        "steps": [{"agency": XA, "days": 2}, {"agency": SO_TTTT, "days": 13}],
    }


async def test_unknown_codes_bad_queries_and_no_token(axis: Axis) -> None:
    await seed(axis)
    for code in ["1.999999", "abc", "1.001193x"]:
        resp = await axis.get(f"/api/v1/procedures/{code}", NGHE_AN)
        assert resp.status == 404
        body = await resp.json()
        assert body["type"] == "/problems/not-found" and code in body["detail"]
    for query in ["limit=0", "limit=501", "after=zz", "after=ff"]:
        resp = await axis.get(f"/api/v1/procedures?{query}", NGHE_AN)
        assert resp.status == 400, query
        assert (await resp.json())["type"] == "/problems/invalid-query"
    for path in ["/api/v1/procedures", "/api/v1/procedures/1.001193"]:
        resp = await axis.get(path, None)
        assert resp.status == 401
