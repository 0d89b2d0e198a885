"""``lienthong verify FILE... [--json] [--pdf-report OUT]``: verify PDF signatures offline.

Prints one Vietnamese paragraph per file (or, with ``--json``, the report of
``docs/verification.md``: one JSON document for one file, a list for several). A progress bar
goes to stderr when several files are checked on a terminal. Exit code 0 only when every
signature of every file passed (TOTAL_PASSED); 1 otherwise; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from server.cli import CliError


def _policy(args: argparse.Namespace) -> Any:
    from signing.trust import TrustStore, default_trust_store
    from signing.verify import VerificationPolicy

    store = default_trust_store() if not args.no_default_trust else TrustStore()
    for item in args.trust or []:
        path = Path(item)
        if path.is_dir():
            store.add_dir(path)
        else:
            store.add_file(path)
    return VerificationPolicy.with_roots(store.roots, online=args.online, timeout=args.timeout)


def _progress(done: int, total: int) -> None:
    if total < 2 or not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _cmd_verify(args: argparse.Namespace) -> int:
    from server.runtime.library_warnings import PROCESS_SETUP
    from signing.isolation import VerifierPool
    from signing.trust import TrustStoreError

    try:
        policy = _policy(args)
    except TrustStoreError as exc:
        raise CliError(str(exc)) from exc
    if args.pdf_report and len(args.files) != 1:
        raise CliError("--pdf-report takes exactly one input file", code=2)
    pool = VerifierPool(preload=PROCESS_SETUP)
    reports = []
    try:
        for i, name in enumerate(args.files):
            path = Path(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CliError(f"cannot read {name}: {exc.strerror}") from exc
            reports.append(pool.verify(data, policy, file_name=path.name))
            _progress(i + 1, len(args.files))
    finally:
        pool.close()
    if args.json:
        docs = [r.to_json() for r in reports]
        out: Any = docs[0] if len(docs) == 1 else docs
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        from signing.report import summary_vi

        for report in reports:
            print(summary_vi(report))
    if args.pdf_report:
        from signing.report_pdf import render_pdf_report

        Path(args.pdf_report).write_bytes(render_pdf_report(reports[0]))
    return 0 if reports and all(r.all_passed for r in reports) else 1


def register(sub: Any) -> None:
    """Add the ``verify`` command to the ``lienthong`` parser."""
    parser = sub.add_parser("verify", help="verify the signatures of PDF files (xác minh chữ ký)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="signed PDF files")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument(
        "--pdf-report", "--report", dest="pdf_report", metavar="OUT",
        help="write a printable PDF report (one input file)",
    )  # fmt: skip
    parser.add_argument(
        "--trust", action="append", metavar="PATH",
        help="extra trust anchor file or directory (repeatable)",
    )  # fmt: skip
    parser.add_argument("--no-default-trust", action="store_true", help="do not load certs/trust/")
    parser.add_argument(
        "--online", action="store_true", help="fetch OCSP/CRL responses over the network"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds allowed per file (default 5)"
    )
    parser.set_defaults(func=_cmd_verify)
