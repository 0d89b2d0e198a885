"""Push delivery throughput (issue 9): sends per second while the worker pushes to a local
webhook, and the time to drain 10,000 pending deliveries after a SIGKILL.

Everything runs on 127.0.0.1 as subprocesses: the real ``lienthong serve`` (demo agencies,
000.00.00.G22 sending to 000.00.00.H41, which registers a webhook) and a webhook receiver (a
bare aiohttp server) that checks each push's HMAC signature and de-duplicates by
``Idempotency-Key`` (the delivery id), as an agency's system must.

(a) *send + push*: ``--senders`` concurrent clients send ``--count`` small packages while the
    worker pushes them; reports accepted/s (until the last send is answered) and delivered/s
    (until the receiver holds every package once).
(b) *drain after SIGKILL*: ``--drain-count`` packages (default 10,000) are accepted while the
    server's push worker is off (``delivery.enabled = false``: deliveries are scheduled, never
    attempted: a webhook that was unreachable the whole time), the server is SIGKILLed, then
    started again with the worker on and the receiver up; reports the time until every package
    was received, and checks each arrived exactly once after de-duplication and every delivery
    row ends ``acked``.

    .venv/bin/python bench/delivery_bench.py [--count 2000] [--senders 32] [--drain-count 10000]
        [--workers 1]

Measured (2 cores shared with other jobs, so +-20 %; defaults): --workers 1: (a) accepted
242/s, delivered 165/s; (b) 10,000 drained in 47.7 s (210/s, start-up included). --workers 2:
(a) 236/s, 184/s; (b) 31.5 s (317/s). Exactly once after de-duplication, no duplicate on the
wire, every delivery acked, in each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api_send_bench import PLACEHOLDER, package_template
from axis_process import LIENTHONG, RunningServer, free_port, start_axis, wait_healthy

from server.exchange import webhooks

SECRET = "bench-webhook-secret-0123456789"  # noqa: S105 (a test secret)
# Quick retries and polling: a bench measures the pipeline, not the default back-off.
FAST = {
    "LIENTHONG_DELIVERY_POLL_MS": "100",
    "LIENTHONG_DELIVERY_BASE_DELAY_MS": "200",
    "LIENTHONG_DELIVERY_MAX_DELAY": "2",
    "LIENTHONG_DELIVERY_LEASE": "30",
    "LIENTHONG_DELIVERY_TIMEOUT": "10",
    "LIENTHONG_SERVER_LOG_JSON": "1",
    "LIENTHONG_VERIFY_ONLINE": "0",
}
RUN_LIMIT = 300.0  # seconds: no phase of a run waits longer


# --- the webhook receiver (a subprocess) -------------------------------------------------------


def serve_receiver(port: int) -> None:
    """The agency's webhook: HMAC checked, de-duplicated by Idempotency-Key; GET /stats."""
    seen: set[str] = set()
    stats = {"requests": 0, "unique": 0, "duplicates": 0, "bad_signature": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        stats["requests"] += 1
        try:
            webhooks.verify(SECRET, request.headers, body)
        except webhooks.BadSignature:
            stats["bad_signature"] += 1
            return web.Response(status=401)
        key = request.headers[webhooks.IDEMPOTENCY_HEADER]
        if key in seen:
            stats["duplicates"] += 1
        else:
            seen.add(key)
            stats["unique"] += 1
        return web.Response(status=200)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_receiver(port: int, directory: Path) -> RunningServer:
    log = directory / "receiver.log"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-receiver", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    return RunningServer(url, process, directory, {})


def receiver_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as resp:  # noqa: S310 (loopback)
        return dict(json.loads(resp.read()))


# --- the axis ----------------------------------------------------------------------------------


def serve_axis(data: Path, port: int, env: dict[str, str], workers: int) -> RunningServer:
    """``lienthong serve`` again on an existing data directory and port."""
    log = data / "serve.log"
    process = subprocess.Popen(
        [
            *(str(LIENTHONG), "serve", "--data-dir", str(data)),
            *("--port", str(port), "--workers", str(workers)),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    return RunningServer(url, process, data, {})


async def register_webhook(axis_url: str, token: str, hook_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{axis_url}/api/v1/webhook",
            json={"url": hook_url, "secret": SECRET},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp,
    ):
        if resp.status != 200:
            raise RuntimeError(f"webhook not registered: {resp.status} {await resp.text()}")


async def send_all(url: str, token: str, count: int, senders: int, tag: str) -> float:
    """Send ``count`` packages with ``senders`` concurrent clients (retrying on errors);
    return the seconds until the last was accepted."""
    template = package_template()
    numbers = iter(range(count))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/xml"}
    started = time.perf_counter()

    async def sender(session: aiohttp.ClientSession) -> None:
        for n in numbers:
            body = template.replace(PLACEHOLDER.encode(), f"G22,2025/01/15,{tag}-{n}".encode())
            for _ in range(20):
                try:
                    async with session.post(
                        f"{url}/api/v1/documents", data=body, headers=headers
                    ) as resp:
                        await resp.read()
                        if resp.status in (200, 201):  # 200: a retry of an accepted send
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"package {n} was never accepted")

    connector = aiohttp.TCPConnector(limit=senders)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(sender(session) for _ in range(senders)))
    return time.perf_counter() - started


def wait_received(hook_url: str, count: int, since: float) -> tuple[float, dict[str, int]]:
    """Seconds from ``since`` until the receiver holds ``count`` unique packages."""
    deadline = time.monotonic() + RUN_LIMIT
    while True:
        stats = receiver_stats(hook_url)
        if stats["unique"] >= count:
            return time.perf_counter() - since, stats
        if time.monotonic() > deadline:
            raise RuntimeError(f"not delivered within {RUN_LIMIT:.0f} s: {stats}")
        time.sleep(0.05)


def delivery_states(data: Path) -> dict[str, int]:
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        return dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
    finally:
        conn.close()


def wait_all_acked(data: Path, count: int) -> dict[str, int]:
    """The delivery states once every delivery is acked (the last 200s are being recorded)."""
    deadline = time.monotonic() + 30
    while True:
        states = delivery_states(data)
        if states.get("acked", 0) >= count or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


# --- the two runs ------------------------------------------------------------------------------


def run_send_push(root: Path, count: int, senders: int, workers: int) -> None:
    hook_port = free_port()
    receiver = start_receiver(hook_port, root)
    axis = start_axis(root / "push", FAST, workers=workers)
    try:
        asyncio.run(register_webhook(axis.url, axis.tokens["TOKEN_H41"], f"{receiver.url}/hook"))
        started = time.perf_counter()
        accepted = asyncio.run(send_all(axis.url, axis.tokens["TOKEN_G22"], count, senders, "a"))
        delivered, stats = wait_received(receiver.url, count, started)
        states = wait_all_acked(axis.data, count)
    finally:
        axis.stop()
        receiver.stop()
    print(
        f"(a) send + push, {count} packages, {senders} senders, {workers} worker(s): "
        f"accepted {count / accepted:.0f}/s ({accepted:.1f} s), "
        f"delivered {count / delivered:.0f}/s (all pushed {delivered:.1f} s after the first send)"
    )
    print(f"    receiver: {stats}; delivery rows: {states}")
    ok = stats["unique"] == count and stats["bad_signature"] == 0 and states == {"acked": count}
    print(f"    exactly once after de-duplication, all acked: {'yes' if ok else 'NO'}")


def run_drain(root: Path, count: int, senders: int, workers: int) -> None:
    hook_port = free_port()
    data = root / "drain"
    # The worker is off while the backlog builds: every delivery stays scheduled, unattempted.
    axis = start_axis(data, {**FAST, "LIENTHONG_DELIVERY_ENABLED": "0"}, workers=workers)
    port = int(axis.url.rsplit(":", 1)[1])
    try:
        asyncio.run(
            register_webhook(
                axis.url, axis.tokens["TOKEN_H41"], f"http://127.0.0.1:{hook_port}/hook"
            )
        )
        filled = asyncio.run(send_all(axis.url, axis.tokens["TOKEN_G22"], count, senders, "b"))
    except BaseException:
        axis.stop()
        raise
    os.kill(axis.pid, signal.SIGKILL)
    axis.process.wait()
    if workers > 1:  # the orphaned workers notice their parent is gone and stop (~1 s)
        time.sleep(3)
    pending = delivery_states(data)
    receiver = start_receiver(hook_port, root)
    started = time.perf_counter()
    axis = serve_axis(data, port, FAST, workers)
    try:
        drained, stats = wait_received(receiver.url, count, started)
        states = wait_all_acked(data, count)
    finally:
        axis.stop()
        receiver.stop()
    print(
        f"(b) drain after SIGKILL, {count} pending ({filled:.1f} s to send them; rows "
        f"{pending}), {workers} worker(s): all delivered {drained:.1f} s after the restart "
        f"began (start-up included), {count / drained:.0f}/s"
    )
    print(f"    receiver: {stats}; delivery rows: {states}")
    ok = stats["unique"] == count and stats["bad_signature"] == 0 and states == {"acked": count}
    print(f"    exactly once after de-duplication, all acked: {'yes' if ok else 'NO'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="packages of run (a)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent senders")
    parser.add_argument("--drain-count", type=int, default=10_000, help="backlog of run (b)")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N")
    parser.add_argument("--only", choices=["a", "b"], help="run one of the two")
    parser.add_argument("--serve-receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver(args.serve_receiver)
        return 0
    with tempfile.TemporaryDirectory(prefix="lienthong-delivery-bench-") as tmp:
        root = Path(tmp)
        if args.only in (None, "a"):
            run_send_push(root, args.count, args.senders, args.workers)
        if args.only in (None, "b"):
            run_drain(root, args.drain_count, args.senders, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
