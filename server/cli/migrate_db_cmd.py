"""``lienthong storage migrate-db --to postgresql://...``: move a data directory's metadata from
SQLite to PostgreSQL (issue 20; storage/dbcopy.py does the copy and its checks).

Stop the axis first (the copy holds SQLite's write lock for its whole run, so a running axis
could not write anyway). The target must be an empty database the role owns, or this source's
own copy interrupted earlier (the command continues it). When the rows are counted equal and
the audit chain verifies on the target, the config file given with ``--config`` is switched to
``[database] url = "..."`` (the url without its password); without a writable config file the
setting to make is printed. Then start the axis again: it runs on PostgreSQL, and the SQLite
file stays as it was (a fallback until you remove it).

The password comes from the url, else LIENTHONG_DATABASE_PASSWORD, else the config's
``[database] password_file``; it is never written to the config.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from server.cli import CliError
from server.cli.config_file import set_setting
from server.cli.options import add_local_options, local_config
from server.runtime.config import ConfigError, database_password, load_config
from storage.backends import is_postgres_url, with_password
from storage.dbcopy import DEFAULT_BATCH_ROWS, CopyReport, copy_database
from storage.errors import StorageError


def register(cmds: Any) -> None:
    """Add ``storage migrate-db`` to the ``storage`` command group."""
    migrate_db = cmds.add_parser(
        "migrate-db",
        help="copy the SQLite database into PostgreSQL, check it, then switch the config",
    )
    migrate_db.add_argument(
        "--to", required=True, metavar="URL", help="the empty PostgreSQL database: postgresql://…"
    )
    migrate_db.add_argument(
        "--batch-rows",
        type=int,
        default=DEFAULT_BATCH_ROWS,
        metavar="N",
        help=f"rows sent per COPY (default {DEFAULT_BATCH_ROWS})",
    )
    migrate_db.add_argument(
        "--no-switch", action="store_true", help="do not change the config file at the end"
    )
    add_local_options(migrate_db)
    migrate_db.set_defaults(func=cmd_migrate_db)


def bare_url(url: str) -> str:
    """`url` without its password (what a config may hold)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@")))


def _run(source: Path, url: str, batch_rows: int) -> CopyReport:
    """The copy, with a line of progress on a terminal (the table and its rows sent)."""
    shown = sys.stderr.isatty()

    def on_batch(table: str, sent: int) -> None:
        if shown:
            sys.stderr.write(f"\rmigrate-db: {table}: {sent} rows\x1b[K")
            sys.stderr.flush()

    try:
        return asyncio.run(copy_database(source, url, batch_rows=batch_rows, on_batch=on_batch))
    finally:
        if shown:
            sys.stderr.write("\r\x1b[K")


def cmd_migrate_db(args: argparse.Namespace) -> int:
    """Copy, check, switch (see the module docstring)."""
    config = local_config(args)
    if not is_postgres_url(args.to):
        raise CliError("--to must be a postgresql:// url")
    if config.database.url is not None:
        raise CliError(f"this configuration already uses PostgreSQL ({config.database.url})")
    if not config.db_path.is_file():
        raise CliError(f"no database at {config.db_path}: nothing to copy")
    try:
        password = urlsplit(args.to).password or database_password(config.database)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    target = bare_url(args.to)
    try:
        report = _run(config.db_path, with_password(target, password), args.batch_rows)
    except StorageError as exc:
        raise CliError(f"migrate-db: {exc}") from None
    copied = sum(1 for t in report.tables if t.copied)
    kept = len(report.tables) - copied
    print(
        f"{len(report.tables)} tables, {report.rows} rows: {copied} tables "
        f"({report.rows_copied} rows) copied now"
        + (f", {kept} kept from the interrupted run" if report.resumed else "")
        + f"; row counts equal; audit chain verified ({report.audit_entries} entries"
        + (f", head {report.audit_head[0]}" if report.audit_head else "")
        + f"); {report.sequences} sequences advanced."
    )
    return _switch(args, target)


def _switch(args: argparse.Namespace, url: str) -> int:
    setting = f'[database] url = "{url}"'
    if args.no_switch:
        print(f"To switch, set {setting} (its password apart); then restart the axis.")
        return 0
    if args.config is None or not args.config.is_file() or not _writable(args.config):
        print(
            "No writable config file was given (--config), so switch by hand: set "
            f"{setting} in your config, or LIENTHONG_DATABASE_URL; give the password with "
            "LIENTHONG_DATABASE_PASSWORD or [database] password_file; then restart the axis."
        )
        return 0
    set_setting(args.config, "database", "url", url)
    try:
        switched = load_config(args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        raise CliError(f"{args.config} after the switch: {exc}") from None
    if switched.database.url != url:
        print(
            "lienthong: note: LIENTHONG_DATABASE_URL overrides the file; unset it", file=sys.stderr
        )
    print(
        f"Switched {args.config} to {setting}; give the axis the password "
        "(LIENTHONG_DATABASE_PASSWORD or [database] password_file) and restart it."
    )
    return 0


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)
