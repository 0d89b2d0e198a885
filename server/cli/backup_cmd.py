"""``lienthong backup DIR`` and ``lienthong restore DIR``: a consistent copy of an axis while it
serves, and a fresh data directory made from one (docs/operations.md).

A backup is the database, copied with SQLite's online backup API, then the object files. Small
objects kept in the database itself (``inline_objects``, storage/objects/inline.py) come with it.

Why this order is consistent: objects are content-addressed and immutable, a send stores its
object *before* the transaction that names it commits, and an object is deleted only by the
start-up sweep of objects that no row names (server/exchange/delivery.py). So every object the
database
snapshot names already existed when the snapshot was taken and still exists when the copy of the
objects runs after it. The other order would not do: a send that committed between the copy of
the objects and the snapshot would leave a row naming an object the backup lacks. Objects that
arrive after the snapshot are copied too and are harmless (no row names them; nothing sweeps them
without an intent record).

The snapshot: ``sqlite3.Connection.backup`` with all pages in one step holds one read
transaction, so it is the database as of one commit; in WAL mode the server keeps writing
meanwhile (readers never block the writer). The copy is checked with ``PRAGMA integrity_check``
and the backup is checked complete: every document's object is in it.

Not in a backup: the secrets key (``secrets.key``, or LIENTHONG_SECRETS_KEY), which must be kept
apart from the database it unlocks (``--with-secrets-key`` copies it anyway), the spool (uploads
in flight) and the workers' metric files. With ``storage.backend = "s3"`` the objects stay in the
bucket (under Object Lock); only the database is copied, and the bucket is protected by the
store's own replication or versioning.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.database import require_database
from server.cli.options import add_local_options, local_config
from server.runtime import secretbox
from server.runtime.config import Config
from storage.private import DIR_MODE, copy_file, create_file, make_dir, write_file

DB_NAME = "lienthong.sqlite3"
OBJECTS_NAME = "objects"
MANIFEST_NAME = "backup.json"


def register(sub: Any) -> None:
    """Add ``backup`` and ``restore`` to the ``lienthong`` parser."""
    backup = sub.add_parser(
        "backup",
        help="copy the database (online) and the objects of this axis into a new directory",
    )
    backup.add_argument("dir", type=Path, metavar="DIR", help="the backup directory (new)")
    backup.add_argument(
        "--with-secrets-key",
        action="store_true",
        help="also copy secrets.key (keep such a backup as safe as the key itself)",
    )
    add_local_options(backup)
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="make the data directory (--data-dir) from a backup directory"
    )
    restore.add_argument("dir", type=Path, metavar="DIR", help="a directory made by backup")
    add_local_options(restore)
    restore.set_defaults(func=cmd_restore)


def _empty_dir(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CliError(f"{path} exists and is not an empty directory")
    make_dir(path)
    os.chmod(path, DIR_MODE)  # an empty directory made beforehand becomes private too


def snapshot_database(source: Path, target: Path) -> None:
    """Copy the database ``source`` into ``target`` with SQLite's online backup (one step, so
    one read transaction: the database as of one commit); check the copy's integrity."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    os.close(create_file(partial, os.O_WRONLY | os.O_EXCL))  # 0600; SQLite keeps the mode
    # Not read-only: a reader of a WAL database must be able to use its shared-memory file.
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: every page in one step
            # A backup is one file: no WAL beside it.
            dst.execute("PRAGMA journal_mode = DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise CliError(f"the copy of the database is damaged: {check}")
        finally:
            dst.close()
    finally:
        src.close()
    os.replace(partial, target)


def copy_objects(source: Path, target: Path) -> tuple[int, int]:
    """Copy every object file under ``source`` (skipping its tmp/) to the same place under
    ``target``; return (files, bytes). Directories are made 0700 and files 0600, whatever the
    source's modes; modification times are kept."""
    files = size = 0
    for directory, subdirs, names in os.walk(source):
        here = Path(directory)
        if here == source:
            subdirs[:] = [d for d in subdirs if d != "tmp"]  # half-written uploads
        make_dir(target / here.relative_to(source))  # parents first: os.walk goes top-down
        for name in names:
            origin = here / name
            dest = target / origin.relative_to(source)
            try:
                copy_file(origin, dest)
            except FileNotFoundError:  # swept since the walk listed it: no row names it
                continue
            files += 1
            size += dest.stat().st_size
    return files, size


def missing_objects(db: Path, objects: Path) -> list[str]:
    """Digests of documents whose object is neither kept in the database (``inline_objects``,
    copied with it) nor a file under ``objects``."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        digests = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT sha256 FROM documents"
                " WHERE sha256 NOT IN (SELECT sha256 FROM inline_objects)"
            )
        ]
    finally:
        conn.close()
    return [d for d in digests if not (objects / d[:2] / d[2:4] / d).is_file()]


def inline_objects(db: Path) -> int:
    """How many objects the database keeps itself (table ``inline_objects``)."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM inline_objects").fetchone()[0])
    finally:
        conn.close()


