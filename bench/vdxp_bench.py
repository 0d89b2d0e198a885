"""Round trips per second through /vdxp next to the same through /api/v1 (issue 5).

One ``lienthong serve`` subprocess on 127.0.0.1 (demo agencies, real SQLite + files); the
sender 000.00.00.G22 and recipient 000.00.00.H41 get VDXP credentials through the CLI. A round
trip is: the sender sends a small package (a unique DocumentId, about 2 KB) and the recipient
fetches it back and checks its length:

- *vdxp*: ``sendEdoc`` + ``getEdoc`` through :class:`server.vdxp.client.VdxpClient` (signed
  headers, CRLF body, base64 answer: what the Java SDK does);
- *api*: ``POST /api/v1/documents`` + ``GET /api/v1/documents/{id}`` with bearer tokens.

``--concurrency`` workers per protocol run for ``--seconds``; the two protocols alternate in
``--rounds`` rounds (api, vdxp, api, vdxp...) so that drift (WAL growth, page cache) hits both.
Prints round trips/s and p50/p99 per protocol and the ratio vdxp/api. Goal: within 20 %.

    .venv/bin/python bench/vdxp_bench.py [--seconds 5] [--concurrency 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import LIENTHONG, start_axis

import edxml
from edxml import Code, Envelope, MessageHeader, Organization, PromulgationInfo
from server.vdxp.client import VdxpClient

SENDER = "000.00.00.G22"
RECIPIENT = "000.00.00.H41"


def package(n: int) -> bytes:
    """A small valid document package with a unique DocumentId."""
    return edxml.serialize(
        Envelope(
            header=MessageHeader(
                from_=Organization(SENDER, organ_name="Văn phòng Chính phủ"),
                to=(Organization(RECIPIENT, organ_name="UBND tỉnh Nghệ An"),),
                document_id=f"{SENDER},2024/05/01,{n}/BENCH-{uuid.uuid4().hex[:8]}",
                subject="Đo tốc độ trục liên thông: gửi và nhận một văn bản nhỏ " * 3,
                content="Nội dung " * 40,
                code=Code(str(n), "BENCH"),
                promulgation_info=PromulgationInfo("Hà Nội", date(2024, 5, 1)),
            )
        )
    )


def credentials(data: Path, organ_id: str) -> tuple[str, str]:
    """Give an agency VDXP credentials with the CLI; return (system_id, secret)."""
    system_id = "bench-" + organ_id.replace(".", "")
    done = subprocess.run(
        [str(LIENTHONG), "agency", "secret", "create", organ_id, "--system-id", system_id,
         "--data-dir", str(data)],
        capture_output=True, text=True, encoding="utf-8", timeout=60, check=True,
    )  # fmt: skip
    return system_id, done.stdout.strip().splitlines()[-1]


RoundTrip = Callable[[int], Awaitable[None]]


async def measure(trip: RoundTrip, seconds: float, concurrency: int, start: int) -> list[float]:
    """Run ``concurrency`` workers doing round trips for ``seconds``; return each latency."""
    latencies: list[float] = []
    counter = iter(range(start, start + 10**9))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await trip(next(counter))
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="lienthong-vdxp-bench-") as tmp:
        data = Path(tmp) / "data"
        server = start_axis(data, env={"LIENTHONG_SERVER_LOG_JSON": "true"})
        try:
            send_id, send_secret = credentials(data, SENDER)
            recv_id, recv_secret = credentials(data, RECIPIENT)
            tokens = {
                SENDER: server.tokens["TOKEN_G22"],
                RECIPIENT: server.tokens["TOKEN_H41"],
            }
            connector = aiohttp.TCPConnector(limit=args.concurrency * 4)
            async with aiohttp.ClientSession(connector=connector) as session:
                endpoint = server.url + "/vdxp"
                sender = VdxpClient(endpoint, send_id, send_secret, session=session)
                recipient = VdxpClient(endpoint, recv_id, recv_secret, session=session)

                async def vdxp_trip(n: int) -> None:
                    body = package(n)
                    doc_id = await sender.send_edoc(body, sender=SENDER, to=RECIPIENT)
                    got = await recipient.get_edoc(doc_id)
                    assert len(got) > len(body), "the stored package lacks the TraceHeader"

                async def api_trip(n: int) -> None:
                    body = package(n)
                    async with session.post(
                        server.url + "/api/v1/documents",
                        data=body,
                        headers={
                            "Authorization": f"Bearer {tokens[SENDER]}",
                            "Content-Type": "application/xml",
                        },
                    ) as resp:
                        assert resp.status == 201, await resp.text()
                        doc_id = (await resp.json())["id"]
                    async with session.get(
                        f"{server.url}/api/v1/documents/{doc_id}",
                        headers={"Authorization": f"Bearer {tokens[RECIPIENT]}"},
                    ) as resp:
                        got = await resp.read()
                        assert resp.status == 200
                    assert len(got) > len(body)

                # Warm up both paths (first key load, connection pool, page cache).
                await measure(api_trip, 1.0, args.concurrency, 0)
                await measure(vdxp_trip, 1.0, args.concurrency, 10**6)
                results: dict[str, list[float]] = {"api": [], "vdxp": []}
                elapsed: dict[str, float] = {"api": 0.0, "vdxp": 0.0}
                base = 2 * 10**6
                for round_no in range(args.rounds):
                    for name, trip in (("api", api_trip), ("vdxp", vdxp_trip)):
                        began = time.perf_counter()
                        lat = await measure(trip, args.seconds, args.concurrency, base)
                        elapsed[name] += time.perf_counter() - began
                        results[name] += lat
                        base += 10**6
                        print(
                            f"round {round_no + 1} {name:>4}: {len(lat) / args.seconds:7.1f} "
                            "round trips/s",
                            file=sys.stderr,
                        )
        finally:
            server.stop()

    print(f"{'':6} {'trips/s':>9} {'p50 ms':>8} {'p99 ms':>8}  (concurrency {args.concurrency})")
    rate = {}
    for name in ("api", "vdxp"):
        lat = sorted(results[name])
        rate[name] = len(lat) / elapsed[name]
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print(f"{name:6} {rate[name]:9.1f} {p50:8.1f} {p99:8.1f}")
    ratio = rate["vdxp"] / rate["api"]
    verdict = "OK" if ratio >= 0.8 else "BELOW GOAL"
    print(f"vdxp / api = {ratio:.2f} (goal: within 20 %, i.e. >= 0.80): {verdict}")
    return 0 if ratio >= 0.8 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per protocol and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
