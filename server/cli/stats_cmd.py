"""``lienthong stats rebuild | fold``: the dashboard's daily rollups (docs/dashboard.md).

``rebuild`` forgets every rollup and recomputes it from the raw rows (documents, deliveries,
statuses, verification reports, dossiers and their events, feedback); a running server keeps
answering from the rollups meanwhile, and its fold job picks up whatever arrives. ``fold``
folds the cells queued since the last fold (what the server's job does every few seconds).
"""

from __future__ import annotations

import argparse
from typing import Any

from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.stats.rollups import fold, rebuild


def register(sub: Any) -> None:
    """Add ``stats`` and its sub-commands to the ``lienthong`` parser."""
    stats = sub.add_parser("stats", help="the dashboard's daily rollups")
    cmds = stats.add_subparsers(dest="stats_command", metavar="SUBCOMMAND")
    cmds.required = True
    again = cmds.add_parser("rebuild", help="recompute every rollup from the raw rows")
    add_local_options(again)
    again.set_defaults(func=cmd_rebuild)
    queued = cmds.add_parser("fold", help="fold the cells queued since the last fold")
    add_local_options(queued)
    queued.set_defaults(func=cmd_fold)


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Recompute every rollup cell from the raw rows."""
    cells = with_database(local_config(args), rebuild)
    print(f"Rebuilt {cells} rollup cells from the raw rows.")
    return 0


def cmd_fold(args: argparse.Namespace) -> int:
    """Fold the queued rollup cells."""
    cells = with_database(local_config(args), fold)
    print(f"Folded {cells} queued rollup cells.")
    return 0
