"""Three real axes on 127.0.0.1 (district -> province -> national), each with its own data
directory: a commune's document reaches a ministry and its statuses come back, each delivered
exactly once, with every hop's TraceHeader; a package that already passed an axis is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from axis_client import document, status

import edxml
from edxml import StatusCode, TraceHeader
from server.app.application import build_app
from server.exchange.federation import Router
from server.http.appkeys import DATABASE, EXCHANGE
from server.runtime.config import Config, load_config
from server.runtime.tokens import new_token
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.routes import PushRepo, RouteRepo
from storage.repos.tokens import TokenRepo

NATIONAL, PROVINCE, DISTRICT = "000.00.00.LT0", "000.00.00.LT1", "000.00.00.LT2"
VPCP = "000.00.00.G22"  # a ministry-level office, hosted by the national axis
NGHE_AN = "000.00.00.H41"  # the province, hosted by the province axis
HUYEN = "000.01.00.H41"  # a district under it, hosted by the district axis
XA = "001.01.00.H41"  # a commune under the district


@dataclasses.dataclass
class Node:
    name: str
    config: Config
    runner: web.AppRunner
    url: str
    tokens: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.runner.app[DATABASE]

    @property
    def router(self) -> Router:
        return self.runner.app[EXCHANGE].router

    async def add(self, organ_id: str, name: str, *, token: bool = True) -> str | None:
        async with self.db.transaction() as tx:
            if await AgencyRepo(tx).get(organ_id) is None:
                await AgencyRepo(tx).add(organ_id, name)
            if not token:
                return None
            value, digest = new_token()
            await TokenRepo(tx).create(organ_id, digest, label="test")
        self.tokens[organ_id] = value
        return value

    async def link(self, organ_id: str, url: str, token: str, hosts: list[str]) -> None:
        async with self.db.transaction() as tx:
            await RouteRepo(tx, self.router.secrets).set_link(organ_id, url, token, hosts)


async def start(
    tmp_path: Path, name: str, axis_id: str, hosted: list[str], parent: Node | None = None
) -> Node:
    env = {
        "LIENTHONG_SERVER_AXIS_ID": axis_id,
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_FEDERATION_HOSTED": ",".join(hosted),
        "LIENTHONG_FEDERATION_SYNC_INTERVAL": "1",
        "LIENTHONG_DELIVERY_POLL_MS": "50",
        "LIENTHONG_DELIVERY_BASE_DELAY_MS": "100",
        "LIENTHONG_DELIVERY_MAX_DELAY": "1",
    }
    if parent is not None:
        env["LIENTHONG_FEDERATION_PARENT_URL"] = parent.url
        env["LIENTHONG_FEDERATION_PARENT_ID"] = parent.config.server.axis_id
        env["LIENTHONG_FEDERATION_PARENT_TOKEN_FILE"] = str(tmp_path / f"{name}.parent-token")
    config = load_config(env=env, data_dir=tmp_path / name)
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Node(name, config, runner, f"http://127.0.0.1:{port}")


@pytest.fixture
async def axes(tmp_path: Path) -> AsyncIterator[tuple[Node, Node, Node]]:
    """National hosts the ministries; province hosts Nghệ An but links the district axis for
    its district; the district axis hosts the district and its communes."""
    national = await start(tmp_path, "national", NATIONAL, ["*.G22", "*.G17"])
    await national.add(VPCP, "Văn phòng Chính phủ")
    to_national = await national.add(PROVINCE, "Trục tỉnh Nghệ An")
    assert to_national
    (tmp_path / "province.parent-token").write_text(to_national)

    province = await start(tmp_path, "province", PROVINCE, [NGHE_AN], parent=national)
    await province.add(NGHE_AN, "UBND tỉnh Nghệ An")
    national_at_province = await province.add(NATIONAL, "Trục quốc gia")
    to_province = await province.add(DISTRICT, "Trục huyện")
    assert national_at_province and to_province
    (tmp_path / "district.parent-token").write_text(to_province)
    await national.link(PROVINCE, province.url, national_at_province, [NGHE_AN])

    district = await start(tmp_path, "district", DISTRICT, [HUYEN], parent=province)
    await district.add(HUYEN, "UBND huyện Nghi Lộc")
    await district.add(XA, "UBND xã Nghi Phong")
    province_at_district = await district.add(PROVINCE, "Trục tỉnh Nghệ An")
    assert province_at_district
    await province.link(DISTRICT, district.url, province_at_district, [HUYEN])
    try:
        yield national, province, district
    finally:
        for node in (district, province, national):
            await node.runner.cleanup()


async def call(
    session: aiohttp.ClientSession, node: Node, method: str, path: str, organ_id: str, **kw: Any
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {node.tokens[organ_id]}", **kw.pop("headers", {})}
    async with session.request(method, node.url + path, headers=headers, **kw) as resp:
        body = await resp.read()
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:
            return resp.status, body


async def eventually(check: Any, seconds: float = 20.0) -> Any:
    last = None
    for _ in range(int(seconds / 0.1)):
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached in {seconds} s (last: {last!r})")


async def knows(node: Node, organ_id: str) -> bool:
    async with node.db.reader() as tx:
        return await AgencyRepo(tx).get(organ_id) is not None


async def test_commune_to_ministry_and_statuses_back(axes: tuple[Node, Node, Node]) -> None:
    national, province, district = axes
    # The directory flows down: the district learns the ministry from the province, which
    # learnt it from the national axis.
    await eventually(lambda: knows(province, VPCP))
    await eventually(lambda: knows(district, VPCP))
    xml = {"Content-Type": "application/xml"}
    package = document(XA, [VPCP], subject="Báo cáo của xã gửi Văn phòng Chính phủ")
    async with aiohttp.ClientSession() as session:
        code, receipt = await call(
            session, district, "POST", "/api/v1/documents", XA,
            data=edxml.serialize(package), headers=xml,
        )  # fmt: skip
        assert code == 201, receipt
        assert receipt["recipients"] == [VPCP]

        async def ministry_inbox() -> list[Any]:
            _, page = await call(session, national, "GET", "/api/v1/inbox", VPCP)
            return list(page["items"])

        [item] = await eventually(ministry_inbox)
        assert item["sender"] == XA
        code, body = await call(
            session, national, "GET", f"/api/v1/documents/{item['document_id']}", VPCP
        )
        assert code == 200
        received = edxml.parse(body)
        assert isinstance(received, edxml.Envelope)
        assert received.header.document_id == package.header.document_id
        assert [t.organ_id for t in received.trace_headers] == [DISTRICT, PROVINCE, NATIONAL]

        # Two statuses from the ministry travel back down to the commune.
        for status_code in (StatusCode.RECEIVED, StatusCode.COMPLETED):
            code, answer = await call(
                session, national, "POST", "/api/v1/statuses", VPCP,
                data=edxml.serialize(status(VPCP, package, status_code)), headers=xml,
            )  # fmt: skip
            assert code == 201, answer
            assert answer["recipients"] == [XA]

        async def commune_statuses() -> list[Any]:
            _, page = await call(session, district, "GET", "/api/v1/inbox?kind=status", XA)
            items = list(page["items"])
            return items if len(items) >= 2 else []

        statuses = await eventually(commune_statuses)
        # Let any duplicate forward arrive before counting.
        await asyncio.sleep(0.5)
        statuses = await commune_statuses()
        assert sorted(s["status_code"] for s in statuses) == ["01", "06"]
        assert {s["sender"] for s in statuses} == {VPCP}
        code, body = await call(
            session, district, "GET", f"/api/v1/documents/{statuses[0]['document_id']}", XA
        )
        back = edxml.parse(body)
        assert [t.organ_id for t in back.trace_headers] == [NATIONAL, PROVINCE, DISTRICT]

        # The commune sees the history of its own document.
        code, history = await call(
            session, district, "GET", f"/api/v1/documents/{receipt['id']}/statuses", XA
        )
        assert [h["code"] for h in history["items"]] == ["01", "06"]

        # Exactly once in every inbox, and nothing left to push at any hop.
        assert len(await ministry_inbox()) == 1
        _, docs = await call(session, district, "GET", "/api/v1/inbox?kind=document", XA)
        assert docs["items"] == []
        for node in axes:
            async with node.db.reader() as tx:
                rows = await PushRepo(tx).list(pushed_only=True)
            assert rows, node.name
            assert {r.state for r in rows} == {"acked"}, (node.name, rows)
            assert all(r.pushed_at is not None for r in rows)


async def test_a_package_that_passed_this_axis_is_refused_as_a_loop(
    axes: tuple[Node, Node, Node],
) -> None:
    _, _, district = axes
    looped = document(XA, [HUYEN])
    looped = dataclasses.replace(
        looped,
        trace_headers=(
            TraceHeader(DISTRICT, datetime(2024, 5, 1, 8, 0, tzinfo=edxml.VN_TZ)),
            TraceHeader(PROVINCE, datetime(2024, 5, 1, 8, 1, tzinfo=edxml.VN_TZ)),
        ),
    )
    async with aiohttp.ClientSession() as session:
        code, problem = await call(
            session, district, "POST", "/api/v1/documents", XA,
            data=edxml.serialize(looped), headers={"Content-Type": "application/xml"},
        )  # fmt: skip
    assert code == 409
    assert problem["type"] == "/problems/routing-loop"


async def test_an_axis_cannot_speak_for_ids_it_does_not_host(
    axes: tuple[Node, Node, Node],
) -> None:
    """The district axis's account at the province may forward for the district's ids, not
    for the province's own agencies nor for the ministry."""
    _, province, _ = axes
    await eventually(lambda: knows(province, VPCP))
    async with aiohttp.ClientSession() as session:
        for sender in (NGHE_AN, VPCP):
            forged = document(sender, [VPCP if sender != VPCP else NGHE_AN])
            code, problem = await call(
                session, province, "POST", "/api/v1/documents", DISTRICT,
                data=edxml.serialize(forged), headers={"Content-Type": "application/xml"},
            )  # fmt: skip
            assert code == 403, problem
            assert problem["type"] == "/problems/sender-mismatch"
