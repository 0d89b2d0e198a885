"""SIGTERM: the request being uploaded finishes (201, stored), new connections are refused,
then the server exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path

from fault_server import ServerProcess, seed

import edxml
from edxml import Envelope, MessageHeader, Organization

SENDER, RECEIVER = "000.00.00.G22", "000.00.00.H41"


async def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = await seed(data, [SENDER, RECEIVER])
    server = ServerProcess(data)
    await server.restart()
    body = edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(SENDER, organ_name="VPCP"),
                to=(Organization(RECEIVER, organ_name="Nghệ An"),),
                document_id=f"{SENDER},2024/05/01,1/TERM",
                subject="Văn bản gửi trong lúc dừng máy chủ",
            )
        )
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        head = (
            f"POST /api/v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {tokens[SENDER]}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + body[:100])
        await writer.drain()
        await asyncio.sleep(0.3)  # the handler is now streaming the body
        server.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        # The listening socket is closed: a new client cannot start a request.
        refused = False
        try:
            _, probe = await asyncio.open_connection("127.0.0.1", server.port)
            probe.close()
        except OSError:
            refused = True
        assert refused
        assert server.proc is not None and server.proc.poll() is None  # still finishing
        writer.write(body[100:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        deadline = time.monotonic() + 15
        while server.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.proc.returncode == 0
    finally:
        server.kill()
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        rows = list(
            conn.execute("SELECT count(*) FROM deliveries WHERE recipient = ?", (RECEIVER,))
        )
    finally:
        conn.close()
    assert rows == [(1,)]
