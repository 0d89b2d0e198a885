"""A webhook that is down for a while (connection refused), then back, while the axis is also
SIGKILLed once mid-push: every package reaches the receiver, exactly once after its
de-duplication, and every delivery ends 'acked'."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from fault_server import ServerProcess, free_port, seed

import edxml
from edxml import Envelope, MessageHeader, Organization
from server.exchange import webhooks

SENDER, RECEIVER = "000.00.00.G22", "000.00.00.H41"
SECRET = "a-webhook-secret-of-the-province"
COUNT = 60


async def test_webhook_down_then_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = await seed(data, [SENDER, RECEIVER])
    server = ServerProcess(
        data,
        env={
            "LIENTHONG_DELIVERY_BASE_DELAY_MS": "100",
            "LIENTHONG_DELIVERY_MAX_DELAY": "1",
            "LIENTHONG_DELIVERY_POLL_MS": "100",
            "LIENTHONG_DELIVERY_LEASE": "3",
            "LIENTHONG_DELIVERY_TIMEOUT": "2",
        },
    )
    await server.restart()
    hook_port = free_port()
    received: dict[tuple[str, str, str], bytes] = {}
    hits = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal hits
        body = await request.read()
        webhooks.verify(SECRET, request.headers, body)
        hits += 1
        key = (
            request.headers[webhooks.SENDER_HEADER],
            webhooks.decode_document_id(request.headers[webhooks.DOCUMENT_ID_HEADER]),
            request.headers[webhooks.IDEMPOTENCY_HEADER],
        )
        received.setdefault(key, body)
        return web.Response(status=200)

    try:
        async with aiohttp.ClientSession() as session:
            auth = {"Authorization": f"Bearer {tokens[RECEIVER]}"}
            url = f"http://127.0.0.1:{hook_port}/hook"
            async with session.put(
                f"{server.url}/api/v1/webhook", json={"url": url, "secret": SECRET}, headers=auth
            ) as resp:
                assert resp.status == 200
            for n in range(COUNT):
                body = edxml.serialize(
                    Envelope(
                        header=MessageHeader(
                            from_=Organization(SENDER, organ_name="VPCP"),
                            to=(Organization(RECEIVER, organ_name="Nghệ An"),),
                            document_id=f"{SENDER},2024/05/01,{n}/PUSH",
                            subject=f"Văn bản {n}",
                        )
                    )
                )
                async with session.post(
                    f"{server.url}/api/v1/documents",
                    data=body,
                    headers={
                        "Authorization": f"Bearer {tokens[SENDER]}",
                        "Content-Type": "application/xml",
                    },
                ) as resp:
                    assert resp.status == 201
        # The endpoint is down (nothing listens): attempts fail and back off.
        await asyncio.sleep(1.5)
        assert hits == 0
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", hook_port).start()
        try:
            # Kill the axis as soon as pushes flow: leased deliveries wait for their lease.
            while hits == 0:
                await asyncio.sleep(0.01)
            server.kill()
            await server.restart()
            deadline = time.monotonic() + 30
            while len(received) < COUNT and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            # The endpoint stays up until every delivery is acked: a push answered 200 just
            # before the kill was never recorded, and is sent again once its lease (3 s) ends,
            # possibly after every package has already arrived once.
            conn = sqlite3.connect(data / "lienthong.sqlite3")
            try:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    states = dict(
                        conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state")
                    )
                    if states == {"acked": COUNT}:
                        break
                    await asyncio.sleep(0.1)
            finally:
                conn.close()
        finally:
            await runner.cleanup()
        assert len(received) == COUNT
        assert {k[0] for k in received} == {SENDER}
        assert len({k[1] for k in received}) == COUNT  # one delivery per document
        assert states == {"acked": COUNT}
        print(f"\npush: {COUNT} packages, {hits} requests on the wire, {len(received)} unique")
    finally:
        server.stop()
