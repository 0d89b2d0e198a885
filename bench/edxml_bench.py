"""Benchmark edxml.parse and edxml.write against lxml on generated packages.

    .venv/bin/python bench/edxml_bench.py                 # 10 KB, 100 KB, 1 MB and 10 MB
    .venv/bin/python bench/edxml_bench.py --sizes 10K,10M,1G
    .venv/bin/python bench/edxml_bench.py --sizes 10K,100K,1M --no-write   # issue 21's sizes

For each size a package is generated on disk (streamed, never whole in memory) with base64
attachments wrapped at 76 columns, then every measurement runs in a fresh subprocess, which
reports its wall time and its peak RSS (VmHWM from /proc/self/status):

- ``edxml.parse``: ``edxml.parse(path, sink=DiscardSink())``: attachments decoded, hashed,
  dropped (a real server would write them to a file; see ``--sink dir``); packages up to
  ``Limits.tree_max_size`` (1 MiB) take the tree way, larger ones stream;
- ``edxml.stream``: the same, always streaming (``Limits(tree_max_size=0)``), for comparison;
- ``lxml.parse``: ``etree.parse(path)`` with ``huge_tree=True`` (the whole tree in memory);
- ``edxml.bytes`` and ``lxml.bytes``: the same two parses of the package's bytes already in
  memory (``edxml.parse(data, ...)``, ``etree.fromstring(data, parser)``), as the server's
  small-package path reads them: no file opening in either figure, so the ratio is the parse
  alone; ``edxml.bytes`` is compared with ``lxml.bytes``;
- ``edxml.write``: ``edxml.write(envelope, file)`` of that package, parsed beforehand into a
  DirectorySink so attachments stream from disk (the parse is not timed);
- ``lxml.write``: ``tree.write(file)`` of the tree lxml parsed (the parse is not timed).

Throughput is input (or output) megabytes per second of elapsed time, or of the process's CPU
time (all its threads, so the streaming way's helper thread counts) with ``--clock cpu``, the
figure to take on a shared machine; the ratio column compares with lxml's
figure for the same size. Each measurement runs its loop in several rounds and keeps the best
round, so that a busy machine disturbs small packages less. Goal: edxml at least 50 % of lxml,
peak RSS flat in package size.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
UNITS = {"K": 1000, "M": 1000**2, "G": 1000**3}

HEADER = f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXML xmlns:edXML="{NAMESPACE}">
  <edXML:edXMLEnvelope>
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId>
          <edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:From>
        <edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId>
          <edXML:OrganName>UBND tỉnh Nghệ An</edXML:OrganName></edXML:To>
        <edXML:DocumentId>000.00.00.G22,2024/05/02,1234/VPCP-TTĐT</edXML:DocumentId>
        <edXML:Code><edXML:CodeNumber>1234</edXML:CodeNumber>
          <edXML:CodeNotation>VPCP-TTĐT</edXML:CodeNotation></edXML:Code>
        <edXML:PromulgationInfo><edXML:Place>Hà Nội</edXML:Place>
          <edXML:PromulgationDate>2024/05/02</edXML:PromulgationDate></edXML:PromulgationInfo>
        <edXML:DocumentType><edXML:Type>1</edXML:Type>
          <edXML:TypeName>Công văn</edXML:TypeName></edXML:DocumentType>
        <edXML:Subject>V/v kiểm thử hiệu năng liên thông văn bản</edXML:Subject>
        <edXML:SignerInfo><edXML:FullName>Nguyễn Văn A</edXML:FullName></edXML:SignerInfo>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList><edXML:TraceHeader><edXML:OrganId>000.00.00.G22</edXML:OrganId>
        <edXML:Timestamp>2024/05/02 08:00:00</edXML:Timestamp></edXML:TraceHeader>
      </edXML:TraceHeaderList>
    </edXML:edXMLHeader>
    <edXML:edXMLBody><edXML:edXMLManifest version="1.0">{{refs}}</edXML:edXMLManifest>
    </edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <edXML:AttachmentEncoded>
"""


