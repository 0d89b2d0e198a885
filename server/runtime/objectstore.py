"""Which object store the axis uses, from its configuration (``[storage] backend``).

- ``fs``: the content-addressed files under ``<data_dir>/objects``.
- ``s3``: the bucket of the ``[s3]`` section, with the filesystem store as a *read* fallback
  for objects not yet moved there (``lienthong storage migrate --to s3``; docs/storage.md).

With the metadata database given (the axis), packages up to ``[storage] inline_max_bytes`` are
kept in the database on the filesystem backend (storage/objects/inline.py; on S3 they are only
read from there, if kept before a migration), and the filesystem store's directory fsyncs are
batched with the database's group commit.

On S3 the store reads the version the axis wrote of each object, never just the latest one of
its key: the versions are recorded in the metadata database (``object_versions``), and when
the latest version of a key is someone else's the alarm is logged at ERROR, counted in the
metric ``lienthong_object_integrity_alarms`` and appended to the audit log
(storage/objects/s3.py, docs/storage.md).

The S3 keys come from ``LIENTHONG_S3_ACCESS_KEY`` / ``LIENTHONG_S3_SECRET_KEY`` or from the
files ``s3.access_key_file`` / ``s3.secret_key_file``; they are never logged and never part of
a repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from server.runtime import audit
from server.runtime.config import Config, ConfigError
from server.runtime.metrics import Metrics
from storage.db import Database, SqliteDatabase
from storage.objects.base import ObjectStore
from storage.objects.fs import FilesystemObjectStore
from storage.objects.inline import InlineObjectStore
from storage.objects.s3 import AlarmHandler, S3ObjectStore, S3Settings, VersionAlarm
from storage.objects.tiered import FallbackObjectStore
from storage.objects.versions import DatabaseVersionBook

ACCESS_KEY_ENV = "LIENTHONG_S3_ACCESS_KEY"
SECRET_KEY_ENV = "LIENTHONG_S3_SECRET_KEY"  # noqa: S105 (a variable's name, not a secret)


def _secret(env: Mapping[str, str], var: str, file: Path | None, what: str) -> str:
    value = env.get(var)
    if value:
        return value.strip()
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            detail = f"setting s3.{what}_file: cannot read {file}: {exc.strerror}"
            raise ConfigError(detail) from None
        if text:
            return text
        raise ConfigError(f"setting s3.{what}_file: {file} is empty")
    raise ConfigError(f"the S3 {what.replace('_', ' ')} is missing: set {var} or s3.{what}_file")


def s3_settings(config: Config, env: Mapping[str, str] = os.environ) -> S3Settings:
    """The S3 settings of ``config`` with the keys from the environment or their files."""
    section = config.s3
    if not section.endpoint:
        raise ConfigError("setting s3.endpoint: required to use S3")
    return S3Settings(
        endpoint=section.endpoint,
        bucket=section.bucket,
        access_key=_secret(env, ACCESS_KEY_ENV, section.access_key_file, "access_key"),
        secret_key=_secret(env, SECRET_KEY_ENV, section.secret_key_file, "secret_key"),
        region=section.region,
        secure=section.secure,
        prefix=section.prefix,
        retention_years=section.retention_years,
        part_size=section.part_size,
        parallel_parts=section.parallel_parts,
    )


def integrity_alarm(database: Database, metrics: Metrics | None = None) -> AlarmHandler:
    """What the axis does when the latest version of a key is not its own (the store has
    logged it at ERROR already): count it and append it to the audit log."""

    async def on_alarm(alarm: VersionAlarm) -> None:
        if metrics is not None:
            metrics.object_alarms.labels(alarm.kind).inc()
        await audit.record_object_alarm(
            database, alarm.sha256, alarm.key, alarm.kind, alarm.ours, alarm.latest
        )

    return on_alarm


def open_s3_store(
    config: Config,
    env: Mapping[str, str] = os.environ,
    *,
    database: Database | None = None,
    metrics: Metrics | None = None,
) -> S3ObjectStore:
    """An S3 store for ``config`` spooling uploads in the data directory's spool, recording
    and reading its versions in ``database`` (without one, only for the process's life)."""
    if database is None:
        return S3ObjectStore(s3_settings(config, env), spool_dir=config.spool_dir)
    return S3ObjectStore(
        s3_settings(config, env),
        spool_dir=config.spool_dir,
        versions=DatabaseVersionBook(database),
        on_alarm=integrity_alarm(database, metrics),
    )


async def open_object_store(
    config: Config,
    env: Mapping[str, str] = os.environ,
    *,
    database: Database | None = None,
    metrics: Metrics | None = None,
) -> ObjectStore:
    """The object store selected by ``storage.backend``, ready to use; on S3 its versions are
    recorded in ``database`` (the axis always gives it) and alarms counted in ``metrics``.

    For S3 the bucket is created (with Object Lock) when missing; StorageError/
    StorageUnavailable when it cannot be reached, so a misconfigured axis stops at start-up.
    """
    # With the database, the filesystem's directory fsyncs wait for its next COMMIT (one per
    # directory per group commit; storage/objects/fs.py).
    # Only the SQLite database runs before-commit hooks; on PostgreSQL each put still fsyncs
    # its directories before it returns.
    sqlite = database if isinstance(database, SqliteDatabase) else None
    filesystem = FilesystemObjectStore(config.objects_dir, defer_dir_syncs=sqlite is not None)
    if sqlite is not None:
        sqlite.add_before_commit(filesystem.sync_dirs)
    store: ObjectStore = filesystem
    if config.storage.backend == "s3":
        s3 = open_s3_store(config, env, database=database, metrics=metrics)
        try:
            await s3.ensure_bucket()
        except BaseException:
            await s3.close()
            raise
        store = FallbackObjectStore(s3, filesystem)
    if database is not None:
        # On S3 every new object goes to the locked bucket (Object Lock is why one runs on S3);
        # objects kept in the database while on the filesystem stay readable there.
        inline = config.storage.inline_max_bytes if config.storage.backend == "fs" else 0
        store = InlineObjectStore(store, database, inline)
    return store


async def close_object_store(store: ObjectStore) -> None:
    """Release what the store holds (the S3 client's thread pool)."""
    if isinstance(store, InlineObjectStore):
        store = store.backing
    if isinstance(store, FallbackObjectStore):
        store = store.primary
    if isinstance(store, S3ObjectStore):
        await store.close()
