"""SIGKILL ``lienthong serve`` on S3 while a large package is being uploaded as it arrives.

The killed process leaves an unfinished multipart upload under ``incoming/`` (and a crash between
completing an upload and naming it would leave a temporary object there, planted here as such a
crash would leave it): the start-up sweep of the next process removes both, and the axis then
stores a send normally. Real Ceph gateway, real server process.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from fault_server import ServerProcess, db_rows, seed
from fixtures_s3 import S3Endpoint, raw_client
from minio import Minio

import edxml
from edxml import Attachment, Envelope, ManifestReference, MessageHeader, Organization

SENDER, RECIPIENT = "000.00.00.G22", "000.00.00.H41"
PART = 5 * 1024 * 1024
PATIENCE = 120.0


def package(n: int, size: int) -> bytes:
    att = Attachment("att0", name="lon.bin", content_type="application/pdf", data=os.urandom(size))
    return edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(SENDER, organ_name=SENDER),
                to=(Organization(RECIPIENT, organ_name=RECIPIENT),),
                document_id=f"{SENDER},2024/05/01,{n}/S3KILL",
                subject=f"Văn bản lớn số {n}",
            ),
            manifest=(ManifestReference("cid:att0", att.content_type, None, att.name),),
            attachments=(att,),
        )
    )


def uploads_under(client: Minio, bucket: str, prefix: str) -> list[str]:
    found = client._list_multipart_uploads(bucket, prefix=prefix).uploads
    return [str(u.upload_id) for u in found]


def objects_under(client: Minio, bucket: str, prefix: str) -> list[str]:
    found = client.list_objects(bucket, prefix=prefix, include_version=True)
    return [str(o.object_name) for o in found]


async def test_sigkill_mid_upload_is_swept_at_restart(
    tmp_path: Path, s3_server: S3Endpoint
) -> None:
    data = tmp_path / "data"
    tokens = await seed(data, [SENDER, RECIPIENT])
    bucket = f"lt-{uuid.uuid4().hex[:12]}"
    server = ServerProcess(
        data,
        env={
            "LIENTHONG_STORAGE_BACKEND": "s3",
            "LIENTHONG_S3_ENDPOINT": s3_server.endpoint,
            "LIENTHONG_S3_BUCKET": bucket,
            "LIENTHONG_S3_SECURE": "false",
            "LIENTHONG_S3_RETENTION_YEARS": "1",
            "LIENTHONG_S3_PART_SIZE": str(PART),
            "LIENTHONG_S3_ACCESS_KEY": s3_server.access_key,
            "LIENTHONG_S3_SECRET_KEY": s3_server.secret_key,
            "LIENTHONG_SERVER_MAX_BODY_BYTES": str(40 * 1024 * 1024),
            "LIENTHONG_DELIVERY_ORPHAN_GRACE": "0",
        },
    )
    client = raw_client(s3_server)
    incoming = "objects/incoming/"
    await server.restart()
    try:
        body = package(1, 12 * 1024 * 1024)
        killed = asyncio.Event()

        async def chunks() -> AsyncIterator[bytes]:
            step = 1024 * 1024
            for start in range(0, len(body), step):
                if start >= 2 * PART + step and not killed.is_set():
                    # Two parts are on the server's disk: wait for one in S3, then kill.
                    loop = asyncio.get_running_loop()
                    deadline = loop.time() + PATIENCE
                    while not await asyncio.to_thread(uploads_under, client, bucket, incoming):
                        assert loop.time() < deadline, "no upload began while the body arrived"
                        await asyncio.sleep(0.05)
                    server.kill()
                    killed.set()
                yield body[start : start + step]

        headers = {
            "Authorization": f"Bearer {tokens[SENDER]}",
            "Content-Type": "application/xml",
        }
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(
                    f"{server.url}/api/v1/documents", data=chunks(), headers=headers
                ) as resp:
                    status = resp.status
            except aiohttp.ClientError:
                status = None
        assert killed.is_set() and status is None
        # What the dead process left: its unfinished upload. Plant what a crash between
        # completing an upload and naming it would leave: a temporary object.
        assert len(uploads_under(client, bucket, incoming)) == 1
        client.put_object(bucket, f"{incoming}{uuid.uuid4().hex}", io.BytesIO(b"x" * 10), 10)
        assert len(objects_under(client, bucket, incoming)) == 1

        await server.restart()  # the start-up sweep (orphan_grace 0)
        assert uploads_under(client, bucket, incoming) == []
        assert objects_under(client, bucket, incoming) == []
        assert db_rows(data / "lienthong.sqlite3", "SELECT count(*) FROM documents") == [(0,)]

        # The axis works on: a large send is stored whole under its content address.
        again = package(2, 12 * 1024 * 1024)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.url}/api/v1/documents", data=again, headers=headers) as resp,
        ):
            assert resp.status == 201, await resp.text()
            receipt = await resp.json()
        digest = receipt["sha256"]
        stat = client.stat_object(bucket, f"objects/{digest[:2]}/{digest[2:4]}/{digest}")
        assert stat.size == receipt["size"]
        assert uploads_under(client, bucket, incoming) == []
        assert objects_under(client, bucket, incoming) == []
    finally:
        server.stop()