def parse_size(text: str) -> int:
    """'10K', '10M', '1G' (decimal units) to bytes."""
    text = text.strip().upper().removesuffix("B")
    if text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def label(size: int) -> str:
    for unit in ("G", "M", "K"):
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:g} {unit}B"
    return f"{size} B"


def generate(path: Path, size: int) -> None:
    """Write a package of about ``size`` bytes: up to 4 attachments, base64 in 76-col lines."""
    count = 1 if size < 50 * UNITS["M"] else 4
    refs = "".join(
        f"<edXML:Reference><edXML:ContentId>cid:att-{i}</edXML:ContentId>"
        "<edXML:ContentType>application/pdf</edXML:ContentType>"
        f"<edXML:AttachmentName>van-ban-{i}.pdf</edXML:AttachmentName></edXML:Reference>"
        for i in range(count)
    )
    head = HEADER.replace("{refs}", refs).encode()
    # Decoded bytes per attachment: 57 of them make one 77-byte line; ~220 bytes of markup each.
    per_attachment = max(1, (size - len(head) - 40 - 220 * count) // count * 57 // 77)
    block = random.Random(42).randbytes(57 * 16 * 1024)  # 57 bytes = one 76-column line
    with path.open("wb") as out:
        out.write(head)
        for i in range(count):
            out.write(
                f"    <edXML:Attachment><edXML:ContentId>cid:att-{i}</edXML:ContentId>"
                f"<edXML:AttachmentName>van-ban-{i}.pdf</edXML:AttachmentName>"
                "<edXML:ContentType>application/pdf</edXML:ContentType>"
                "<edXML:ContentTransferEncoded>\n".encode()
            )
            left = per_attachment
            while left > 0:
                piece = block[: min(left, len(block))]
                out.write(base64.encodebytes(piece))
                left -= len(piece)
            out.write(b"</edXML:ContentTransferEncoded></edXML:Attachment>\n")
        out.write(b"  </edXML:AttachmentEncoded>\n</edXML:edXML>\n")


CHILD = textwrap.dedent(
    """
    import json, os, sys, tempfile, time
    sys.path.insert(0, sys.argv[1])
    op, path, repeat, sink_kind = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    clock = time.process_time if sys.argv[6] == "cpu" else time.perf_counter

    def hwm_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    import edxml
    from lxml import etree
    base = hwm_kb()
    out_path = os.path.join(os.path.dirname(path), "out.xml")
    work = tempfile.mkdtemp(dir=os.path.dirname(path))
    nbytes = os.path.getsize(path)
    with open(path, "rb") as f:
        data = f.read() if op.endswith(".bytes") else b""
    lxml_parser = etree.XMLParser(huge_tree=True, resolve_entities=False)
    prepared = None
    if op == "edxml.write":
        prepared = edxml.parse(path, sink=edxml.DirectorySink(work))
    elif op == "lxml.write":
        prepared = etree.parse(path, etree.XMLParser(huge_tree=True, resolve_entities=False))
    stream_limits = edxml.Limits(tree_max_size=0)

    def once():
        global nbytes
        if op == "edxml.parse":
            sink = edxml.DirectorySink(work) if sink_kind == "dir" else edxml.DiscardSink()
            edxml.parse(path, sink=sink)
        elif op == "edxml.stream":
            sink = edxml.DirectorySink(work) if sink_kind == "dir" else edxml.DiscardSink()
            edxml.parse(path, sink=sink, limits=stream_limits)
        elif op == "lxml.parse":
            etree.parse(path, etree.XMLParser(huge_tree=True, resolve_entities=False))
        elif op == "edxml.bytes":
            sink = edxml.DirectorySink(work) if sink_kind == "dir" else edxml.DiscardSink()
            edxml.parse(data, sink=sink)
        elif op == "lxml.bytes":
            etree.fromstring(data, lxml_parser)
        elif op == "edxml.write":
            with open(out_path, "wb") as out:
                edxml.write(prepared, out)
            nbytes = os.path.getsize(out_path)
        elif op == "lxml.write":
            with open(out_path, "wb") as out:
                prepared.write(out)
            nbytes = os.path.getsize(out_path)

    rounds = 5 if repeat > 1 else 1
    if rounds > 1:
        once()  # warm-up: per-thread parser, caches (skipped for the huge sizes)
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        for _ in range(repeat):
            once()
        best = min(best, (clock() - start) / repeat)
    print(json.dumps({"seconds": best, "bytes": nbytes,
                      "hwm_kb": hwm_kb(), "base_kb": base}))
    """
)


# What each operation is compared with (anything else: lxml.parse).
BASELINE = {
    "edxml.write": "lxml.write",
    "lxml.write": "lxml.write",
    "edxml.bytes": "lxml.bytes",
    "lxml.bytes": "lxml.bytes",
}
# In-memory parses are measured up to this size (a 1 GB package stays on disk).
BYTES_MAX = 64 * UNITS["M"]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: the figures are only as good as an idle machine."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def measure(op: str, path: Path, repeat: int, sink: str, clock: str) -> dict[str, float]:
    """Run one measurement in a fresh interpreter; return its JSON report."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), op, str(path), str(repeat), sink, clock],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{op} on {path.name} failed:\n{done.stderr}")
    report: dict[str, float] = json.loads(done.stdout)
    return report


def main() -> None:
    """Generate, measure, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10K,100K,1M,10M", help="comma-separated: 10K,10M,1G")
    ap.add_argument("--sink", choices=("discard", "dir"), default="discard")
    ap.add_argument("--no-write", action="store_true", help="measure parsing only")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (an idle machine); cpu: the process's CPU time, all threads\n"
        "(a busy one: what the other users take does not count, cache sharing still does)",
    )
    ap.add_argument("--tmp", default=None, help="directory for generated files")
    args = ap.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    ops = ["edxml.parse", "edxml.stream", "lxml.parse", "edxml.bytes", "lxml.bytes"]
    ops += [] if args.no_write else ["edxml.write", "lxml.write"]

    try:
        import edxml

        has_write = hasattr(edxml, "write")
    except ImportError:  # pragma: no cover - run from the repository root
        sys.path.insert(0, str(ROOT))
        import edxml

        has_write = hasattr(edxml, "write")
    if not has_write:
        ops = [o for o in ops if not o.endswith("write")]
        print("edxml.write is missing: serialisation not measured")

    rows = []
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="edxml-bench-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"package-{size}.edxml"
            print(f"generating {label(size)} ...", file=sys.stderr, flush=True)
            generate(path, size)
            repeat = max(1, min(400, 20_000_000 // size))
            results = {}
            for op in ops:
                if op.endswith(".bytes") and size > BYTES_MAX:
                    continue
                print(f"  {op} x{repeat} ...", file=sys.stderr, flush=True)
                results[op] = measure(op, path, repeat, args.sink, args.clock)
            for op in results:
                r = results[op]
                mbps = r["bytes"] / r["seconds"] / 1e6
                base_op = BASELINE.get(op, "lxml.parse")
                b = results[base_op]
                ratio = mbps / (b["bytes"] / b["seconds"] / 1e6)
                rows.append(
                    (
                        label(os.path.getsize(path)),
                        op,
                        f"{mbps:8.1f}",
                        f"{r['hwm_kb'] / 1024:8.1f}",
                        f"{(r['hwm_kb'] - r['base_kb']) / 1024:8.1f}",
                        f"{ratio * 100:6.0f} %",
                    )
                )
            path.unlink()
    head = ("package", "operation", "MB/s", "peak RSS MB", "+ over import", "vs lxml")
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(str(cell).rjust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
