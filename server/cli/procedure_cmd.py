"""``lienthong procedure import | add | list``: the procedure catalogue of one-stop dossiers.

Like ``agency``, these open the metadata database of the data directory directly. Every change
is written to the audit chain in the transaction that makes it; a file is imported all or
nothing. The file formats are in docs/dossiers.md (server/dossiers/procedure_files.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.dossiers.catalogue import Located, StoreReport, from_row, store_procedures
from server.dossiers.errors import InvalidProcedure
from server.dossiers.procedure_files import (
    components_cell,
    fees_cell,
    read_procedure_file,
    steps_cell,
)
from server.dossiers.procedures import Procedure, procedure_from_mapping
from server.runtime.audit import ADMIN
from storage.db import Database
from storage.repos.procedures import ProcedureRepo

LEVELS = ("full", "partial", "none")


def register(sub: Any) -> None:
    """Add ``procedure import|add|list`` to the ``lienthong`` parser."""
    procedure = sub.add_parser(
        "procedure", help="the procedure catalogue (thủ tục hành chính) of one-stop dossiers"
    )
    cmds = procedure.add_subparsers(dest="procedure_command", metavar="SUBCOMMAND")
    cmds.required = True

    imp = cmds.add_parser(
        "import", help="add or update procedures from a CSV or JSON file (all or nothing)"
    )
    imp.add_argument("file", metavar="FILE", type=Path, help="CSV or JSON, see docs/dossiers.md")
    add_local_options(imp)
    imp.set_defaults(func=cmd_import)

    add = cmds.add_parser("add", help="add one procedure")
    add.add_argument("code", metavar="CODE", help="national code (mã thủ tục), e.g. 1.001193")
    add.add_argument("--name", required=True, help="e.g. 'Đăng ký khai sinh'")
    add.add_argument("--agency", required=True, metavar="ORGANID", help="the competent agency")
    add.add_argument("--days", required=True, metavar="N", help="processing time in days")
    add.add_argument(
        "--calendar-days", action="store_true", help="the days are calendar days, not working days"
    )
    add.add_argument("--field", help="lĩnh vực, e.g. 'Hộ tịch'")
    add.add_argument(
        "--online-level", choices=LEVELS, default="none", help="full: toàn trình; partial: một phần"
    )
    add.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="CODE[*]=NAME",
        help="a dossier component (thành phần hồ sơ), * when required; repeatable",
    )
    add.add_argument(
        "--fee", action="append", default=[], metavar="VND=TEXT", help="a fee; repeatable"
    )
    add.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="ORGANID=DAYS",
        help="a step across agencies; repeatable, the days add up to --days",
    )
    add_local_options(add)
    add.set_defaults(func=cmd_add)

    lst = cmds.add_parser("list", help="list the procedures")
    add_local_options(lst)
    lst.set_defaults(func=cmd_list)


def _store(
    args: argparse.Namespace, entries: Sequence[Located], source: str, *, new: bool = False
) -> StoreReport:
    """Store ``entries`` in one transaction; ``new``: refuse a code already in the catalogue."""
    config = local_config(args)

    async def store(database: Database) -> StoreReport:
        async with database.transaction() as tx:
            for entry in entries if new else ():
                if await ProcedureRepo(tx).get(entry.procedure.code) is not None:
                    raise CliError(
                        f"procedure {entry.procedure.code} already exists"
                        " (change it with `lienthong procedure import`)"
                    )
            return await store_procedures(tx, entries, ADMIN, source)

    try:
        return with_database(config, store)
    except InvalidProcedure as exc:
        raise CliError(_option_message(exc) if new else f"{source}: {exc.detail}") from None


def cmd_import(args: argparse.Namespace) -> int:
    """Import a CSV or JSON file of procedures: idempotent by code, all or nothing."""
    path: Path = args.file
    try:
        entries = read_procedure_file(path)
    except InvalidProcedure as exc:
        raise CliError(f"{path}: {exc.detail}") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not entries:
        raise CliError(f"{path} holds no procedure")
    report = _store(args, entries, str(path))
    print(f"Imported {path.name}: {report.summary()}.")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Add one procedure; a code already in the catalogue is refused."""
    try:
        procedure = procedure_from_mapping(
            {
                "code": args.code,
                "name": args.name,
                "field": args.field,
                "agency": args.agency,
                "days": args.days,
                "calendar_days": args.calendar_days,
                "online_level": args.online_level,
                "components": components_cell(";".join(args.component)),
                "fees": fees_cell(";".join(args.fee)),
                "steps": steps_cell(";".join(args.step)),
            }
        )
    except InvalidProcedure as exc:
        raise CliError(_option_message(exc)) from None
    _store(args, [Located("the command line", procedure)], "cli", new=True)
    print(f"Added procedure {procedure.code} ({procedure.name}), {procedure.time_text}.")
    return 0


# The option of `procedure add` each field of a procedure comes from.
_OPTIONS = {
    "components": "--component",
    "fees": "--fee",
    "steps": "--step",
    "calendar_days": "--calendar-days",
    "online_level": "--online-level",
}


def _option_message(exc: InvalidProcedure) -> str:
    """A refusal of ``procedure add`` in the words of its options (``--fee: item 1 ...``)."""
    first, _, rest = exc.field.partition(" ")
    if first == "code":
        return f"CODE: {exc.message}"
    option = _OPTIONS.get(first, f"--{first}")
    return f"{option}: {rest + ' ' if rest else ''}{exc.message}"


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalogue as a table (Vietnamese names intact, columns aligned)."""
    config = local_config(args)

    async def load(database: Database) -> list[Procedure]:
        async with database.reader() as tx:
            return [from_row(r) for r in await ProcedureRepo(tx).list()]

    procedures = with_database(config, load)
    if not procedures:
        print("No procedures yet: import some with `lienthong procedure import FILE`.")
        return 0
    rows = [
        (
            p.code,
            p.name,
            p.field,
            p.agency,
            p.time_text,
            p.online_level.label,
            sum(c.required for c in p.components),
            len(p.components),
        )
        for p in procedures
    ]
    headers = ("CODE", "NAME", "FIELD", "AGENCY", "TIME", "ONLINE", "REQUIRED", "COMPONENTS")
    print(render_table(headers, rows))
    return 0
