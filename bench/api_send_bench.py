"""Packages accepted per second by the axis, next to a bare aiohttp handler (issues 4 and 21).

Run by hand, never by the test suite. The load comes from ``wrk`` (Debian package ``wrk``) with
``bench/api_send.lua``, because on two cores a Python load generator takes the CPU the servers
need: ``--connections`` (default 100) connections POST packages for ``--seconds`` each, every
request with its own DocumentId (or, for status messages, its own Description: the axis
de-duplicates on both).

Side by side in one run, for each payload of ``--payloads``:

- ``small``: a valid package G22 -> H41 of about 2 KB (``--small-bytes``);
- ``sdk``: the same at 367,850 bytes, the size of the national SDK's sample ``edoc_new.edxml``;
- ``status``: a status message 01 from H41 about a document G22 sent it (about 1.9 KB);

against each server:

- *bare*: an aiohttp handler that reads the body, writes it to a new file and fsyncs it (in a
  worker thread, as a sensible aiohttp app would: fsync on the event loop would serialise the
  requests and flatter the axis): one fsync per request;
- *serve*: the real ``lienthong serve`` on a temporary data directory (the demo agencies):
  spool + hash, parse, validate, store, one group-committed SQLite transaction with
  ``synchronous=FULL``; then ``serve --workers 2`` (``--workers``).

Prints requests/s, p50 and p99 of each and the ratio to the bare handler. Goal (issue 21):
``serve`` >= 100 % of the bare handler, p99 no worse. Afterwards each axis's database must hold
at least as many packages as wrk saw answered 201 (the warm-up's included).

    .venv/bin/python bench/api_send_bench.py [--seconds 10] [--connections 100]
        [--payloads small sdk status] [--workers 1 2]

Figures: docs/storage.md, "Benchmark: sending packages".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from axis_process import RunningServer, free_port, start_axis, wait_healthy
from dossier_bench import wrk  # the WRK_JSON line of a bench/ Lua script

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

HERE = Path(__file__).resolve().parent
PLACEHOLDER = "@@DOCUMENT-ID@@"
SDK_SAMPLE_BYTES = 367_850  # edoc_new.edxml of the national SDK (../shared/corpus/edxml)
# The document every status message of the run is about (sent once before the load).
STATUS_ABOUT = "000.00.00.G22,2025/01/15,bench-status"
ENV = {"LIENTHONG_VERIFY_ONLINE": "0"}


def package_template(size: int | None = None) -> bytes:
    """A valid package G22 -> H41 whose DocumentId is :data:`PLACEHOLDER`; with ``size``, its
    text attachment is grown so that the package is about ``size`` bytes."""

    def build(text: bytes) -> bytes:
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
            attachments=(Attachment("a1", "noi-dung.txt", "Nội dung", "text/plain", data=text),),
        )
        return edxml.serialize(envelope)

    text = ("Nội dung văn bản thử tải. " * 40).encode()
    package = build(text)
    if size is None:
        return package
    # base64 makes 3 bytes 4: grow (or shrink) the text by the gap, twice to land close.
    for _ in range(2):
        want = max(1, len(text) + (size - len(package)) * 3 // 4)
        text = (text * (want // len(text) + 1))[:want]
        package = build(text)
    return package


def status_template(about: str) -> bytes:
    """A status message 01 (received) from H41 about G22's document ``about``, whose
    Description holds :data:`PLACEHOLDER`."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>000.00.00.H41</edXML:OrganId>
          <edXML:OrganizationInCharge>UBND Tỉnh Nghệ An</edXML:OrganizationInCharge>
          <edXML:OrganName>UBND Tỉnh Nghệ An</edXML:OrganName>
          <edXML:OrganAdd>Số 03, đường Trường Thi, Thành phố Vinh, Tỉnh Nghệ An</edXML:OrganAdd>
          <edXML:Email>nghean@gov.vn</edXML:Email>
        </edXML:From>
        <edXML:ResponseFor>
          <edXML:OrganId>000.00.00.G22</edXML:OrganId>
          <edXML:Code>1/VPCP-TT</edXML:Code>
          <edXML:DocumentId>{about}</edXML:DocumentId>
          <edXML:PromulgationDate>2025/01/15</edXML:PromulgationDate>
        </edXML:ResponseFor>
        <edXML:StaffInfo>
          <edXML:Department>Văn thư văn phòng</edXML:Department>
          <edXML:Staff>Nguyễn Thị Ngọc Trâm</edXML:Staff>
          <edXML:Email>vanthuvanphong@gov.vn</edXML:Email>
        </edXML:StaffInfo>
        <edXML:StatusCode>01</edXML:StatusCode>
        <edXML:Description>Văn thư: đã đến ({PLACEHOLDER})</edXML:Description>
        <edXML:Timestamp>2025/01/15 17:25:11</edXML:Timestamp>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
  </edXML:edXMLEnvelope>
