"""Federation over mutual TLS (issue 18, finding 7): a province axis forwards to its national
parent over HTTPS presenting its client certificate (``[federation] client_certificate``) and
checking the parent's against ``server_ca``; the parent knows the province's account by that
certificate alone (bound with ``--require``: its token alone would be refused), and the
province's directory sync goes the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from axis_client import document
from tls_fixtures import NGHE_AN, VPCP, HttpsAxis, TlsFiles, start_https_axis, tls_env, tls_files

import edxml
from server.http.appkeys import DATABASE, EXCHANGE
from storage.repos.agencies import AgencyRepo
from storage.repos.routes import RouteRepo

__all__ = ["tls_files"]

NATIONAL, PROVINCE = "000.00.00.LT0", "000.00.00.LT1"
FAST_DELIVERY = {
    "LIENTHONG_DELIVERY_POLL_MS": "50",
    "LIENTHONG_DELIVERY_BASE_DELAY_MS": "100",
    "LIENTHONG_DELIVERY_MAX_DELAY": "1",
    "LIENTHONG_FEDERATION_SYNC_INTERVAL": "1",
}


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


@pytest.fixture
async def axes(tmp_path: Path, tls_files: TlsFiles) -> AsyncIterator[tuple[HttpsAxis, HttpsAxis]]:
    national = await start_https_axis(
        tmp_path / "national",
        {
            **tls_env(tls_files, "optional"),
            **FAST_DELIVERY,
            "LIENTHONG_SERVER_AXIS_ID": NATIONAL,
            "LIENTHONG_FEDERATION_HOSTED": "*.G22",
        },
    )
    await national.add(VPCP, "Văn phòng Chính phủ")
    await national.add(PROVINCE, "Trục tỉnh Nghệ An")
    code, _ = await national.cli(
        "agency", "cert", "add", PROVINCE, str(tls_files.chains["tls-axis"]), "--require"
    )
    assert code == 0
    province = await start_https_axis(
        tmp_path / "province",
        {
            **FAST_DELIVERY,
            "LIENTHONG_SERVER_AXIS_ID": PROVINCE,
            "LIENTHONG_FEDERATION_HOSTED": NGHE_AN,
            "LIENTHONG_FEDERATION_PARENT_URL": national.url,
            "LIENTHONG_FEDERATION_PARENT_ID": NATIONAL,
            # no parent token: the certificate is the credential
            "LIENTHONG_FEDERATION_CLIENT_CERTIFICATE": str(tls_files.chains["tls-axis"]),
            "LIENTHONG_FEDERATION_CLIENT_KEY": str(tls_files.keys["tls-axis"]),
            "LIENTHONG_FEDERATION_SERVER_CA": str(tls_files.root),
        },
    )
    await province.add(NGHE_AN, "UBND tỉnh Nghệ An")
    national_at_province = await province.add(NATIONAL, "Trục quốc gia")
    exchange = national.runner.app[EXCHANGE]
    async with national.runner.app[DATABASE].transaction() as tx:
        await RouteRepo(tx, exchange.router.secrets).set_link(
            PROVINCE, province.url, national_at_province, [NGHE_AN]
        )
    try:
        yield national, province
    finally:
        await province.runner.cleanup()
        await national.runner.cleanup()


async def test_a_document_goes_up_over_mutual_tls(
    axes: tuple[HttpsAxis, HttpsAxis], tls_files: TlsFiles
) -> None:
    national, province = axes
    package = edxml.serialize(document(NGHE_AN, [VPCP]))
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{province.url}/api/v1/documents",
            data=package,
            headers={
                "Authorization": f"Bearer {province.tokens[NGHE_AN]}",
                "Content-Type": "application/xml",
            },
        ) as resp:
            assert resp.status == 201, await resp.text()

        async def inbox() -> list[Any]:
            async with session.get(
                f"{national.url}/api/v1/inbox",
                headers={"Authorization": f"Bearer {national.tokens[VPCP]}"},
                ssl=tls_files.client(None),
            ) as resp:
                assert resp.status == 200
                return list((await resp.json())["items"])

        [item] = await eventually(inbox)
    assert item["sender"] == NGHE_AN

    # the directory sync went over the same mTLS: the province learnt VPCP from its parent
    async def synced() -> bool:
        async with province.runner.app[DATABASE].reader() as tx:
            return await AgencyRepo(tx).get(VPCP) is not None

    assert await eventually(synced)


async def test_the_province_account_needs_its_certificate(
    axes: tuple[HttpsAxis, HttpsAxis], tls_files: TlsFiles
) -> None:
    """A token of the province's account alone is refused at the national axis (--require)."""
    national, _ = axes
    token = await national.add_token(PROVINCE)
    package = edxml.serialize(document(NGHE_AN, [VPCP]))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{national.url}/api/v1/documents",
            data=package,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
            ssl=tls_files.client(None),
        ) as resp,
    ):
        assert resp.status == 401
        assert "client certificate" in (await resp.json())["detail"]
