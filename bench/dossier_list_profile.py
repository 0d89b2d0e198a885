"""Where the CPU of a dossier list page goes: the real app, in this process, under cProfile,
loaded by ``wrk`` (issue 16, "Benchmarks"; the overdue list at 10 connections).

Run by hand on a data directory that ``bench/dossier_bench.py --only reads --keep DIR`` seeded
(``DIR/reads``, 1,000,000 dossiers). The app is built with ``build_app`` as ``serve`` builds
it and served on 127.0.0.1 in this process; ``wrk`` (another process) sends the requests, so
the CPU this process spends, divided by the requests answered, is the server's CPU per page.
Prints that figure, wrk's figures, and the functions that take the most time
(``--sort tottime`` or ``cumulative``)::

    .venv/bin/python bench/dossier_list_profile.py DIR/reads --agency 000.05.31.H41 \\
        [--path '/api/v1/dossiers?overdue=true&limit=50'] [--seconds 10] [--connections 10] \\
        [--no-profile] [--top 30]

``--no-profile`` gives the CPU per page without cProfile's own overhead (about doubles it).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web
from axis_process import LIENTHONG, free_port
from dossier_bench import HERE, describe, wrk

from server.app.application import build_app
from server.runtime.config import load_config

ENV = {"LIENTHONG_SERVER_LOG_JSON": "1", "LIENTHONG_VERIFY_ONLINE": "0"}


def token_for(data: Path, agency: str) -> str:
    """A new bearer token of ``agency`` in the data directory."""
    done = subprocess.run(
        [str(LIENTHONG), "token", "create", agency, "--data-dir", str(data)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return next(ln for ln in done.stdout.splitlines() if ln.startswith("lt_"))


async def measure(args: argparse.Namespace, token: str) -> tuple[dict[str, object], float]:
    """Serve the app here while wrk loads it; (wrk's figures, this process's CPU seconds)."""
    config = load_config(data_dir=args.data, env={**os.environ, **ENV})
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as paths:
            paths.write(args.path + "\n")
            paths.flush()
            env = {"DOSSIER_PATHS": paths.name, "DOSSIER_TOKEN": token}
            await asyncio.to_thread(wrk, url, "dossier_read.lua", 2, 2, env)  # warm up
            profiler = cProfile.Profile() if args.profile else None
            cpu = time.process_time()
            if profiler is not None:
                profiler.enable()
            figures = await asyncio.to_thread(
                wrk, url, "dossier_read.lua", args.connections, args.seconds, env
            )
            if profiler is not None:
                profiler.disable()
            cpu = time.process_time() - cpu
    finally:
        await runner.cleanup()
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.top)
    return figures, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a seeded data directory (DIR/reads)")
    parser.add_argument("--agency", default="000.05.31.H41")
    parser.add_argument("--path", default="/api/v1/dossiers?overdue=true&limit=50")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--sort", choices=["tottime", "cumulative"], default="tottime")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    assert (HERE / "dossier_read.lua").is_file()
    figures, cpu = asyncio.run(measure(args, token_for(args.data, args.agency)))
    answered = int(figures["requests"])  # type: ignore[call-overload]
    print(f"{args.path}, {args.connections} connections: {describe(figures)}")
    print(
        f"server CPU (this process, all threads): {cpu:.2f} s for {answered:,} answers = "
        f"{cpu / max(answered, 1) * 1000:.2f} ms a page"
        + (" (under cProfile)" if args.profile else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
