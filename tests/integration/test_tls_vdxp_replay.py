"""VDXP replays (issue 18, finding 7): a request whose signed timestamp is outside
``[vdxp] timestamp_window`` is refused (1008); a registerAgency or deleteAgency whose signature
was seen within the window is refused (1009), by any process on the same database; 0 turns the
checks off."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from axis_client import NGHE_AN, VPCP
from vdxp_fixtures import Vdxp, vdxp_fixture

from server.app.application import build_app
from server.http.appkeys import DATABASE
from server.runtime.config import VdxpSettings
from server.vdxp import protocol
from server.vdxp.client import JSON, VdxpClient, VdxpFailure
from server.vdxp.errors import ErrorCode
from storage.repos.vdxp_replay import SeenSignatureRepo

__all__ = ["vdxp_fixture"]


def _client(vdxp: Vdxp, organ_id: str, moment: datetime) -> VdxpClient:
    return VdxpClient(
        vdxp.endpoint, vdxp.system_id(organ_id), vdxp.secrets[organ_id], timestamp=moment
    )


async def _post(client: Any, operation: str, headers: dict[str, str], body: bytes) -> Any:
    resp = await client.post(f"/vdxp/{operation}", data=body, headers=headers)
    assert resp.status == 200
    return await resp.json(content_type=None)


async def test_a_timestamp_outside_the_window_is_refused(vdxp: Vdxp) -> None:
    now = datetime.now(protocol.VN_TZ)
    for moment in (datetime(2020, 1, 1, 8, 0, tzinfo=protocol.VN_TZ), now + timedelta(days=2)):
        async with _client(vdxp, NGHE_AN, moment) as client:
            with pytest.raises(VdxpFailure) as info:
                await client.count_receive_edoc()
        assert info.value.code == ErrorCode.STALE_TIMESTAMP
    # within the window (the SDK keeps its timestamp for hours): served
    async with _client(vdxp, NGHE_AN, now - timedelta(hours=20)) as client:
        assert await client.count_receive_edoc() == 0


async def test_an_unsigned_timestamp_is_refused(vdxp: Vdxp) -> None:
    params = {"systemid": vdxp.system_id(NGHE_AN), "Content-Type": JSON}
    headers = protocol.signed_headers(params, vdxp.secrets[NGHE_AN])
    answer = await _post(vdxp.axis.client, "countReceiveEdoc", headers, b"{}")
    assert answer["ErrorCode"] == ErrorCode.NOT_SIGNED


async def test_a_replayed_register_agency_is_refused_even_with_another_body(
    vdxp: Vdxp,
) -> None:
    """The body of registerAgency is not signed: captured headers must not register more."""
    headers = vdxp[NGHE_AN].build_headers({}, JSON)
    first = json.dumps({"code": "002.02.00.H41", "name": "Phòng A"}).encode()
    other = json.dumps({"code": "002.03.00.H41", "name": "Phòng B"}).encode()
    assert (await _post(vdxp.axis.client, "registerAgency", headers, first))["status"] == "OK"
    again = await _post(vdxp.axis.client, "registerAgency", headers, other)
    assert again["ErrorCode"] == ErrorCode.REPLAYED
    codes = {a["code"] for a in await vdxp[VPCP].get_agencies_list()}
    assert "002.02.00.H41" in codes and "002.03.00.H41" not in codes
    # reads repeat the same signature (the SDK's polling): still served
    for _ in range(2):
        assert await vdxp[NGHE_AN].count_receive_edoc() == 0


async def test_a_replay_is_refused_by_another_worker(vdxp: Vdxp, aiohttp_client: Any) -> None:
    """Two apps on one database, as the workers of ``serve --workers 2``."""
    await vdxp[NGHE_AN].register_agency({"code": "002.04.00.H41", "name": "Phòng C"})
    headers = vdxp.fresh(NGHE_AN).build_headers({"code": "002.04.00.H41"}, JSON)
    other_worker = await aiohttp_client(build_app(vdxp.axis.config))
    answer = await _post(vdxp.axis.client, "deleteAgency", headers, b"{}")
    assert answer["status"] == "OK"
    await vdxp.fresh(NGHE_AN).register_agency({"code": "002.04.00.H41", "name": "Phòng C"})
    replayed = await _post(other_worker, "deleteAgency", headers, b"{}")
    assert replayed["ErrorCode"] == ErrorCode.REPLAYED
    codes = {a["code"] for a in await vdxp[VPCP].get_agencies_list()}
    assert "002.04.00.H41" in codes


async def test_window_zero_turns_the_checks_off(vdxp: Vdxp, aiohttp_client: Any) -> None:
    config = dataclasses.replace(vdxp.axis.config, vdxp=VdxpSettings(timestamp_window=0))
    lenient = await aiohttp_client(build_app(config))
    old = _client(vdxp, NGHE_AN, datetime(2020, 1, 1, 8, 0, tzinfo=protocol.VN_TZ))
    try:
        headers = old.build_headers({}, JSON)
    finally:
        await old.close()
    assert (await _post(lenient, "countReceiveEdoc", headers, b"{}"))["status"] == "OK"
    body = json.dumps({"code": "002.05.00.H41", "name": "Phòng D"}).encode()
    assert (await _post(lenient, "registerAgency", headers, body))["status"] == "OK"
    body = json.dumps({"code": "002.06.00.H41", "name": "Phòng E"}).encode()
    assert (await _post(lenient, "registerAgency", headers, body))["status"] == "OK"


async def test_seen_signatures_are_pruned_past_the_window(vdxp: Vdxp) -> None:
    database = vdxp.axis.client.app[DATABASE]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with database.transaction() as tx:
        seen = SeenSignatureRepo(tx)
        assert await seen.first_sighting("ab" * 32, start, start - timedelta(days=2))
        assert not await seen.first_sighting("ab" * 32, start, start - timedelta(days=2))
        later = start + timedelta(days=3)
        assert await seen.first_sighting("ab" * 32, later, later - timedelta(days=2))
        count = await tx.fetchone("SELECT count(*) AS n FROM vdxp_seen_signatures")
    assert count is not None and count["n"] == 1
