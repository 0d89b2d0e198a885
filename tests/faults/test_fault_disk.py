"""A full disk: the data directory on a small tmpfs. Sends get 503 with Retry-After, nothing
stored is corrupted, and once space is freed sends succeed again without a restart."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest
from fault_server import ServerProcess, seed, stored_objects

import edxml
from edxml import Attachment, Envelope, ManifestReference, MessageHeader, Organization

SENDER, RECEIVER = "000.00.00.G22", "000.00.00.H41"


def big_package(n: int, size: int) -> bytes:
    attachment = Attachment("a0", name="scan.bin", content_type="application/octet-stream",
                            data=os.urandom(size))  # fmt: skip
    return edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(SENDER, organ_name="VPCP"),
                to=(Organization(RECEIVER, organ_name="Nghệ An"),),
                document_id=f"{SENDER},2024/05/01,{n}/DISK",
                subject=f"Văn bản {n}",
            ),
            manifest=(ManifestReference("cid:a0", "application/octet-stream", None, "scan.bin"),),
            attachments=(attachment,),
        )
    )


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_full_disk_answers_503_and_recovers_without_restart(small_disk: Path) -> None:
    data = small_disk / "data"
    tokens = await seed(data, [SENDER, RECEIVER])
    server = ServerProcess(data)
    server.log = small_disk.parent / "server.log"  # off the full disk
    await server.restart()
    headers = {"Authorization": f"Bearer {tokens[SENDER]}", "Content-Type": "application/xml"}
    accepted: dict[int, str] = {}
    refused = 0
    try:
        async with aiohttp.ClientSession() as session:

            async def send(n: int) -> tuple[int, dict[str, object], str | None]:
                async with session.post(
                    f"{server.url}/api/v1/documents", data=big_package(n, 600_000), headers=headers
                ) as resp:
                    return (
                        resp.status,
                        await resp.json(content_type=None),
                        resp.headers.get("Retry-After"),
                    )

            n = 0
            while refused < 3 and n < 60:
                status, body, retry_after = await send(n)
                if status == 201:
                    accepted[n] = str(body["id"])
                else:
                    assert status == 503, body
                    assert body["type"] == "/problems/storage-full"
                    assert retry_after is not None and int(retry_after) > 0
                    refused += 1
                n += 1
            assert refused == 3 and accepted, (refused, len(accepted))
            # The operator adds space (the tmpfs grows); the same server process carries on.
            subprocess.run(
                ["mount", "-o", "remount,size=40m", str(small_disk)],
                check=True,
            )
            status, body, _ = await send(1000)
            assert status == 201, body
            accepted[1000] = str(body["id"])
            async with session.get(
                f"{server.url}/api/v1/inbox?limit=500",
                headers={"Authorization": f"Bearer {tokens[RECEIVER]}"},
            ) as resp:
                inbox = await resp.json()
            assert sorted(i["document_id"] for i in inbox["items"]) == sorted(accepted.values())
    finally:
        server.stop()
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        assert list(conn.execute("PRAGMA integrity_check")) == [("ok",)]
        rows = list(conn.execute("SELECT sha256 FROM documents"))
    finally:
        conn.close()
    objects = stored_objects(data)
    assert {r[0] for r in rows} <= set(objects)
    assert all(name == digest for name, digest in objects.items())
    print(f"\ndisk: {len(accepted)} accepted, {refused} refused with 503 while full")
