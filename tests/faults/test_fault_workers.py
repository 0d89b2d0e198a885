"""``lienthong serve --workers 2``: one port, two processes writing one SQLite database.

Concurrent senders (each request on a new connection, so the kernel spreads them) all land
exactly once, resends included; both workers answer; SIGTERM to the parent lets an upload in
flight finish and stops every process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import aiohttp
from fault_server import ServerProcess, db_rows, seed

import edxml
from edxml import Envelope, MessageHeader, Organization

SENDERS = ["000.00.00.G22", "000.00.00.G01", "000.00.00.G02", "000.00.00.G03"]
RECEIVER = "000.00.00.H41"
PER_SENDER = 15


def package(sender: str, n: int) -> bytes:
    return edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(sender, organ_name=sender),
                to=(Organization(RECEIVER, organ_name="Nghệ An"),),
                document_id=f"{sender},2025/01/15,{n}/WORKERS",
                subject=f"Văn bản số {n} qua hai tiến trình",
            )
        )
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def worker_pids(log: Path) -> list[int]:
    for line in log.read_text("utf-8").splitlines():
        if '"workers started"' in line:
            return [int(p) for p in json.loads(line)["pids"]]
    raise AssertionError("no 'workers started' line in the log")


async def test_two_workers_share_the_port_and_the_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = await seed(data, [*SENDERS, RECEIVER])
    server = ServerProcess(data, {"LIENTHONG_SERVER_WORKERS": "2"})
    await server.restart()
    workers: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    try:
        pids = worker_pids(server.log)
        assert len(pids) == 2 and all(alive(p) for p in pids)

        async def send(session: aiohttp.ClientSession, sender: str, n: int) -> None:
            headers = {
                "Authorization": f"Bearer {tokens[sender]}",
                "Content-Type": "application/xml",
                "Connection": "close",  # a new connection each time: both workers get some
            }
            async with session.post(
                f"{server.url}/api/v1/documents", data=package(sender, n), headers=headers
            ) as resp:
                await resp.read()
                statuses[resp.status] += 1
                workers[resp.headers["X-Lienthong-Worker"]] += 1

        async def sender_loop(sender: str) -> None:
            async with aiohttp.ClientSession() as session:
                for n in range(PER_SENDER):
                    # each package twice at once: one 201, one 200 (same bytes), never two rows
                    await asyncio.gather(send(session, sender, n), send(session, sender, n))

        await asyncio.gather(*(sender_loop(s) for s in SENDERS))
        total = len(SENDERS) * PER_SENDER
        assert statuses == {201: total, 200: total}, statuses
        assert set(workers) == {"0", "1"}, workers

        # SIGTERM with an upload in flight: it finishes, then every process exits.
        body = package(SENDERS[0], 999)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            (
                f"POST /api/v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {tokens[SENDERS[0]]}\r\n"
                f"Content-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n"
            ).encode()
            + body[:100]
        )
        await writer.drain()
        await asyncio.sleep(0.3)
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert server.proc is not None and server.proc.poll() is None  # still finishing
        writer.write(body[100:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        deadline = time.monotonic() + 20
        while server.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.proc.returncode == 0, server.log.read_text("utf-8")[-3000:]
        assert not [p for p in pids if alive(p)]
    finally:
        server.kill()

    db = data / "lienthong.sqlite3"
    assert db_rows(db, "SELECT count(*), count(DISTINCT document_id) FROM documents") == [
        (total + 1, total + 1)
    ]
    assert db_rows(db, "SELECT count(*) FROM deliveries WHERE recipient = ?", (RECEIVER,)) == [
        (total + 1,)
    ]
    assert list((data / "spool").iterdir()) == []
