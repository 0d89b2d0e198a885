"""``lienthong storage migrate --to s3``: move every object from the filesystem store to S3.

Resumable (a journal of moved objects in the data directory, and objects already in the bucket
are skipped), each object read back from S3 and checked by its SHA-256, with a progress bar;
the S3 version id of each object is recorded in the axis's database (``object_versions``),
and the server reads exactly that version.
When every object is there, the config file given with ``--config`` is switched to
``[storage] backend = "s3"``; without a writable config file the exact setting is printed.
The server keeps serving during the move: it reads the filesystem store until it is restarted
on S3, and on S3 it still reads the filesystem for anything not moved (docs/storage.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from server.cli import CliError, migrate_db_cmd
from server.cli.config_file import set_setting
from server.cli.http_client import Progress
from server.cli.options import add_local_options, local_config
from server.runtime.config import Config, ConfigError, load_config
from server.runtime.database import open_config_database
from server.runtime.objectstore import open_s3_store
from storage.db import Database
from storage.errors import StorageError
from storage.objects.fs import FilesystemObjectStore
from storage.objects.migrate import MigrationReport, filesystem_objects, migrate_objects

JOURNAL_NAME = "migrate-s3.journal"


def register(sub: Any) -> None:
    """Add ``storage migrate`` to the ``lienthong`` parser."""
    storage = sub.add_parser(
        "storage",
        help="the object store (filesystem or S3) and the metadata database (SQLite or PostgreSQL)",
    )
    cmds = storage.add_subparsers(dest="storage_command", metavar="SUBCOMMAND")
    cmds.required = True
    migrate = cmds.add_parser(
        "migrate",
        help="move every object from the filesystem store to S3, then switch the config",
    )
    migrate.add_argument("--to", required=True, choices=["s3"], help="the target backend")
    migrate.add_argument(
        "--limit", type=int, metavar="N", help="copy at most N objects this run (resume later)"
    )
    migrate.add_argument(
        "--no-switch", action="store_true", help="do not change the config file at the end"
    )
    add_local_options(migrate)
    migrate.set_defaults(func=cmd_migrate)
    migrate_db_cmd.register(cmds)


def set_backend(path: Path, backend: str) -> None:
    """Write ``backend = "<backend>"`` into the ``[storage]`` table of a TOML file (see
    :func:`set_setting`)."""
    set_setting(path, "storage", "backend", backend)


async def _migrate(config: Config, limit: int | None) -> MigrationReport:
    # The versions written to S3 are recorded in the axis's database (docs/storage.md).
    database = await open_config_database(config)
    try:
        return await _migrate_with(config, database, limit)
    finally:
        await database.close()


async def _migrate_with(config: Config, database: Database, limit: int | None) -> MigrationReport:
    source = FilesystemObjectStore(config.objects_dir)
    config.spool_dir.mkdir(parents=True, exist_ok=True)
    target = open_s3_store(config, database=database)
    total = sum(size for _, size in filesystem_objects(config.objects_dir))
    progress = Progress("migrate", total)

    def on_object(sha256: str, size: int, copied: bool) -> None:
        progress.update(size)

    try:
        await target.ensure_bucket()
        report = await migrate_objects(
            source,
            target,
            config.storage.data_dir / JOURNAL_NAME,
            limit=limit,
            on_object=on_object,
        )
    finally:
        progress.finish()
        await target.close()
    return report


def cmd_migrate(args: argparse.Namespace) -> int:
    """Move the objects, then switch the config (see the module docstring)."""
    config = local_config(args)
    if args.limit is not None and args.limit < 0:
        raise CliError("--limit must be 0 or more")
    if not config.objects_dir.is_dir():
        raise CliError(f"no filesystem object store at {config.objects_dir}")
    try:
        report = asyncio.run(_migrate(config, args.limit))
    except (ConfigError, StorageError) as exc:
        raise CliError(str(exc)) from None
    print(
        f"{report.total} objects: {report.copied} copied and checked "
        f"({report.bytes_copied / 1e6:.1f} MB), {report.skipped} already in "
        f"s3://{config.s3.bucket}, {report.remaining} left."
    )
    if not report.complete:
        print("Run the same command again to move the rest (it resumes where it stopped).")
        return 3
    if config.storage.backend == "s3":
        print('The configuration already uses storage.backend = "s3".')
        return 0
    if args.no_switch:
        print('Every object is in S3. To switch, set [storage] backend = "s3".')
        return 0
    if args.config is not None and os.access(args.config, os.W_OK):
        set_backend(args.config, "s3")
        try:
            switched = load_config(args.config, data_dir=args.data_dir)
        except ConfigError as exc:
            raise CliError(f"{args.config} after the switch: {exc}") from None
        if switched.storage.backend != "s3":
            print(
                "lienthong: note: LIENTHONG_STORAGE_BACKEND overrides the file; unset it",
                file=sys.stderr,
            )
        print(f'Switched {args.config} to [storage] backend = "s3"; restart the server.')
        return 0
    print(
        "Every object is in S3. No writable config file was given (--config), so switch by "
        'hand: set [storage] backend = "s3" in your config, or LIENTHONG_STORAGE_BACKEND=s3; '
        "then restart the server."
    )
    return 0
