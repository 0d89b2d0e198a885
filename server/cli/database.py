"""The metadata database of a local data directory, for the commands that work on one.

``init``, ``agency``, ``token``, ``demo``, ``audit``, ``deliveries``, ``route``, ``archive renew``
and ``agency secret`` open the database file directly (a running server may use it at the same
time: SQLite's WAL and busy timeout let both write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from server.cli import CliError
from server.runtime.config import Config
from server.runtime.database import database_target, open_config_database
from storage.db import Database
from storage.errors import Conflict, NotFound, StorageError

T = TypeVar("T")


def require_database(config: Config) -> None:
    """CliError unless the database of ``config`` exists.

    A mistyped ``--data-dir`` must not silently start (or create) an empty axis.
    """
    if config.database.url is None and not config.db_path.is_file():
        raise CliError(
            f"no database at {config.db_path}: run `lienthong init` (with the same --data-dir)"
        )


def with_database(
    config: Config, work: Callable[[Database], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the database of ``config``, run ``work`` on it, close it; storage errors -> one line.

    Without ``create`` a missing database is an error (:func:`require_database`).
    """
    if not create:
        require_database(config)

    async def main() -> T:
        database = await open_config_database(config)
        try:
            return await work(database)
        finally:
            await database.close()

    try:
        return asyncio.run(main())
    except (Conflict, NotFound) as exc:
        raise CliError(str(exc)) from None
    except StorageError as exc:
        raise CliError(f"database {database_target(config)}: {exc}") from None