</edXML>
""".encode()


# --- the bare handler ---------------------------------------------------------------------


def serve_bare(port: int, directory: Path) -> None:
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
    app.router.add_post("/api/v1/statuses", accept)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_bare(directory: Path) -> RunningServer:
    port = free_port()
    log = directory / "bare.log"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(port), str(directory)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log)
    return RunningServer(url, process, directory, {})


# --- the load -----------------------------------------------------------------------------


def post(url: str, token: str, body: bytes) -> None:
    """One POST of a package, answered 201 (the document the status messages are about)."""
    request = urllib.request.Request(  # noqa: S310 (a loopback URL of ours)
        url + "/api/v1/documents",
        data=body,
        headers={"Content-Type": "application/xml", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        if resp.status != 201:
            raise RuntimeError(f"the setup send answered {resp.status}")


def stored_packages(data: Path) -> int:
    conn = sqlite3.connect(f"file:{data / 'lienthong.sqlite3'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    finally:
        conn.close()


class Figures:
    """One wrk run: rate, percentiles, the answers."""

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        self.name = name
        self.raw = raw
        self.seconds = raw["duration_us"] / 1e6
        self.ok = int(raw["statuses"].get("201", 0))
        self.rate = self.ok / self.seconds
        self.p50 = raw["p50_us"] / 1000
        self.p99 = raw["p99_us"] / 1000

    def line(self, bare: Figures | None) -> str:
        others = {k: v for k, v in self.raw["statuses"].items() if k != "201"}
        errors = {k: v for k, v in self.raw["errors"].items() if v}
        ratio = f"{self.rate / bare.rate * 100:5.0f} %" if bare and bare.rate else "      "
        return (
            f"  {self.name:18s} {self.rate:8.0f}/s {ratio}   p50 {self.p50:7.1f} ms   "
            f"p99 {self.p99:7.1f} ms"
            + (f"   other answers {others}" if others else "")
            + (f"   socket errors {errors}" if errors else "")
        )


def run_payload(
    kind: str, template: bytes, tmp: Path, args: argparse.Namespace
) -> tuple[Figures, list[Figures]]:
    """The bare handler, then ``serve`` with each ``--workers``, under one payload."""
    template_file = tmp / f"{kind}.template"
    template_file.write_bytes(template)
    path = "/api/v1/statuses" if kind == "status" else "/api/v1/documents"
    env = {"SEND_TEMPLATE": str(template_file), "SEND_PATH": path}

    bare_dir = tmp / f"bare-{kind}"
    bare_dir.mkdir()
    bare = start_bare(bare_dir)
    try:
        env["SEND_RUN"] = f"bare-{uuid.uuid4().hex[:8]}"
        raw = wrk(bare.url, "api_send.lua", args.connections, args.seconds, env)
        bare_figures = Figures("bare read+fsync", raw)
    finally:
        bare.stop()
        shutil.rmtree(bare_dir)

    axes = []
    for workers in args.workers:
        data = tmp / f"axis-{kind}-{workers}"
        axis = start_axis(data, {**ENV, **args.env}, workers=workers)
        try:
            time.sleep(1.0 if workers > 1 else 0.2)  # every worker up before the load
            sender = axis.tokens["TOKEN_H41" if kind == "status" else "TOKEN_G22"]
            if kind == "status":
                post(axis.url, axis.tokens["TOKEN_G22"], package_template().replace(
                    PLACEHOLDER.encode(), STATUS_ABOUT.encode()))  # fmt: skip
            before = stored_packages(data)
            if args.profile and workers == 1:
                profile = start_profile(axis.pid, tmp / f"profile-{kind}.txt", args.seconds)
            env["SEND_RUN"] = f"w{workers}-{uuid.uuid4().hex[:8]}"
            env["SEND_TOKEN"] = sender
            raw = wrk(axis.url, "api_send.lua", args.connections, args.seconds, env)
            if args.profile and workers == 1:
                finish_profile(profile, tmp / f"profile-{kind}.txt", args.profile)
        finally:
            axis.stop()
        figures = Figures(f"serve --workers {workers}", raw)
        stored = stored_packages(data) - before
        if stored < figures.ok:
            raise SystemExit(f"ERROR: {figures.ok} answered 201 but only {stored} stored")
        axes.append(figures)
        shutil.rmtree(data)
    return bare_figures, axes


def start_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy (on PATH) sampling the server process during the load, raw (collapsed) stacks."""
    return subprocess.Popen(
        [
            *("py-spy", "record", "--pid", str(pid), "--format", "raw", "--nonblocking"),
            *("--duration", str(int(seconds)), "--rate", "200", "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finish_profile(process: subprocess.Popen[bytes], out: Path, keep: str) -> None:
    process.wait(timeout=60)
    if out.exists():
        shutil.copy(out, Path(keep) / out.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk time per server")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--small-bytes", type=int, default=2048)
    parser.add_argument(
        "--payloads", nargs="+", choices=("small", "sdk", "status"),
        default=["small", "sdk", "status"],
    )  # fmt: skip
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--env", action="append", default=[], metavar="VAR=VALUE",
        help="extra environment for serve (e.g. LIENTHONG_STORAGE_INLINE_MAX_BYTES=0)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", metavar="DIR",
        help="sample serve --workers 1 with py-spy (on PATH) into DIR/profile-<payload>.txt",
    )  # fmt: skip
    parser.add_argument("--serve-bare", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(int(args.serve_bare[0]), Path(args.serve_bare[1]))
        return 0
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2
    args.env = dict(item.split("=", 1) for item in args.env)
    if args.profile:
        if shutil.which("py-spy") is None:
            print("--profile needs py-spy on PATH", file=sys.stderr)
            return 2
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    templates = {
        "small": package_template(args.small_bytes),
        "sdk": package_template(SDK_SAMPLE_BYTES),
        "status": status_template(STATUS_ABOUT),
    }
    print(
        f"wrk, {args.connections} connections, {args.seconds:g} s per server, "
        f"{os.cpu_count()} CPUs, load average before: {Path('/proc/loadavg').read_text().strip()}"
    )
    worst = []
    with tempfile.TemporaryDirectory(prefix="lienthong-send-bench-") as tmp:
        for kind in args.payloads:
            template = templates[kind]
            print(f"{kind}: {len(template):,} bytes a request")
            bare, axes = run_payload(kind, template, Path(tmp), args)
            print(bare.line(None))
            for figures in axes:
                print(figures.line(bare))
                met = figures.rate >= bare.rate and figures.p99 <= bare.p99
                worst.append(met)
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    print(
        "goal (serve >= 100 % of the bare handler, p99 no worse): "
        + ("MET everywhere" if all(worst) else "NOT MET everywhere")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
