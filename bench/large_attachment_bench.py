"""A 1 GB attachment through the real axis and back, byte for byte, with the server's peak RSS.

1. Generate the attachment on disk in chunks (hashing it as it is written), then the edXML
   package around it with ``edxml.write`` (the attachment streams through the base64 encoder;
   neither file is ever in memory).
2. Start the real ``lienthong serve`` (subprocess, temporary data directory, demo agencies, body
   limit raised above the package size).
3. POST the package (streamed from the file), GET it back (hash compared with the receipt's
   sha256) and GET the decoded attachment (hash compared with the generated file's).
4. Report MB/s of each step and the server's peak RSS (``VmHWM`` of /proc/<pid>/status).
   Goal: peak RSS < 150 MB.

    .venv/bin/python bench/large_attachment_bench.py [--size-mb 1024] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import peak_rss_mb, start_axis

import edxml
from edxml import (
    Attachment,
    Code,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    PromulgationInfo,
)

CHUNK = 4 * 1024 * 1024
GOAL_RSS_MB = 150


def generate_attachment(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes to ``path``; return their sha256 hex."""
    digest = hashlib.sha256()
    rng = random.Random(20250115)  # test data, not secrets
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = rng.randbytes(min(CHUNK, left))
            fh.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: path.open("rb")


def write_package(package: Path, attachment: Path) -> None:
    """The edXML package G22 -> H41 carrying ``attachment`` (streamed into base64)."""
    name = "Hồ sơ lưu trữ.bin"
    envelope = Envelope(
        header=MessageHeader(
            from_=Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
            to=(Organization("000.00.00.H41", organ_name="UBND tỉnh Nghệ An"),),
            document_id=f"000.00.00.G22,2025/01/15,{os.getpid()}/VPCP-LT",
            subject="Hồ sơ điện tử dung lượng lớn",
            code=Code(str(os.getpid()), "VPCP-LT"),
            promulgation_info=PromulgationInfo(place="Hà Nội", date=date(2025, 1, 15)),
        ),
        manifest=(ManifestReference("big", "application/octet-stream", "Hồ sơ", name),),
        attachments=(
            Attachment(
                "big",
                name,
                "Hồ sơ",
                "application/octet-stream",
                size=attachment.stat().st_size,
                opener=opener(attachment),
            ),
        ),
    )
    with package.open("wb") as fh:
        edxml.write(envelope, fh)


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """The file in chunks, read in a worker thread so the event loop keeps moving."""
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            yield chunk
    finally:
        fh.close()


async def download(session: aiohttp.ClientSession, url: str, token: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(url, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET {url}: {resp.status} {await resp.text()}")
        async for chunk in resp.content.iter_chunked(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def mbps(size: int, seconds: float) -> str:
    return f"{size / 1e6 / seconds:7.1f} MB/s ({seconds:5.1f} s)"


@dataclass
class Transfer:
    """What the three HTTP steps measured."""

    receipt: dict[str, Any]
    send_s: float
    rss_after_send: float
    fetch_size: int
    fetch_sha: str
    fetch_s: float
    attachment_size: int
    attachment_sha: str
    attachment_s: float


async def transfer(
    url: str, tokens: dict[str, str], package: Path, size: int, pid: int
) -> Transfer:
    """Send the package as G22, fetch it and its attachment back as H41."""
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        async with session.post(
            url + "/api/v1/documents",
            data=file_chunks(package),
            headers={
                "Authorization": f"Bearer {tokens['TOKEN_G22']}",
                "Content-Type": "application/xml",
                "Content-Length": str(size),
            },
        ) as resp:
            receipt = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"send refused: {resp.status} {receipt}")
        send_s = time.perf_counter() - started
        rss_after_send = peak_rss_mb(pid)
        doc = receipt["id"]

        started = time.perf_counter()
        fetch_size, fetch_sha = await download(
            session, f"{url}/api/v1/documents/{doc}", tokens["TOKEN_H41"]
        )
        fetch_s = time.perf_counter() - started

        started = time.perf_counter()
        att_size, att_sha = await download(
            session, f"{url}/api/v1/documents/{doc}/attachments/0", tokens["TOKEN_H41"]
        )
        attachment_s = time.perf_counter() - started
    return Transfer(
        receipt, send_s, rss_after_send, fetch_size, fetch_sha, fetch_s, att_size, att_sha,
        attachment_s,
    )  # fmt: skip


def line(step: str, size: int, seconds: float, what: str = "") -> str:
    return f"{step:11s} {size / 1e6:9.1f} MB {what:10s} {mbps(size, seconds)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="attachment size in MiB")
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024

    with tempfile.TemporaryDirectory(prefix="lienthong-large-") as tmp:
        root = Path(tmp)
        attachment, package = root / "attachment.bin", root / "package.edxml"
        started = time.perf_counter()
        attachment_sha = generate_attachment(attachment, size)
        print(line("attachment", size, time.perf_counter() - started, "generated"))
        started = time.perf_counter()
        write_package(package, attachment)
        package_size = package.stat().st_size
        print(line("package", package_size, time.perf_counter() - started, "written"))
        attachment.unlink()  # only its hash is needed from here on; keep the disk use down

        limit = str(package_size + (1 << 20))
        axis = start_axis(root / "axis", env={"LIENTHONG_SERVER_MAX_BODY_BYTES": limit})
        try:
            rss_idle = peak_rss_mb(axis.pid)
            result = asyncio.run(transfer(axis.url, axis.tokens, package, package_size, axis.pid))
            peak = peak_rss_mb(axis.pid)
        finally:
            axis.stop()

    print(line("send", package_size, result.send_s))
    print(line("fetch", result.fetch_size, result.fetch_s))
    print(line("attachment", result.attachment_size, result.attachment_s, "decoded"))
    package_ok = result.fetch_sha == result.receipt[
        "sha256"
    ] and result.fetch_size == result.receipt.get("size", result.fetch_size)
    attachment_ok = result.attachment_sha == attachment_sha and result.attachment_size == size
    print(f"package fetched == stored (sha256 {result.fetch_sha[:16]}…): {package_ok}")
    print(
        f"attachment fetched == generated (sha256 {result.attachment_sha[:16]}…): {attachment_ok}"
    )
    print(
        f"server peak RSS (VmHWM): {peak:.1f} MB (idle {rss_idle:.1f} MB, after send "
        f"{result.rss_after_send:.1f} MB); goal < {GOAL_RSS_MB} MB"
    )
    ok = package_ok and attachment_ok and peak < GOAL_RSS_MB
    print("GOAL MET" if ok else "GOAL NOT MET")
    return 0 if package_ok and attachment_ok else 1


if __name__ == "__main__":
    sys.exit(main())
