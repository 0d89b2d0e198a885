"""Push delivery to webhooks: signed requests, acked deliveries, back-off, dead letters, leases."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from axis_client import NGHE_AN, SO_TTTT, VPCP, Axis, document

import edxml
from server.exchange import webhooks
from server.exchange.delivery import DeliveryWorker, backoff
from server.exchange.federation import Router
from server.runtime.config import Config, load_config
from storage.db import Database
from storage.ids import utcnow
from storage.objects.fs import FilesystemObjectStore
from storage.repos.routes import PushRepo

SECRET = "s3cret-of-nghe-an-0123456789"


@pytest.fixture
def axis_config(tmp_path: Path) -> Config:
    """Fast retries so that tests do not wait: 50 ms first delay, 3 s max age."""
    return load_config(
        env={
            "LIENTHONG_SERVER_MAX_BODY_BYTES": str(1024 * 1024),
            "LIENTHONG_SERVER_LOG_JSON": "0",
            "LIENTHONG_DELIVERY_BASE_DELAY_MS": "50",
            "LIENTHONG_DELIVERY_MAX_DELAY": "1",
            "LIENTHONG_DELIVERY_MAX_AGE": "3",
            "LIENTHONG_DELIVERY_POLL_MS": "50",
            "LIENTHONG_DELIVERY_TIMEOUT": "5",
            "LIENTHONG_DELIVERY_WEBHOOK_ALLOW": "127.0.0.1",  # the receivers listen there
        },
        data_dir=tmp_path / "data",
    )


@dataclass
class Receiver:
    """A webhook endpoint of an agency system: checks signatures, de-duplicates, records."""

    url: str = ""
    answer: int = 200
    hits: list[dict[str, str]] = field(default_factory=list)
    bodies: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    bad_signatures: int = 0

    def unique(self) -> int:
        return len(self.bodies)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> AsyncIterator[Receiver]:
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            webhooks.verify(SECRET, request.headers, body)
        except webhooks.BadSignature:
            state.bad_signatures += 1
            return web.Response(status=401)
        state.hits.append(dict(request.headers))
        if state.answer >= 300:
            return web.Response(status=state.answer)
        key = (
            request.headers[webhooks.SENDER_HEADER],
            webhooks.decode_document_id(request.headers[webhooks.DOCUMENT_ID_HEADER]),
            request.headers[webhooks.IDEMPOTENCY_HEADER],
        )
        state.bodies.setdefault(key, body)  # the receiving side's de-duplication
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("/hook"))
    yield state


async def register(axis: Axis, organ_id: str, url: str, secret: str = SECRET) -> None:
    resp = await axis.client.put(
        "/api/v1/webhook", json={"url": url, "secret": secret}, headers=axis.auth(organ_id)
    )
    assert resp.status == 200, await resp.text()


async def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def recipient_state(axis: Axis, package_id: str, organ_id: str) -> str:
    meta = await (await axis.get(f"/api/v1/documents/{package_id}/meta", VPCP)).json()
    return next(r["state"] for r in meta["recipients"] if r["organ_id"] == organ_id)


async def test_webhook_receives_signed_package_and_delivery_is_acked(
    axis: Axis, receiver: Receiver
) -> None:
    await register(axis, NGHE_AN, receiver.url)
    package = document(VPCP, [NGHE_AN, SO_TTTT])
    receipt = await axis.send_ok(VPCP, package)

    async def pushed() -> bool:
        return await recipient_state(axis, receipt["id"], NGHE_AN) == "acked"

    await wait_for(pushed)
    assert receiver.bad_signatures == 0
    [hit] = receiver.hits
    assert hit[webhooks.SENDER_HEADER] == VPCP
    assert hit[webhooks.KIND_HEADER] == "document"
    assert hit[webhooks.PACKAGE_HEADER] == receipt["id"]
    assert hit["Content-Type"] == "application/xml"
    [body] = receiver.bodies.values()
    assert edxml.parse(body).header.document_id == package.header.document_id
    # The pulled recipient is untouched; the pushed one is no longer "new" in its inbox.
    assert await recipient_state(axis, receipt["id"], SO_TTTT) == "new"
    assert (await axis.inbox(NGHE_AN, "?state=new"))["items"] == []
    resp = await axis.get("/api/v1/webhook", NGHE_AN)
    view = await resp.json()
    assert view["url"] == receiver.url and "secret" not in view


async def test_packages_waiting_before_registration_are_pushed(
    axis: Axis, receiver: Receiver
) -> None:
    ids = [(await axis.send_ok(VPCP, document(VPCP, [NGHE_AN])))["id"] for _ in range(3)]
    await asyncio.sleep(0.2)
    assert receiver.hits == []
    await register(axis, NGHE_AN, receiver.url)

    async def all_pushed() -> bool:
        return receiver.unique() == 3

    await wait_for(all_pushed)
    for package_id in ids:
        assert await recipient_state(axis, package_id, NGHE_AN) == "acked"


async def test_failing_webhook_is_retried_with_backoff_then_delivered_once(
    axis: Axis, receiver: Receiver
) -> None:
    receiver.answer = 503
    await register(axis, NGHE_AN, receiver.url)
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))

    async def three_tries() -> bool:
        return len(receiver.hits) >= 3

    await wait_for(three_tries)
    assert await recipient_state(axis, receipt["id"], NGHE_AN) == "new"
    receiver.answer = 200

    async def pushed() -> bool:
        return await recipient_state(axis, receipt["id"], NGHE_AN) == "acked"

    await wait_for(pushed)
    assert receiver.unique() == 1
    # Every attempt carried the same idempotency key (the delivery id).
    assert len({h[webhooks.IDEMPOTENCY_HEADER] for h in receiver.hits}) == 1


async def test_dead_letter_after_max_age_visible_to_sender_then_retried(
    axis: Axis, receiver: Receiver
) -> None:
    receiver.answer = 500
    await register(axis, NGHE_AN, receiver.url)
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))

    async def dead() -> bool:
        return await recipient_state(axis, receipt["id"], NGHE_AN) == "dead"

    await wait_for(dead, seconds=15)
    sent = await (await axis.get("/api/v1/sent", VPCP)).json()
    entry = next(e for e in sent["items"] if e["id"] == receipt["id"])
    assert "dead" in str(entry)
    database = _db(axis)
    async with database.reader() as tx:
        rows = await PushRepo(tx).list(state="dead")
    assert [r.package_id for r in rows] == [receipt["id"]]
    assert rows[0].attempts >= 2 and "HTTP 500" in (rows[0].last_error or "")
    receiver.answer = 200
    async with database.transaction() as tx:
        assert await PushRepo(tx).revive(None, utcnow()) == 1
    worker = _worker(axis)
    worker.wake()

    async def pushed() -> bool:
        return await recipient_state(axis, receipt["id"], NGHE_AN) == "acked"

    await wait_for(pushed)
    assert receiver.unique() == 1


async def test_permanent_refusal_goes_to_dead_letter_at_once(
    axis: Axis, receiver: Receiver
) -> None:
    receiver.answer = 422
    await register(axis, NGHE_AN, receiver.url)
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))

    async def dead() -> bool:
        return await recipient_state(axis, receipt["id"], NGHE_AN) == "dead"

    await wait_for(dead)
    assert len(receiver.hits) == 1


async def test_bad_webhook_registration_is_refused(axis: Axis) -> None:
    for body in ({"url": "ftp://x/", "secret": SECRET}, {"url": "http://127.0.0.1/h"}, []):
        resp = await axis.client.put("/api/v1/webhook", json=body, headers=axis.auth(NGHE_AN))
        assert resp.status == 400
    resp = await axis.client.put(
        "/api/v1/webhook", json={"url": "http://127.0.0.1/h", "secret": "short"},
        headers=axis.auth(NGHE_AN),
    )  # fmt: skip
    assert resp.status == 400
    assert (await axis.get("/api/v1/webhook", NGHE_AN)).status == 404
    resp = await axis.client.delete("/api/v1/webhook", headers=axis.auth(NGHE_AN))
    assert resp.status == 404


async def test_removed_webhook_leaves_packages_in_the_inbox(axis: Axis, receiver: Receiver) -> None:
    receiver.answer = 503
    await register(axis, NGHE_AN, receiver.url)
    await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    resp = await axis.client.delete("/api/v1/webhook", headers=axis.auth(NGHE_AN))
    assert resp.status == 204
    await asyncio.sleep(0.3)
    hits = len(receiver.hits)
    await asyncio.sleep(0.3)
    assert len(receiver.hits) == hits  # no more pushes
    assert len((await axis.inbox(NGHE_AN, "?state=new"))["items"]) == 1


def test_signature_verification() -> None:
    body = b"<edXMLEnvelope/>"
    headers = {
        webhooks.TIMESTAMP_HEADER: "1700000000",
        webhooks.SIGNATURE_HEADER: webhooks.sign(SECRET, 1700000000, body),
    }
    assert webhooks.verify(SECRET, headers, body, now=1700000100) == 1700000000
    with pytest.raises(webhooks.BadSignature):
        webhooks.verify(SECRET, headers, body + b" ", now=1700000100)
    with pytest.raises(webhooks.BadSignature):
        webhooks.verify("another-secret-xxxxxxxx", headers, body, now=1700000100)
    with pytest.raises(webhooks.BadSignature):
        webhooks.verify(SECRET, headers, body, now=1700001000)  # replayed too late
    with pytest.raises(webhooks.BadSignature):
        webhooks.verify(SECRET, {}, body)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff(n, 1000, 60, rng) for n in range(1, 10)]
    for n, delay in enumerate(delays, start=1):
        full = min(60.0, 2 ** (n - 1))
        assert full / 2 <= delay <= full
    assert max(delays) <= 60


def _db(axis: Axis) -> Database:
    from server.http.appkeys import DATABASE

    return axis.client.app[DATABASE]


def _worker(axis: Axis) -> DeliveryWorker:
    from server.app.lifetimes import WORKER

    return axis.client.app[WORKER]


async def test_two_workers_on_one_database_never_send_the_same_delivery(
    axis: Axis, aiohttp_server: Any
) -> None:
    """Two workers with their own connections (as two processes would have) share the queue:
    each delivery is sent exactly once while leases hold, and never by both at once."""
    sends: Counter[str] = Counter()
    active: set[str] = set()
    overlaps = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal overlaps
        key = request.headers[webhooks.IDEMPOTENCY_HEADER]
        if key in active:
            overlaps += 1
        active.add(key)
        await asyncio.sleep(0.01)
        active.discard(key)
        sends[key] += 1
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app)
    for _ in range(40):
        await axis.send_ok(VPCP, document(VPCP, [SO_TTTT]))
    config = axis.config
    databases = [await Database.open(config.db_path) for _ in range(2)]
    objects = FilesystemObjectStore(config.objects_dir)
    # The app's own worker takes part too: three workers, one queue.
    await register(axis, SO_TTTT, str(server.make_url("/hook")))
    async with aiohttp.ClientSession() as session:
        workers = [DeliveryWorker(config, db, objects, Router(config), session) for db in databases]
        await asyncio.gather(*(w.drain(within=30) for w in workers))
    for db in databases:
        await db.close()

    async def all_acked() -> bool:
        return len(sends) == 40

    await wait_for(all_acked)
    assert overlaps == 0
    assert set(sends.values()) == {1}, sends
