"""Small packages accepted per second by the axis, next to a bare aiohttp baseline (issue 4).

Both servers run as subprocesses on 127.0.0.1 on the same machine, one after the other, under
the same load: ``--concurrency`` senders (default 100, one aiohttp client session) POSTing
small edXML packages (a unique DocumentId each, about 4 KB) for ``--seconds`` (or until
``--requests``).

- *axis*: the real ``lienthong serve`` on a temporary data directory (demo agencies,
  000.00.00.G22 sending to 000.00.00.H41): spool + hash, parse, validate, object store with
  fsync, one SQLite transaction with ``synchronous=FULL``.
- *baseline*: a bare aiohttp handler that reads the body, writes it to a new file and fsyncs it
  (in a worker thread, as a sensible aiohttp app would; fsync on the event loop would serialise
  the requests and flatter the axis).

Prints packages/s, p50 and p99 latency of each and the ratio. Goal: axis >= 50 % of the
baseline, p99 < 50 ms. Afterwards the axis's database is checked to hold exactly the accepted
packages.

    .venv/bin/python bench/api_send_bench.py [--seconds 10] [--concurrency 100] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import RunningServer, free_port, start_axis, wait_healthy

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

PLACEHOLDER = "@@DOCUMENT-ID@@"


def package_template() -> bytes:
    """A small valid package G22 -> H41 whose DocumentId is :data:`PLACEHOLDER`."""
    body = ("Nội dung văn bản thử tải. " * 40).encode()
    envelope = Envelope(
        header=MessageHeader(
            from_=Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
            to=(Organization("000.00.00.H41", organ_name="UBND tỉnh Nghệ An"),),
            document_id=PLACEHOLDER,
            subject="Thử tải trục liên thông",
            code=Code("1", "VPCP-TT"),
            promulgation_info=PromulgationInfo(place="Hà Nội", date=date(2025, 1, 15)),
        ),
        manifest=(ManifestReference("a1", "text/plain", "Nội dung", "noi-dung.txt"),),
        attachments=(Attachment("a1", "noi-dung.txt", "Nội dung", "text/plain", data=body),),
    )
    return edxml.serialize(envelope)


# --- the baseline server ----------------------------------------------------------------


def serve_baseline(port: int, directory: Path) -> None:
    """Run the bare aiohttp server: read the body, write + fsync a new file, answer 201."""

    def store(data: bytes) -> str:
        name = uuid.uuid4().hex
        with (directory / name).open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return name

    async def accept(request: web.Request) -> web.Response:
        data = await request.read()
        name = await asyncio.to_thread(store, data)
        return web.json_response({"id": name, "size": len(data)}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/api/v1/documents", accept)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_baseline(directory: Path) -> RunningServer:
    port = free_port()
    log = directory / "baseline.log"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-baseline", str(port), str(directory)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    return RunningServer(url, process, directory, {})


# --- the load ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one load run measured."""

    name: str
    accepted: int
    failed: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:9s} {self.rate:8.1f} packages/s   p50 {self.percentile(50):6.1f} ms   "
            f"p99 {self.percentile(99):6.1f} ms   ({self.accepted} accepted, {self.failed} "
            f"failed, {self.seconds:.1f} s)"
        )


async def load(
    name: str,
    url: str,
    token: str | None,
    template: bytes,
    *,
    seconds: float,
    requests: int | None,
    concurrency: int,
    warmup: float = 1.0,
) -> LoadResult:
    """``concurrency`` senders POST unique packages until the time or request budget is spent.

    The first ``warmup`` seconds are sent but not counted (connections, caches, JIT of paths).
    """
    run = uuid.uuid4().hex[:8]
    counter = 0
    latencies: list[float] = []
    accepted = failed = 0
    headers = {"Content-Type": "application/xml"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    measuring = False
    stop_at = 0.0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal counter, accepted, failed
        while True:
            now = time.perf_counter()
            if measuring and (now >= stop_at or (requests is not None and counter >= requests)):
                return
            counter += 1
            body = template.replace(PLACEHOLDER.encode(), f"{run}-{counter:09d}".encode())
            counted = measuring
            started = time.perf_counter()
            async with session.post(url + "/api/v1/documents", data=body, headers=headers) as r:
                await r.read()
                ok = r.status == 201
            if counted:
                latencies.append((time.perf_counter() - started) * 1000)
                if ok:
                    accepted += 1
                else:
                    failed += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        warm = [asyncio.create_task(sender(session)) for _ in range(concurrency)]
        await asyncio.sleep(warmup)
        counter_at_start = counter
        measuring = True
        begun = time.perf_counter()
        stop_at = begun + seconds
        if requests is not None:
            requests += counter_at_start
        await asyncio.gather(*warm)
        elapsed = time.perf_counter() - begun
    return LoadResult(name, accepted, failed, elapsed, latencies)


def stored_documents(data: Path) -> int:
    with sqlite3.connect(data / "lienthong.sqlite3") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per server")
    parser.add_argument("--requests", type=int, help="stop after this many requests instead")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        help="axis server processes (serve --workers N); several values: one axis run each",
    )
    parser.add_argument(
        "--serve-baseline", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(int(args.serve_baseline[0]), Path(args.serve_baseline[1]))
        return 0

    template = package_template()
    print(
        f"{args.concurrency} concurrent senders, packages of {len(template)} bytes, "
        f"{args.seconds:.0f} s per server, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="lienthong-bench-") as tmp:
        base_dir = Path(tmp) / "baseline"
        base_dir.mkdir()
        baseline = start_baseline(base_dir)
        try:
            base = asyncio.run(
                load("baseline", baseline.url, None, template, seconds=args.seconds,
                     requests=args.requests, concurrency=args.concurrency)
            )  # fmt: skip
        finally:
            baseline.stop()
        print(base.line())

        results = []
        for workers in args.workers:
            axis = start_axis(Path(tmp) / f"axis-{workers}", workers=workers)
            try:
                before = stored_documents(axis.data)
                result = asyncio.run(
                    load(f"axis x{workers}", axis.url, axis.tokens["TOKEN_G22"], template,
                         seconds=args.seconds, requests=args.requests,
                         concurrency=args.concurrency)
                )  # fmt: skip
            finally:
                axis.stop()
            print(result.line())
            stored = stored_documents(axis.data) - before
            # Warm-up sends are stored too; every measured 201 must be in the database.
            if stored < result.accepted:
                print(f"ERROR: {result.accepted} accepted but only {stored} stored")
                return 1
            results.append((workers, result))

    for workers, result in results:
        ratio = result.rate / base.rate if base.rate else float("nan")
        p99 = result.percentile(99)
        median = statistics.median(result.latencies_ms) if result.latencies_ms else float("nan")
        goal = ratio >= 0.5 and p99 < 50
        print(
            f"workers {workers}: axis/baseline {ratio * 100:.0f} % (goal >= 50 %), "
            f"p99 {p99:.1f} ms (goal < 50 ms), median {median:.1f} ms: "
            + ("GOAL MET" if goal else "GOAL NOT MET")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
