"""The ``vdxp`` fixture: VDXP credentials and a client for each seeded agency of ``axis``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from axis_client import NGHE_AN, OUTSIDER, SO_TTTT, VPCP, Axis

from server.http.appkeys import DATABASE
from server.vdxp.client import VdxpClient
from server.vdxp.credentials import create_credentials, load_key
from server.vdxp.protocol import VN_TZ


@dataclass
class Vdxp:
    """One VDXP client per seeded agency, plus the secrets (to build odd requests by hand)."""

    axis: Axis
    endpoint: str
    clients: dict[str, VdxpClient]
    secrets: dict[str, str]
    extra: list[VdxpClient] = field(default_factory=list)
    _made: int = 0

    def system_id(self, organ_id: str) -> str:
        return "sys-" + organ_id.replace(".", "")

    def __getitem__(self, organ_id: str) -> VdxpClient:
        return self.clients[organ_id]

    def fresh(self, organ_id: str) -> VdxpClient:
        """A new client object of ``organ_id`` with a timestamp no other client has: its
        signed requests differ from the earlier ones (a registerAgency or deleteAgency
        repeated with the same signature is refused as a replay, server/vdxp/replay.py)."""
        self._made += 1
        moment = datetime.now(VN_TZ) - timedelta(seconds=self._made)
        client = VdxpClient(
            self.endpoint, self.system_id(organ_id), self.secrets[organ_id], timestamp=moment
        )
        self.extra.append(client)
        return client


@pytest.fixture(name="vdxp")
async def vdxp_fixture(axis: Axis) -> AsyncIterator[Vdxp]:
    key = load_key(axis.config.storage.data_dir, env={}, create=True)
    db = axis.client.app[DATABASE]
    endpoint = str(axis.client.make_url("/vdxp"))
    result = Vdxp(axis, endpoint, {}, {})
    for organ_id in (VPCP, NGHE_AN, SO_TTTT, OUTSIDER):
        system_id = result.system_id(organ_id)
        secret = await create_credentials(db, organ_id, system_id, key)
        result.secrets[organ_id] = secret
        result.clients[organ_id] = VdxpClient(endpoint, system_id, secret)
    yield result
    for client in [*result.clients.values(), *result.extra]:
        await client.close()


async def raw_request(
    axis: Axis, head: bytes, body: bytes = b"", *, read_timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (for headers an HTTP client would refuse) and read the answer."""
    server = axis.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await read_response(reader, read_timeout)
    finally:
        writer.close()


async def read_response(
    reader: asyncio.StreamReader, read_timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length (what the axis sends for VDXP answers)."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), read_timeout)
    return status, headers, body


def http_head(
    operation: str, headers: Mapping[str, str | bytes], *, method: str = "POST", length: int = 0
) -> bytes:
    """The request line and headers; bytes values go on the wire untouched."""
    out = [f"{method} /vdxp/{operation} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    for name, value in headers.items():
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        out.append(name.encode("ascii") + b": " + raw)
    out.append(f"Content-Length: {length}".encode())
    out.append(b"Connection: close")
    return b"\r\n".join(out) + b"\r\n\r\n"
