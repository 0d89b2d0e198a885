"""What TLS and client certificates cost (issue 18, finding 7): ``GET /api/v1/me`` per second.

Two ``lienthong serve`` subprocesses on 127.0.0.1 over the same demo data (one after the
other): plain HTTP, then HTTPS with ``[server.tls]`` from a fresh test PKI (certs/pki.yml,
client certificates optional, the demo sender's certificate bound with ``lienthong agency cert
add``). Measured, each for ``--seconds`` with ``--concurrency`` clients:

- *http*: bearer token, keep-alive (the baseline);
- *https-token*: bearer token over TLS, keep-alive;
- *https-cert*: the client certificate alone (no token), keep-alive;
- *https-handshake*: the client certificate, a new connection (full TLS handshake) per request.

Prints requests/s and p50/p99 per case and the ratio to the baseline.

    .venv/bin/python bench/tls_bench.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import LIENTHONG, RunningServer, free_port, start_axis

from server.cli.admin import token_variable
from signing import devpki

SENDER = "000.00.00.G22"


def _wait(url: str, context: ssl.SSLContext, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2, context=context):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the HTTPS server did not start") from None
            time.sleep(0.1)


async def _measure(
    url: str,
    seconds: float,
    concurrency: int,
    *,
    token: str | None,
    context: ssl.SSLContext | bool,
    new_connection: bool,
) -> tuple[float, float, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def client() -> None:
        connector = aiohttp.TCPConnector(force_close=new_connection, limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.monotonic() < stop:
                start = time.perf_counter()
                async with session.get(url + "/api/v1/me", headers=headers, ssl=context) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status
                latencies.append(time.perf_counter() - start)

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - began
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = devpki.generate(root / "pki", port=free_port())
        certs = pki.directory / "certs"
        chains = {}
        for label in ("tls-server", "tls-agency"):
            chains[label] = root / f"{label}.pem"
            chains[label].write_bytes(
                (certs / f"{label}.cert.pem").read_bytes() + (certs / "gov.cert.pem").read_bytes()
            )
        data = root / "data"
        plain = start_axis(data, {"LIENTHONG_VERIFY_ONLINE": "0"})
        token = plain.tokens[token_variable(SENDER)]
        results: dict[str, tuple[float, float, float]] = {}
        try:
            results["http"] = asyncio.run(
                _measure(
                    plain.url,
                    args.seconds,
                    args.concurrency,
                    token=token,
                    context=True,
                    new_connection=False,
                )
            )
        finally:
            plain.stop()
        subprocess.run(
            [
                str(LIENTHONG),
                "agency",
                "cert",
                "add",
                SENDER,
                str(chains["tls-agency"]),
                "--data-dir",
                str(data),
            ],
            check=True,
            capture_output=True,
        )
        port = free_port()
        env = {
            **os.environ,
            "LIENTHONG_VERIFY_ONLINE": "0",
            "LIENTHONG_SERVER_TLS_CERTIFICATE": str(chains["tls-server"]),
            "LIENTHONG_SERVER_TLS_KEY": str(pki.key_path("tls-server")),
            "LIENTHONG_SERVER_TLS_CLIENT_CA": str(certs / "root.cert.pem"),
        }
        log = data / "serve-tls.log"
        process = subprocess.Popen(
            [str(LIENTHONG), "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        server = RunningServer(f"https://127.0.0.1:{port}", process, data, {})
        anonymous = ssl.create_default_context(cafile=certs / "root.cert.pem")
        agency = ssl.create_default_context(cafile=certs / "root.cert.pem")
        agency.load_cert_chain(chains["tls-agency"], pki.key_path("tls-agency"))
        try:
            _wait(server.url, anonymous, process)
            cases = {
                "https-token": (token, anonymous, False),
                "https-cert": (None, agency, False),
                "https-handshake": (None, agency, True),
            }
            for name, (tok, context, fresh) in cases.items():
                results[name] = asyncio.run(
                    _measure(
                        server.url,
                        args.seconds,
                        args.concurrency,
                        token=tok,
                        context=context,
                        new_connection=fresh,
                    )
                )
        finally:
            server.stop()
    base = results["http"][0]
    print(f"GET /api/v1/me, {args.concurrency} clients, {args.seconds:g} s each")
    for name, (rate, p50, p99) in results.items():
        print(
            f"{name:16} {rate:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
            f"ratio {rate / base:.2f}"
        )


if __name__ == "__main__":
    main()
