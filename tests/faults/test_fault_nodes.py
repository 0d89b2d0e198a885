"""Three stateless axis nodes on one PostgreSQL and one S3 (issue 20): real ``lienthong serve``
processes on the suite's PostgreSQL server and Ceph gateway, senders spread over the three,
1,000 sends while the node holding the `stats-fold` job's lease (and whichever others it holds)
is SIGKILLed and started again several times.

What must hold:
- 0 acknowledged documents lost: every send answered 2xx (on any node, after retries of the
  same bytes on another node when one died mid-request) is stored once, with its delivery;
- 0 delivered twice: each (recipient, DocumentId) is pushed as one delivery, and after the
  receiver's de-duplication on its Idempotency-Key (the delivery id, the same on every retry:
  docs/delivery.md) the webhook has each exactly once; a push answered just before a kill, so
  never recorded, is sent again once its lease ends: those repeats are counted and bounded;
- every push delivered: every delivery ends 'acked';
- `lienthong audit verify` OK on the shared database (one chain, no fork across the nodes);
- the once-only jobs are taken over: after each kill of their holder, a surviving node takes
  the leases (a new holder, a higher token) before the dead one is started again.

Nothing asserts how fast: each wait polls with a generous bound.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import os
import secrets
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from fault_server import LIENTHONG, ServerProcess, free_port, seed_database
from fixtures_pg import PgDatabases, database_settings, fetch_rows
from fixtures_s3 import S3Endpoint

import edxml
from edxml import Envelope, MessageHeader, Organization
from server.exchange import webhooks
from storage.pg import PgDatabase

pytestmark = pytest.mark.slow

NODES = 3
SENDS = 1000
KILLS = 4
IN_FLIGHT = 12  # senders at once
LEASE_SECONDS = 3
SENDERS = [f"000.{i:02d}.00.H41" for i in range(1, 7)]
RECIPIENTS = ["000.00.00.G22", "000.00.00.G17"]
SECRET = "a-webhook-secret-of-the-ministry"
BOUND = 120.0  # seconds any wait may take on a loaded machine


async def eventually(check: Callable[[], object], what: str) -> None:
    """Poll `check` (a function or a coroutine function) until it answers true."""
    deadline = time.monotonic() + BOUND
    while True:
        answer = check()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        assert time.monotonic() < deadline, f"not within {BOUND} s: {what}"
        await asyncio.sleep(0.1)


async def seed(url: str) -> dict[str, str]:
    """The agencies and one token each in the shared database; return the tokens."""
    database = await PgDatabase.connect(url)
    try:
        return await seed_database(database, SENDERS + RECIPIENTS)
    finally:
        await database.close()


def package(sender: str, recipient: str, n: int) -> tuple[str, bytes]:
    document_id = f"{sender},2026/12/07,{n}/NODES-{uuid.uuid4().hex[:8]}"
    body = edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(sender, organ_name=sender),
                to=(Organization(recipient, organ_name=recipient),),
                document_id=document_id,
                subject=f"Văn bản {n} qua ba nút",
            )
        )
    )
    return document_id, body


class Webhook:
    """The recipients' systems: one receiver on 127.0.0.1 checking each push's signature."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.hits: Counter[str] = Counter()  # Idempotency-Key -> pushes received
        self.documents: dict[str, tuple[str, str]] = {}  # key -> (recipient, DocumentId)
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        webhooks.verify(SECRET, request.headers, body)
        key = request.headers[webhooks.IDEMPOTENCY_HEADER]
        self.hits[key] += 1
        self.documents[key] = (
            request.headers[webhooks.RECIPIENT_HEADER],
            webhooks.decode_document_id(request.headers[webhooks.DOCUMENT_ID_HEADER]),
        )
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def cluster(
    tmp_path: Path, pg_databases: PgDatabases, s3_server: S3Endpoint
) -> AsyncIterator[tuple[str, list[ServerProcess], dict[str, str], dict[str, str]]]:
    """The shared database (url with password), three nodes started, the tokens, the env."""
    url = await pg_databases.new()
    tokens = await seed(url)
    env = {
        **database_settings(url, tmp_path),
        "LIENTHONG_STORAGE_BACKEND": "s3",
        "LIENTHONG_S3_ENDPOINT": s3_server.endpoint,
        "LIENTHONG_S3_ACCESS_KEY": s3_server.access_key,
        "LIENTHONG_S3_SECRET_KEY": s3_server.secret_key,
        "LIENTHONG_S3_BUCKET": f"lt-nodes-{uuid.uuid4().hex[:10]}",
        "LIENTHONG_S3_SECURE": "false",
        "LIENTHONG_S3_RETENTION_YEARS": "1",
        # one secrets key for all the nodes: the webhook secret is sealed with it
        "LIENTHONG_SECRETS_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "LIENTHONG_JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
        "LIENTHONG_DELIVERY_BASE_DELAY_MS": "200",
        "LIENTHONG_DELIVERY_MAX_DELAY": "1",
        "LIENTHONG_DELIVERY_POLL_MS": "200",
        "LIENTHONG_DELIVERY_LEASE": "4",
        "LIENTHONG_DELIVERY_TIMEOUT": "3",
        "LIENTHONG_DATABASE_POOL_SIZE": "4",
    }
    nodes = []
    for i in range(NODES):
        data = tmp_path / f"node{i}"  # each node's own local directory (spool, logs)
        data.mkdir()
        node = ServerProcess(data, env)
        node.log = tmp_path / f"node{i}.log"
        nodes.append(node)
    try:
        await nodes[0].restart()  # the first applies nothing (migrated) and makes the bucket
        await asyncio.gather(*(n.restart() for n in nodes[1:]))
        yield url, nodes, tokens, env
    finally:
        for node in nodes:
            node.kill()


