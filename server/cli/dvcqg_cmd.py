"""``lienthong dossier export-dvcqg | dvcqg-dead | dvcqg-retry``: the DVCQG sync of dossiers, on
a local data directory (docs/dossiers.md, "DVCQG sync"). Like ``lienthong agency``, these open
the database directly: a running server may use it at the same time."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.dossiers.dvcqg import VN, export, requeue
from storage.db import Database
from storage.repos.dvcqg import DvcqgRepo, SyncState


def register(cmds: Any) -> None:
    """Add the DVCQG commands to ``lienthong dossier``."""
    exp = cmds.add_parser(
        "export-dvcqg", help="write dossiers changed since DATE in the DVCQG JSON shapes"
    )
    exp.add_argument(
        "--since", required=True, metavar="DATE", help="YYYY-MM-DD (+07:00) or ISO 8601 time"
    )
    exp.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    add_local_options(exp)
    exp.set_defaults(func=cmd_export)

    dead = cmds.add_parser("dvcqg-dead", help="dossiers the DVCQG sync gave up on")
    dead.add_argument("--json", action="store_true", help="print the items as JSON lines")
    retry = cmds.add_parser("dvcqg-retry", help="requeue a dossier of the dead-letter list")
    retry.add_argument("code", metavar="CODE")
    for parser, func in ((dead, cmd_dead), (retry, cmd_retry)):
        add_local_options(parser)
        parser.set_defaults(func=func)


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight in +07:00) or an ISO 8601 time (+07:00 when it has no zone)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--since: {text!r} is not YYYY-MM-DD or an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=VN)


def cmd_export(args: argparse.Namespace) -> int:
    """Write the dossiers changed since ``--since`` and their steps to ``-o FILE``."""
    config = local_config(args)
    since = parse_since(args.since)
    document = with_database(config, lambda database: export(database, since))
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    try:
        args.output.write_text(text, "utf-8")
    except OSError as exc:
        raise CliError(f"-o: cannot write {args.output}: {exc.strerror or exc}") from None
    count = len(document["DongBoHoSoMC"]["data"])
    steps = len(document["CapNhatTienDoHoSoMC"]["data"])
    print(f"{count} dossier(s), {steps} step(s) written to {args.output}")
    return 0


def _item(state: SyncState) -> dict[str, Any]:
    return {
        "code": state.dossier,
        "attempts": state.attempts,
        "dead_at": None if state.dead_at is None else state.dead_at.astimezone(VN).isoformat(),
        "synced_at": None
        if state.synced_at is None
        else state.synced_at.astimezone(VN).isoformat(),
        "last_error": state.last_error,
    }


def cmd_dead(args: argparse.Namespace) -> int:
    """Print the dead-letter list."""
    config = local_config(args)

    async def load(database: Database) -> list[SyncState]:
        async with database.reader() as tx:
            return await DvcqgRepo(tx).dead()

    items = [_item(s) for s in with_database(config, load)]
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    if not items:
        print("No dossier on the DVCQG dead-letter list.")
        return 0
    rows = [
        (i["code"], str(i["attempts"]), i["dead_at"], i["synced_at"] or "-", i["last_error"])
        for i in items
    ]
    print(render_table(("CODE", "ATTEMPTS", "DEAD SINCE", "LAST SYNCED", "LAST ERROR"), rows))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Take a dossier off the dead-letter list: the next pass pushes it again."""
    config = local_config(args)
    if not with_database(config, lambda database: requeue(database, args.code)):
        raise CliError(f"{args.code} is not on the DVCQG dead-letter list")
    print(f"{args.code} requeued: the next DVCQG sync pass pushes it.")
    return 0
