"""A 1 GB original through the axis on S3 (the local Ceph gateway), next to the minio client.

1. Start a throwaway Ceph RGW (tests/services/s3/start-rgw.sh, memstore) on 127.0.0.1.
2. Generate a ~1 GB edXML package (a random attachment streamed into base64; see
   large_attachment_bench.py).
3. Baseline: the minio client's own upload (``fput_object``, same part size as the axis) and
   streamed download with SHA-256 of the same file to the same gateway; and the server-side
   copy of that object to another key (what the axis pays to give an upload streamed under a
   temporary key its content address, storage/objects/s3_stream.py).
4. The real ``lienthong serve`` with ``storage.backend = "s3"``: POST the package (uploaded to
   S3 while it arrives), GET it back (hash compared with the receipt) and GET the decoded
   attachment; the server's peak RSS (VmHWM). Goals: peak RSS < 150 MB; axis MB/s >= 80 % of
   the minio client's.

The load average (/proc/loadavg) is printed before and after: on a shared machine the figures
move with it.

    .venv/bin/python bench/s3_bench.py [--size-mb 768]   # attachment MiB; package ~4/3 of it
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import large_attachment_bench
from axis_process import peak_rss_mb, start_axis
from fixtures_s3 import start_gateway, stop_gateway
from large_attachment_bench import generate_attachment, line, transfer, write_package
from minio import Minio
from minio.commonconfig import CopySource

GOAL_RSS_MB = 150
GOAL_RATIO = 0.80


BODY_TIMES: list[float] = []  # when the sender yielded its first and its last chunk


async def timed_chunks(path: Path) -> AsyncIterator[bytes]:
    """large_attachment_bench.file_chunks, noting when the body began and ended: what the
    server does after the last byte (parse, last part, copy, lock, rows) is the send's tail."""
    BODY_TIMES.clear()
    BODY_TIMES.append(time.perf_counter())
    async for chunk in _file_chunks(path):
        yield chunk
    BODY_TIMES.append(time.perf_counter())


_file_chunks = large_attachment_bench.file_chunks
large_attachment_bench.file_chunks = timed_chunks