async def lease_holder(url: str) -> tuple[int, int] | None:
    """(pid, token) of the holder of the `stats-fold` lease (a job every node runs with the
    defaults), or None before any node took it."""
    rows = await fetch_rows(url, "SELECT holder, token FROM job_leases WHERE job = 'stats-fold'")
    if not rows:
        return None
    holder, token = rows[0]
    return int(str(holder).split(":")[1]), int(str(token))


async def kill_the_holder(url: str, nodes: list[ServerProcess]) -> tuple[int, int, int, int]:
    """SIGKILL the node holding the leases; keep it down until a survivor has taken them over
    (a higher token), then start it again. Return (dead pid, token, new pid, new token)."""
    before = await lease_holder(url)
    assert before is not None, "no node took the leases"
    victim = next(n for n in nodes if n.proc is not None and n.proc.pid == before[0])
    victim.kill()
    survivors = {n.proc.pid for n in nodes if n is not victim and n.proc is not None}

    async def taken_over() -> bool:
        now = await lease_holder(url)
        return now is not None and now[0] in survivors and now[1] > before[1]

    await eventually(taken_over, f"the leases taken over from the node on {victim.port}")
    after = await lease_holder(url)
    assert after is not None
    await victim.restart()
    return before[0], before[1], after[0], after[1]


async def test_three_nodes_one_killed_again_and_again(
    cluster: tuple[str, list[ServerProcess], dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    url, nodes, tokens, env = cluster
    hook = Webhook()
    await hook.start()
    acknowledged: dict[str, str] = {}  # DocumentId -> recipient
    retries = 0
    takeovers: list[tuple[int, int, int, int]] = []  # (dead pid, token, new pid, new token)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for recipient in RECIPIENTS:
                async with session.put(
                    f"{nodes[0].url}/api/v1/webhook",
                    json={"url": hook.url, "secret": SECRET},
                    headers={"Authorization": f"Bearer {tokens[recipient]}"},
                ) as resp:
                    assert resp.status == 200, await resp.text()

            numbers = itertools.count()

            async def sender(lane: int) -> None:
                nonlocal retries
                while (n := next(numbers)) < SENDS:
                    sender_id = SENDERS[n % len(SENDERS)]
                    recipient = RECIPIENTS[n % len(RECIPIENTS)]
                    document_id, body = package(sender_id, recipient, n)
                    headers = {
                        "Authorization": f"Bearer {tokens[sender_id]}",
                        "Content-Type": "application/xml",
                    }
                    # the same bytes again on the next node until one answers: a resend of
                    # an accepted package is answered with its first receipt
                    for attempt in itertools.count():
                        node = nodes[(n + attempt) % NODES]
                        try:
                            async with session.post(
                                f"{node.url}/api/v1/documents", data=body, headers=headers
                            ) as resp:
                                if resp.status in (200, 201):
                                    acknowledged[document_id] = recipient
                                    break
                                assert resp.status >= 500, await resp.text()
                        except (TimeoutError, aiohttp.ClientError):
                            pass
                        retries += 1
                        assert attempt < 50, f"{document_id} never accepted"
                        await asyncio.sleep(0.05)

            async def killer() -> None:
                """Kill the lease holder KILLS times, spread over the sends."""
                for k in range(KILLS):
                    while len(acknowledged) < (k + 1) * SENDS // (KILLS + 1):
                        await asyncio.sleep(0.05)
                    takeovers.append(await kill_the_holder(url, nodes))

            await asyncio.gather(killer(), *(sender(i) for i in range(IN_FLIGHT)))

        # every delivery pushed and settled
        async def all_acked() -> bool:
            rows = await fetch_rows(url, "SELECT state, count(*) FROM deliveries GROUP BY state")
            return dict(rows) == {"acked": SENDS}  # type: ignore[arg-type]

        await eventually(all_acked, "every delivery acked")
        await eventually(lambda: len(hook.hits) == SENDS, "every push received")
    finally:
        await hook.stop()

    # 0 acknowledged documents lost, none stored twice
    assert len(acknowledged) == SENDS
    stored = await fetch_rows(
        url, "SELECT document_id, count(*) FROM documents GROUP BY document_id"
    )
    assert {str(d): int(str(c)) for d, c in stored} == dict.fromkeys(acknowledged, 1)
    # 0 delivered twice: one delivery per document, each received (after de-duplication) once
    assert sorted(hook.documents.values()) == sorted(
        (recipient, doc) for doc, recipient in acknowledged.items()
    )
    repeats = sum(hook.hits.values()) - len(hook.hits)
    assert repeats <= KILLS * 8 * 2, repeats  # at most the pushes in flight at each kill
    # the once-only jobs taken over after each kill, by a node that was alive
    assert len(takeovers) == KILLS
    assert all(
        new_pid != dead and new_token > token for dead, token, new_pid, new_token in takeovers
    )
    # one audit chain, no fork, as `lienthong audit verify` sees it from a node's config
    verify = subprocess.run(
        [str(LIENTHONG), "audit", "verify", "--data-dir", str(tmp_path / "node0")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(
        f"{SENDS} sends over {NODES} nodes, {KILLS} kills, {retries} retries of a send, "
        f"{repeats} pushes repeated after a kill (de-duplicated), takeovers {takeovers}"
    )
