"""CPU per package of the send path: ``lienthong serve`` under wrk, sampled by py-spy (issue 21).

    .venv/bin/python bench/send_profile.py                        # 15 s, 100 connections, ~2 KB
    .venv/bin/python bench/send_profile.py --size 368K --seconds 20
    .venv/bin/python bench/send_profile.py --env LIENTHONG_SERVER_EVENT_LOOP=asyncio
    .venv/bin/python bench/send_profile.py --no-profile           # CPU figures without sampling

A real ``lienthong serve`` (one process, demo agencies, temporary data directory) takes small
packages 000.00.00.G22 -> 000.00.00.H41 from wrk (``bench/send_profile.lua``: a new
DocumentId per request) while py-spy samples it (``--nonblocking``: the server is never
paused). Printed: packages/s, wrk's latency percentiles, the server's CPU time (user + system,
every thread, from /proc) divided by the packages it accepted (CPU-ms per package: the figure
that does not depend on how busy the rest of the machine is, unlike packages/s), and the
functions the samples were in: by own time (the top of the stack) and by time under them
(anywhere in the stack), as a share of all samples. The raw py-spy output (collapsed stacks)
is kept with ``--keep``, for a flame graph.

Goal of issue 21: cut what the profile shows (repeated parsing or hashing, JSON encoding,
thread hops). Run on an idle machine and say the load average (printed) with the figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import start_axis
from edxml_bench import load_average, parse_size

import edxml

HERE = Path(__file__).resolve().parent
PY_SPY = Path(sys.executable).with_name("py-spy")
TICKS = os.sysconf("SC_CLK_TCK")


def send_template(size: int) -> bytes:
    """A valid package G22 -> H41 of about ``size`` bytes; the DocumentId is a placeholder."""
    text = "Kính gửi Ủy ban nhân dân tỉnh Nghệ An. " * max(1, size // 80)
    envelope = edxml.Envelope(
        header=edxml.MessageHeader(
            from_=edxml.Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
            to=(edxml.Organization("000.00.00.H41", organ_name="UBND tỉnh Nghệ An"),),
            document_id="@@DOCUMENT-ID@@",
            subject="Đo CPU mỗi gói tin",
        ),
        manifest=(edxml.ManifestReference("c1", "text/plain", None, "thu.txt"),),
        attachments=(edxml.Attachment("c1", "thu.txt", None, "text/plain", data=text.encode()),),
    )
    return edxml.serialize(envelope)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_wrk(url: str, token: str, package: Path, seconds: int, connections: int) -> dict:
    env = {
        **os.environ,
        "SEND_RUN": f"p{time.time_ns()}",
        "SEND_TOKEN": token,
        "SEND_PACKAGE": str(package),
    }
    done = subprocess.run(
        [
            *("wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s"),
            *("--timeout", "30s", "--latency", "-s", str(HERE / "send_profile.lua"), url),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_JSON "))
    report: dict = json.loads(line.removeprefix("WRK_JSON "))
    return report


def summarize(raw: Path, top: int) -> None:
    """Print the functions most samples were in: own time, and time under them."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text("utf-8", "replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")
        ]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            under[frame] += count
    if not total:
        print("no samples")
        return
    for title, counter in (("own time", own), ("time under", under)):
        print(f"\n{title} (share of {total} samples):")
        for frame, count in counter.most_common(top):
            print(f"  {count / total * 100:5.1f} %  {frame}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--size", default="2K", help="package size, e.g. 2K or 368K")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument("--no-profile", action="store_true", help="no py-spy, CPU figures only")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--keep", type=Path, help="copy py-spy's raw output here")
    args = ap.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="send-profile-") as tmp:
        work = Path(tmp)
        package = work / "package.edxml"
        package.write_bytes(send_template(parse_size(args.size)))
        axis = start_axis(work / "axis", env)
        try:
            raw = work / "profile.txt"
            spy = None
            if not args.no_profile:
                spy = subprocess.Popen(
                    [
                        *(str(PY_SPY), "record", "--pid", str(axis.pid), "--nonblocking"),
                        *("--rate", "200", "--format", "raw", "-o", str(raw)),
                        *("--duration", str(args.seconds)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            before = cpu_seconds(axis.pid)
            report = run_wrk(
                axis.url, axis.tokens["TOKEN_G22"], package, args.seconds, args.connections
            )
            cpu = cpu_seconds(axis.pid) - before
            if spy is not None:
                spy.wait(timeout=60)
        finally:
            axis.stop()
        accepted = report["statuses"].get("201", 0)
        seconds = report["duration_us"] / 1e6
        print(
            f"package {package.stat().st_size} bytes, {args.connections} connections, "
            f"{seconds:.1f} s, env {env or '-'}"
        )
        print(
            f"accepted {accepted} ({accepted / seconds:.0f}/s), answers {report['statuses']}, "
            f"p50 {report['p50_us'] / 1000:.1f} ms, p99 {report['p99_us'] / 1000:.1f} ms"
        )
        if accepted:
            print(f"server CPU {cpu:.2f} s: {cpu / accepted * 1000:.2f} CPU-ms per package")
        if not args.no_profile and raw.exists():
            summarize(raw, args.top)
            if args.keep:
                shutil.copyfile(raw, args.keep)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
