"""SIGKILL the axis at 20 random moments during 1,000 sends from concurrent clients that retry.

Afterwards: every acknowledged send is in each recipient's inbox exactly once; a send that was
abandoned (never acknowledged) is either wholly present (document and every delivery) or absent;
objects and database agree (no orphan object, none missing, none corrupted); SQLite is intact.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fault_server import ServerProcess, db_rows, seed, stored_objects

import edxml
from edxml import Envelope, MessageHeader, Organization

SENDERS = ["000.00.00.G22", "000.00.00.G17", "000.00.00.G09"]
RECIPIENTS = ["000.00.00.H41", "000.01.00.H41", "000.00.00.H29"]
SENDS = 1000
KILLS = 20
CLIENTS = 12


def package(sender: str, to: list[str], n: int) -> bytes:
    return edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(sender, organ_name=sender),
                to=tuple(Organization(o, organ_name=o) for o in to),
                document_id=f"{sender},2024/05/01,{n}/KILL",
                subject=f"Văn bản thử nghiệm số {n}",
            )
        )
    )


# The packages kept in the database with their row (the default for small ones), and the same
# sends as object files (directory fsyncs batched with the group commit, intent records).
@pytest.mark.parametrize("inline_max_bytes", ["262144", "0"], ids=["inline", "files"])
async def test_sigkill_during_concurrent_sends(tmp_path: Path, inline_max_bytes: str) -> None:
    rng = random.Random(20240501)
    data = tmp_path / "data"
    tokens = await seed(data, SENDERS + RECIPIENTS)
    server = ServerProcess(
        data,
        env={
            "LIENTHONG_DELIVERY_ORPHAN_GRACE": "0",
            "LIENTHONG_STORAGE_INLINE_MAX_BYTES": inline_max_bytes,
        },
    )
    await server.restart()

    plan = []
    for n in range(SENDS):
        sender = SENDERS[n % len(SENDERS)]
        to = rng.sample(RECIPIENTS, rng.randint(1, 2))
        plan.append((sender, to, f"{sender},2024/05/01,{n}/KILL", package(sender, to, n)))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(SENDS):
        queue.put_nowait(n)
    acked: dict[int, str] = {}
    abandoned: set[int] = set()
    errors: Counter[str] = Counter()
    done = asyncio.Event()

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            sender, _, _, body = plan[n]
            headers = {
                "Authorization": f"Bearer {tokens[sender]}",
                "Content-Type": "application/xml",
            }
            failures = 0
            while True:
                try:
                    async with session.post(
                        f"{server.url}/api/v1/documents", data=body, headers=headers
                    ) as resp:
                        answer: Any = await resp.json(content_type=None)
                        if resp.status in (200, 201):
                            acked[n] = answer["id"]
                            break
                        errors[f"http {resp.status}"] += 1
                        assert resp.status >= 500, answer
                except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                failures += 1
                # Some clients give up after a failure: their send must be all or nothing.
                if failures == 1 and rng.random() < 0.15:
                    abandoned.add(n)
                    break
                await asyncio.sleep(0.05 + rng.random() * 0.1)

    # The kill moments: 20 random points of progress through the 1,000 sends, plus a random
    # delay, so that kills land while requests are being received, stored and committed.
    moments = sorted(rng.sample(range(20, SENDS - 20), KILLS))

    async def killer() -> int:
        kills = 0
        for moment in moments:
            while len(acked) + len(abandoned) < moment and not done.is_set():
                await asyncio.sleep(0.005)
            if done.is_set():
                break
            await asyncio.sleep(rng.uniform(0, 0.05))
            server.kill()
            kills += 1
            await server.restart()
        return kills

    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        killing = asyncio.create_task(killer())
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
        done.set()
        kills = await killing
    assert kills == KILLS, f"the sends ended after {kills} kills"
    assert len(acked) + len(abandoned) == SENDS
    assert errors, "no request ever failed: the kills hit nothing"

    # One more restart: the start-up sweep removes orphan objects of killed uploads.
    server.kill()
    await server.restart()
    try:
        inboxes: dict[str, Counter[str]] = {}
        async with aiohttp.ClientSession() as session:
            for organ_id in RECIPIENTS:
                seen: Counter[str] = Counter()
                after = None
                while True:
                    query = "?limit=500" + (f"&after={after}" if after else "")
                    async with session.get(
                        f"{server.url}/api/v1/inbox{query}",
                        headers={"Authorization": f"Bearer {tokens[organ_id]}"},
                    ) as resp:
                        assert resp.status == 200
                        page = await resp.json()
                    for item in page["items"]:
                        seen[f"{item['sender']}|{item['edxml_document_id']}"] += 1
                    after = page["next"]
                    if after is None:
                        break
                inboxes[organ_id] = seen
    finally:
        server.stop()

    for organ_id, seen in inboxes.items():
        assert max(seen.values(), default=1) == 1, f"duplicate in {organ_id}'s inbox"
    for n in acked:
        sender, to, document_id, _ = plan[n]
        for organ_id in to:
            assert inboxes[organ_id][f"{sender}|{document_id}"] == 1, (n, organ_id)
        for organ_id in set(RECIPIENTS) - set(to):
            assert inboxes[organ_id][f"{sender}|{document_id}"] == 0

    db = data / "lienthong.sqlite3"
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    rows = db_rows(db, "SELECT sender, document_id, id, sha256, size FROM documents")
    by_key = {(r[0], r[1]): r for r in rows}
    deliveries = Counter(r[0] for r in db_rows(db, "SELECT document_id FROM deliveries"))
    present_abandoned = 0
    for n, (sender, to, document_id, _) in enumerate(plan):
        row = by_key.get((sender, document_id))
        if n in acked:
            assert row is not None and row[2] == acked[n]
        if row is not None:
            # All or nothing: a stored document has every one of its deliveries.
            assert deliveries[row[2]] == len(to), (n, deliveries[row[2]], to)
            present_abandoned += n in abandoned
    assert len(rows) == len(acked) + present_abandoned

    objects = stored_objects(data)
    referenced = {r[3]: r[4] for r in rows}
    assert set(objects) == set(referenced), "objects and database disagree"
    # Every intent record was settled by its row or swept with its object (grace 0).
    assert db_rows(db, "SELECT count(*) FROM pending_objects") == [(0,)]
    for name, digest in objects.items():
        assert digest == name, f"object {name} is corrupted"
    assert not list((data / "spool").iterdir())
    print(
        f"\nsigkill: {SENDS} sends, {kills} kills, {len(acked)} acknowledged, "
        f"{len(abandoned)} abandoned ({present_abandoned} of them stored), errors {dict(errors)}"
    )
