"""A large package is uploaded to S3 while its body arrives (storage/objects/s3_stream.py).

Against the real Ceph gateway, 5 MiB parts: every test holds the body back once two parts of it
were sent, until the bucket shows the upload begun under ``incoming/`` (so each proves the
overlap happened), then lets it end; afterwards nothing may be left under ``incoming/``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document, sha256
from fixtures_s3 import S3Endpoint
from minio import Minio
from s3_axis import raw_client, s3_config

import edxml
from server.runtime.config import Config
from server.runtime.objectstore import s3_settings
from storage.objects.s3 import parse_s3_time

PART = 5 * 1024 * 1024
HOLD_AFTER = 2 * PART + 1024 * 1024  # two whole parts on disk, and some
PATIENCE = 120.0  # seconds a bounded wait for the gateway may take on a loaded machine


@pytest.fixture
def axis_config(s3_server: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    return s3_config(
        s3_server,
        tmp_path / "data",
        LIENTHONG_SERVER_MAX_BODY_BYTES=str(40 * 1024 * 1024),
        LIENTHONG_S3_PART_SIZE=str(PART),
    )


def large_package(seed: int, document_id: str | None = None) -> tuple[bytes, bytes]:
    """A package with a 12 MiB attachment (about 16 MB of edXML: 3 parts and a tail)."""
    pdf = b"%PDF-1.7\n" + os.urandom(12 * 1024 * 1024) + seed.to_bytes(4, "big")
    envelope = document(
        VPCP, [NGHE_AN], document_id=document_id, attachments=[("lon.pdf", "application/pdf", pdf)]
    )
    return edxml.serialize(envelope), pdf


def incoming(client: Minio, bucket: str, prefix: str) -> tuple[list[str], list[str]]:
    """The multipart uploads and the object versions left under ``<prefix>incoming/``."""
    under = f"{prefix}incoming/"
    uploads = client._list_multipart_uploads(bucket, prefix=under).uploads
    found = client.list_objects(bucket, prefix=under, include_version=True)
    return [str(u.upload_id) for u in uploads], [str(o.object_name) for o in found]


def parts_uploaded(client: Minio, bucket: str, prefix: str) -> int:
    """How many parts the uploads under ``incoming/`` hold (0: no upload begun)."""
    uploads = client._list_multipart_uploads(bucket, prefix=f"{prefix}incoming/").uploads
    return sum(
        len(client._list_parts(bucket, u.object_name, str(u.upload_id)).parts) for u in uploads
    )


async def wait_for(check: object, what: str) -> None:
    """Poll the gateway (in a thread) until ``check()`` is true; fail after PATIENCE."""
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not await asyncio.to_thread(check):
        assert loop.time() < deadline, f"the gateway never showed {what}"
        await asyncio.sleep(0.05)


class HeldBody:
    """The body in 1 MiB chunks, held back after HOLD_AFTER bytes until a part is in S3."""

    def __init__(self, body: bytes, client: Minio, bucket: str, prefix: str) -> None:
        self.body, self.client, self.bucket, self.prefix = body, client, bucket, prefix
        self.overlapped = False

    async def chunks(self, upto: int | None = None) -> AsyncIterator[bytes]:
        end = len(self.body) if upto is None else upto
        step = 1024 * 1024
        for start in range(0, end, step):
            if start >= HOLD_AFTER and not self.overlapped:
                await wait_for(
                    lambda: parts_uploaded(self.client, self.bucket, self.prefix) > 0,
                    "a part uploaded before the body ended",
                )
                self.overlapped = True
            yield self.body[start : min(start + step, end)]


def settings_of(axis: Axis) -> tuple[str, str]:
    settings = s3_settings(axis.config)
    return settings.bucket, settings.prefix


async def send_held(axis: Axis, held: HeldBody) -> tuple[int, dict[str, object]]:
    resp = await axis.client.post(
        "/api/v1/documents",
        data=held.chunks(),
        headers=axis.auth(VPCP, **{"Content-Type": "application/xml"}),
    )
    return resp.status, dict(await resp.json())


async def test_large_package_streams_to_s3_and_reads_back_identical(
    axis: Axis, s3_server: S3Endpoint
) -> None:
    client = raw_client(s3_server)
    bucket, prefix = settings_of(axis)
    body, pdf = large_package(1)
    held = HeldBody(body, client, bucket, prefix)
    status, receipt = await send_held(axis, held)
    assert status == 201, receipt
    assert held.overlapped

    resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)
    assert resp.status == 200
    stored = await resp.read()
    assert sha256(stored) == receipt["sha256"]
    assert len(stored) == receipt["size"]
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/0", NGHE_AN)
    assert resp.status == 200
    assert await resp.read() == pdf

    # Its content address holds it, locked; the temporary upload is gone.
    digest = str(receipt["sha256"])
    stat = client.stat_object(bucket, f"{prefix}{digest[:2]}/{digest[2:4]}/{digest}")
    assert stat.size == receipt["size"]
    meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
    assert meta["x-amz-meta-sha256"] == digest
    assert meta["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert parse_s3_time(str(meta["x-amz-object-lock-retain-until-date"])).year >= 2026
    assert incoming(client, bucket, prefix) == ([], [])

    # The same bytes again: the first receipt, and the second upload dropped.
    again = HeldBody(body, client, bucket, prefix)
    status, second = await send_held(axis, again)
    assert status == 200, second
    assert second["duplicate"] is True and second["id"] == receipt["id"]
    assert again.overlapped
    assert incoming(client, bucket, prefix) == ([], [])

    # Other bytes under the same DocumentId: refused, nothing left.
    envelope = edxml.parse(body)
    assert isinstance(envelope, edxml.Envelope)
    other, _ = large_package(2, document_id=envelope.header.document_id)
    status, problem = await send_held(axis, HeldBody(other, client, bucket, prefix))
    assert status == 409, problem
    assert incoming(client, bucket, prefix) == ([], [])
    assert (await axis.snapshot())["rows"]["documents"] == 1


def bad_at_the_end(body: bytes) -> bytes:
    return body[: -len(b"</edXMLEnvelope>") - 1] + b"<oops>"


def bad_early(body: bytes) -> bytes:
    # Inside the attachment's base64, past the 8 MiB at which the parse starts following the
    # body: the parse fails while the body still arrives (server/exchange/early_parse.py).
    at = 9 * 1024 * 1024
    return body[:at] + b"<" + body[at + 1 :]


@pytest.mark.parametrize("breaking", [bad_at_the_end, bad_early])
async def test_refused_package_leaves_no_upload(
    axis: Axis, s3_server: S3Endpoint, breaking: Callable[[bytes], bytes]
) -> None:
    client = raw_client(s3_server)
    bucket, prefix = settings_of(axis)
    body, _ = large_package(3)
    broken = breaking(body)
    held = HeldBody(broken, client, bucket, prefix)
    status, problem = await send_held(axis, held)
    assert status == 400, problem
    assert held.overlapped
    assert incoming(client, bucket, prefix) == ([], [])
    objects = list(client.list_objects(bucket, prefix=prefix, recursive=True))
    assert objects == []
    snapshot = await axis.snapshot()
    assert snapshot["rows"]["documents"] == 0
    assert snapshot["spool"] == []


async def test_cut_body_leaves_no_upload(axis: Axis, s3_server: S3Endpoint) -> None:
    client = raw_client(s3_server)
    bucket, prefix = settings_of(axis)
    body, _ = large_package(4)
    held = HeldBody(body, client, bucket, prefix)
    server = axis.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        "POST /api/v1/documents HTTP/1.1\r\n"
        f"Host: {server.host}\r\n"
        f"Authorization: Bearer {axis.tokens[VPCP]}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode())
    async for chunk in held.chunks(upto=HOLD_AFTER + 2 * 1024 * 1024):
        writer.write(chunk)
        await writer.drain()
    assert held.overlapped
    writer.close()  # the sender goes away with most of the body unsent
    await writer.wait_closed()
    reader.feed_eof()
    await wait_for(lambda: incoming(client, bucket, prefix) == ([], []), "the upload aborted")
    assert list(client.list_objects(bucket, prefix=prefix, recursive=True)) == []
    assert (await axis.snapshot())["rows"]["documents"] == 0
