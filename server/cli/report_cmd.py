"""``lienthong report monthly --month YYYY-MM -o FILE.xlsx [--agency ORGANID]``: the dashboard's
monthly workbook (server/stats/report.py) from the local data directory's rollups.

Run on the axis itself, it reads the database as an admin would: every agency, or ``--agency``
and those under it. Fold first (``lienthong stats fold``) when the server is not running, so
that what arrived since its last fold is in it. The file is written whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.stats.query import Viewer
from server.stats.report import monthly_report, parse_month


def register(sub: Any) -> None:
    """Add ``report`` and its sub-commands to the ``lienthong`` parser."""
    report = sub.add_parser("report", help="the dashboard's reports (.xlsx)")
    cmds = report.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    cmds.required = True
    monthly = cmds.add_parser("monthly", help="the monthly workbook: exchange, dossiers, feedback")
    monthly.add_argument("--month", required=True, metavar="YYYY-MM", help="e.g. 2026-11")
    monthly.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.xlsx")
    monthly.add_argument(
        "--agency", metavar="ORGANID", help="this agency and those under it (default: all)"
    )
    add_local_options(monthly)
    monthly.set_defaults(func=cmd_monthly)


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it."""
    directory = path.resolve().parent
    if not directory.is_dir():
        raise CliError(f"{path}: the folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".xlsx", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_monthly(args: argparse.Namespace) -> int:
    """Write the monthly workbook."""
    parse_month(args.month)  # a bad month is one line before the database is opened
    config = local_config(args)
    viewer = Viewer(config.server.axis_id, admin=True)
    data = with_database(
        config,
        lambda db: monthly_report(db, args.month, agency=args.agency, viewer=viewer),
    )
    _write_whole(args.output, data)
    print(f"Monthly report {args.month} written to {args.output} ({len(data)} bytes).")
    return 0