def backup(config: Config, target: Path, *, with_key: bool = False) -> dict[str, Any]:
    """Back the axis of ``config`` up into ``target`` (new or empty); return the manifest."""
    require_database(config)
    _empty_dir(target)
    started = time.time()
    snapshot_database(config.db_path, target / DB_NAME)
    snapshot_at = time.time()
    manifest: dict[str, Any] = {
        "format": "lienthong-backup/1",
        "snapshot_at": snapshot_at,
        "backend": config.storage.backend,
        # Small objects kept in the database (storage/objects/inline.py): in the snapshot.
        "inline_objects": inline_objects(target / DB_NAME),
    }
    if config.storage.backend == "fs":
        files, size = copy_objects(config.objects_dir, target / OBJECTS_NAME)
        missing = missing_objects(target / DB_NAME, target / OBJECTS_NAME)
        if missing:
            raise CliError(
                f"{len(missing)} object(s) named by the database are missing from the data "
                f"directory (first: {missing[0]}): the backup in {target} is incomplete"
            )
        manifest.update(objects=files, object_bytes=size)
    if with_key:
        key = secretbox.key_path(config.storage.data_dir)
        if key.is_file():
            copy_file(key, target / secretbox.KEY_FILE_NAME)
            manifest["secrets_key"] = True
    manifest["seconds"] = round(time.time() - started, 3)
    write_file(target / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def restore(config: Config, source: Path) -> dict[str, Any]:
    """Make the data directory of ``config`` from the backup ``source``; return its manifest.

    The data directory must not hold a database: a restore never overwrites an axis."""
    try:
        manifest = json.loads((source / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        raise CliError(f"{source} is not a backup made by `lienthong backup`") from None
    data = config.storage.data_dir
    if config.db_path.exists():
        raise CliError(f"{config.db_path} exists: restore into a new data directory")
    make_dir(data)
    if manifest.get("backend") == "fs":
        copy_objects(source / OBJECTS_NAME, config.objects_dir)
    key = source / secretbox.KEY_FILE_NAME
    if key.is_file() and not secretbox.key_path(data).exists():
        copy_file(key, secretbox.key_path(data))
    # The database last: a data directory with a database is a complete one.
    partial = config.db_path.with_name(DB_NAME + ".partial")
    partial.unlink(missing_ok=True)
    copy_file(source / DB_NAME, partial)
    os.replace(partial, config.db_path)
    return dict(manifest)


def _sqlite_only(config: Config) -> None:
    if config.database.postgresql:
        raise CliError(
            "backup and restore copy the SQLite database; with [database] url on PostgreSQL, "
            "back it up with PostgreSQL's tools (pg_dump, pg_basebackup) and the objects apart"
        )


def cmd_backup(args: argparse.Namespace) -> int:
    """``lienthong backup DIR``."""
    config = local_config(args)
    _sqlite_only(config)
    manifest = backup(config, args.dir, with_key=args.with_secrets_key)
    objects = (
        f"{manifest['objects']} objects ({manifest['object_bytes']} bytes)"
        if "objects" in manifest
        else "no object files (they stay in the S3 bucket)"
    ) + f", {manifest['inline_objects']} small objects in the database"
    print(f"backup in {args.dir}: the database and {objects}, {manifest['seconds']} s")
    if not manifest.get("secrets_key"):
        print(
            "the secrets key is not in the backup: keep a copy of it apart "
            f"({secretbox.key_path(config.storage.data_dir)} or ${secretbox.KEY_ENV})"
        )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """``lienthong restore DIR --data-dir NEW``."""
    config = local_config(args)
    _sqlite_only(config)
    restore(config, args.dir)
    print(f"restored {args.dir} into {config.storage.data_dir}")
    return 0