def local_objects(root: Path) -> set[Path]:
    """Files in the axis's local objects directory (the demo's seeded traffic is there)."""
    return {p for p in (root / "axis" / "objects").rglob("*") if p.is_file()}


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def minio_baseline(
    client: Minio, bucket: str, package: Path, part_size: int, parallel: int
) -> tuple[float, float, float, str]:
    """Seconds to upload, to copy server-side and to download (hashing) the package with the
    minio client."""
    client.make_bucket(bucket, object_lock=True)  # as the axis makes its bucket
    started = time.perf_counter()
    client.fput_object(
        bucket,
        "baseline/package.edxml",
        str(package),
        part_size=part_size,
        num_parallel_uploads=parallel,
    )
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    client.copy_object(bucket, "baseline/copy.edxml", CopySource(bucket, "baseline/package.edxml"))
    copy_s = time.perf_counter() - started
    started = time.perf_counter()
    digest = hashlib.sha256()
    response = client.get_object(bucket, "baseline/package.edxml")
    try:
        for chunk in response.stream(1024 * 1024):
            digest.update(chunk)
    finally:
        response.close()
        response.release_conn()
    get_s = time.perf_counter() - started
    return put_s, copy_s, get_s, digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=768, help="attachment size in MiB")
    parser.add_argument("--part-size-mb", type=int, default=16, help="s3.part_size in MiB")
    parser.add_argument(
        "--parallel-parts", type=int, default=2, help="s3.parallel_parts (and minio's put)"
    )
    args = parser.parse_args()
    part_size = args.part_size_mb * 1024 * 1024
    size = args.size_mb * 1024 * 1024

    print(f"load average before: {loadavg()} (2 cores shared)")
    with tempfile.TemporaryDirectory(prefix="lt-s3b-") as tmp:
        root = Path(tmp)
        gateway = start_gateway(root / "rgw")
        try:
            attachment, package = root / "attachment.bin", root / "package.edxml"
            attachment_sha = generate_attachment(attachment, size)
            write_package(package, attachment)
            attachment.unlink()
            package_size = package.stat().st_size
            package_sha = hashlib.sha256(package.read_bytes()).hexdigest()
            print(f"package {package_size / 1e6:.1f} MB, gateway {gateway.endpoint}")

            client = Minio(
                gateway.endpoint.removeprefix("http://"),
                access_key=gateway.access_key,
                secret_key=gateway.secret_key,
                secure=False,
                region="us-east-1",
            )
            bucket = f"base-{uuid.uuid4().hex[:8]}"
            put_s, copy_s, get_s, got_sha = minio_baseline(
                client, bucket, package, part_size, args.parallel_parts
            )
            print(line("minio put", package_size, put_s))
            print(line("minio copy", package_size, copy_s, "in bucket"))
            print(line("minio get", package_size, get_s, "sha256"))

            env = {
                "LIENTHONG_SERVER_MAX_BODY_BYTES": str(package_size + (1 << 20)),
                "LIENTHONG_STORAGE_BACKEND": "s3",
                "LIENTHONG_S3_ENDPOINT": gateway.endpoint,
                "LIENTHONG_S3_BUCKET": f"axis-{uuid.uuid4().hex[:8]}",
                "LIENTHONG_S3_SECURE": "false",
                "LIENTHONG_S3_RETENTION_YEARS": "1",
                "LIENTHONG_S3_PART_SIZE": str(part_size),
                "LIENTHONG_S3_PARALLEL_PARTS": str(args.parallel_parts),
                "LIENTHONG_S3_ACCESS_KEY": gateway.access_key,
                "LIENTHONG_S3_SECRET_KEY": gateway.secret_key,
            }
            axis = start_axis(root / "axis", env=env)
            try:
                rss_idle = peak_rss_mb(axis.pid)
                seeded = local_objects(root)
                result = asyncio.run(
                    transfer(axis.url, axis.tokens, package, package_size, axis.pid)
                )
                peak = peak_rss_mb(axis.pid)
                local = local_objects(root) - seeded
            finally:
                axis.stop()
        finally:
            stop_gateway(gateway)

    print(line("axis send", package_size, result.send_s))
    body_s = BODY_TIMES[-1] - BODY_TIMES[0]
    print(f"  of which the body {body_s:.1f} s, after its last byte {result.send_s - body_s:.1f} s")
    print(line("axis fetch", result.fetch_size, result.fetch_s))
    print(line("axis att.", result.attachment_size, result.attachment_s, "decoded"))
    send_ratio = put_s / result.send_s
    fetch_ratio = get_s / result.fetch_s
    print(f"axis send  / minio put: {send_ratio * 100:5.1f} %  (goal >= {GOAL_RATIO * 100:.0f} %)")
    print(f"axis fetch / minio get: {fetch_ratio * 100:5.1f} %  (goal >= {GOAL_RATIO * 100:.0f} %)")
    checks = {
        "minio get": got_sha == package_sha,
        "axis fetch": result.fetch_sha == result.receipt["sha256"],
        "attachment": result.attachment_sha == attachment_sha,
        # the package went to S3, not to the local objects directory
        "nothing stored locally": not local,
    }
    ok_bytes = all(checks.values())
    if local:
        print("stored locally:", [p.name for p in local[:5]])
    print(f"bytes identical, nothing stored locally: {ok_bytes} {checks}")
    print(
        f"server peak RSS (VmHWM): {peak:.1f} MB (idle {rss_idle:.1f} MB, after send "
        f"{result.rss_after_send:.1f} MB); goal < {GOAL_RSS_MB} MB"
    )
    print(f"load average after: {loadavg()}")
    met = ok_bytes and peak < GOAL_RSS_MB and min(send_ratio, fetch_ratio) >= GOAL_RATIO
    print("GOALS MET" if met else "GOALS NOT ALL MET")
    return 0 if ok_bytes else 1


if __name__ == "__main__":
    sys.exit(main())
