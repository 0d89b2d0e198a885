"""The metadata database a `Config` names: SQLite in the data directory, or the PostgreSQL of
`[database] url` (docs/operations.md "The database")."""

from __future__ import annotations

from server.runtime.config import Config, database_password
from storage.backends import open_database
from storage.db import Database


def database_target(config: Config) -> str:
    """Where the metadata live, for messages: the SQLite file, or the URL (no password)."""
    return config.database.url or str(config.db_path)


async def open_config_database(config: Config, *, writer_lock: bool = False) -> Database:
    """Open the database of `config` (migrations applied). `writer_lock`: several server
    processes on one SQLite file (ignored on PostgreSQL, which has no single writer)."""
    if config.database.url is not None:
        return await open_database(
            config.database.url,
            password=database_password(config.database),
            pool_size=config.database.pool_size,
        )
    return await open_database(config.db_path, writer_lock=writer_lock)
