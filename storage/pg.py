"""The metadata database on PostgreSQL (issue 20), behind the interface of storage/db.py.

asyncpg, not psycopg 3: tests/services/postgres's check_pg.py measured on this machine about
half the client CPU per commit (38-57 us against 103-139 us) and 1.2-2.3x the commits/s from 8
and 32 connections, where the Python client and not the server sets the ceiling; it is
autocommit unless a transaction is opened, and its pool is part of the package.

What changes from SQLite, and how the callers do not see it:
- Placeholders: repositories write `?`, translated once per statement text to `$n`
  (storage/dialects.py).
- Concurrency: there is no single writer. Every `transaction()` is a real PostgreSQL
  transaction on a pooled connection, committed when the block ends (synchronous_commit: the
  COMMIT returns once durable, as SQLite's synchronous=FULL). PostgreSQL groups concurrent
  commits into one WAL flush by itself.
- Errors abort a PostgreSQL transaction (every later statement fails until ROLLBACK), whereas
  repositories catch a Conflict and carry on in the same transaction (receipts.py,
  certificates.py). So each write statement inside a transaction runs in a savepoint: a
  failing one undoes only itself, as in SQLite.
- Errors map to the same storage.errors: unique violation → Conflict, foreign key →
  MissingReference, disk full → StorageFull, no server → StorageUnavailable.
- Numbers: SUM of integers is NUMERIC in PostgreSQL; it comes back as an int (a float when it
  has a fraction), as SQLite gives it.
- Migrations: the same files, translated (storage/dialects.py) or overridden by
  NNNN_name.postgres.sql; applied under an advisory lock so that nodes starting together apply
  each once.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar, cast

import asyncpg

from storage.db import Database, Params, Row, Tx, load_migrations
from storage.dialects import migration_to_postgres, placeholders
from storage.errors import (
    Conflict,
    MissingReference,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from storage.ids import to_db_time, utcnow

T = TypeVar("T")

DEFAULT_POOL_MIN = 1
DEFAULT_POOL_MAX = 10
# A statement waits at most this long for a connection or a lock before failing.
DEFAULT_TIMEOUT_S = 30.0
# pg_advisory_lock key of the migration runner: hashtextextended('lienthong:migrations', 0)
# would do, a constant is simpler to find in pg_locks.
MIGRATION_LOCK = 0x4C54_4D49_4752  # "LTMIGR"

# What a driver call may raise: the server's errors, the client's, the socket's.
_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
_ROWCOUNT = re.compile(r"(\d+)$")
_WRITES = ("INSERT", "UPDATE", "DELETE")


def _translate(exc: BaseException) -> StorageError:
    """Map an asyncpg (or socket) error to the storage error the callers understand."""
    if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.ExclusionViolationError):
        return Conflict(str(exc))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return MissingReference(str(exc))
    if isinstance(exc, asyncpg.DiskFullError | asyncpg.OutOfMemoryError):
        return StorageFull("the database disk is full")
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.AdminShutdownError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError,
    ):
        return StorageUnavailable(f"the database is unavailable: {exc}")
    return StorageError(f"database error: {exc}")


def _rowcount(status: str) -> int:
    """The rows a command changed, from its status ("INSERT 0 3", "UPDATE 2", "SELECT 1")."""
    match = _ROWCOUNT.search(status or "")
    return int(match.group(1)) if match else 0


def _numeric(text: str) -> int | float:
    """NUMERIC as SQLite gives it: an int when whole, else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset of a connection given back: nothing beyond asyncpg's own (an open
    transaction rolled back). Its default also sends `SELECT pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL`, a round trip per transaction (measured by
    bench/nodes_bench.py: about 4.6 of 38 round trips per accepted package), for session state
    this code never leaves: its advisory locks are transaction-scoped (the migration runner's
    session lock is released in a `finally`), and it opens no cursor, LISTEN or SET."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text"
    )


class _NulText(StorageError):
    """A parameter holds a NUL character, which PostgreSQL text cannot hold (SQLite's can):
    no stored row has one, so a query looking for it finds nothing (fetchall, fetchone); a
    write of it is refused (a StorageError)."""


class PgTx(Tx):
    """A pooled PostgreSQL connection handed to repositories, inside a transaction."""

    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection, *, writable: bool) -> None:
        self._conn = conn
        self.writable = writable

    async def _run(self, fn: Callable[[], Awaitable[T]], sql: str, params: Params) -> T:
        # checked before sending: the server's refusal would abort the whole transaction
        if any(isinstance(p, str) and "\x00" in p for p in params):
            raise _NulText("PostgreSQL text cannot hold a NUL character")
        try:
            if self.writable and sql.lstrip()[:6].upper() in _WRITES:
                # a savepoint: a failing statement undoes only itself (module docstring)
                async with self._conn.transaction():
                    return await fn()
            return await fn()
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        text = placeholders(sql)
        status = await self._run(lambda: self._conn.execute(text, *params), sql, params)
        return _rowcount(status)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for each parameter row; return the total rows changed."""
        total = 0
        for row in rows:
            total += await self.execute(sql, row)
        return total

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return every row (asyncpg Records: by name or position)."""
        text = placeholders(sql)
        try:
            rows = await self._run(lambda: self._conn.fetch(text, *params), sql, params)
        except _NulText:
            return []
        return cast(list[Row], rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or None."""
        text = placeholders(sql)
        try:
            row = await self._run(lambda: self._conn.fetchrow(text, *params), sql, params)
        except _NulText:
            return None
        return cast(Row | None, row)

    async def serialize(self, name: str) -> None:
        """pg_advisory_xact_lock on a 64-bit hash of `name`: held until COMMIT or ROLLBACK, so
        the transactions serializing on `name` commit in the order they took it."""
        await self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))


class PgDatabase(Database):
    """The metadata database on PostgreSQL. Open with `await PgDatabase.connect(url)`."""

    dialect = "postgresql"

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self.url = url
        self._pool = pool
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        min_size: int = DEFAULT_POOL_MIN,
        max_size: int = DEFAULT_POOL_MAX,
        timeout: float = DEFAULT_TIMEOUT_S,  # noqa: ASYNC109 - asyncpg's own connect timeout
    ) -> PgDatabase:
        """Connect a pool to the database at `url` (postgresql://user:password@host:port/db)
        and apply pending migrations. Raises StorageUnavailable when the server cannot be
        reached."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                command_timeout=None,
                init=_init_connection,
                reset=_keep_session,
            )
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc
        db = cls(url, pool)
        try:
            await db._migrate()
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        """Close the pool; connections in use are closed when given back."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._closed:
            raise StorageError("the database is closed")
        try:
            conn = await self._pool.acquire()
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc
        try:
            yield conn
        except StorageUnavailable:
            with contextlib.suppress(Exception):  # already gone, or released by the pool
                conn.terminate()  # its state is unknown: the pool opens a new one in its place
            raise
        finally:
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    @contextlib.asynccontextmanager
    async def _in_transaction(self, *, writable: bool) -> AsyncIterator[Tx]:
        async with self._connection() as conn:
            tr = conn.transaction(
                isolation="read_committed" if writable else "repeatable_read", readonly=not writable
            )
            try:
                await tr.start()
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc
            try:
                yield PgTx(conn, writable=writable)
            except BaseException:
                with contextlib.suppress(Exception):
                    await tr.rollback()
                raise
            try:
                await tr.commit()
            except _DRIVER_ERRORS as exc:
                with contextlib.suppress(Exception):
                    await tr.rollback()
                raise _translate(exc) from exc

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction (READ COMMITTED, as each statement of SQLite's writer saw the
        latest rows), committed when the block ends: the block returns once the COMMIT is
        durable. Rows a statement must not share with another node's transaction are locked by
        the repositories (FOR UPDATE, advisory locks, counter rows)."""
        return self._in_transaction(writable=True)

    def reader(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A read-only transaction (REPEATABLE READ: every query sees one snapshot, as a
        SQLite read transaction does)."""
        return self._in_transaction(writable=False)

    async def committed(self) -> None:
        """Nothing to wait for: a transaction is visible to all once its block returned."""
        if self._closed:
            raise StorageError("the database is closed")

    async def _migrate(self) -> None:
        """Apply every migration not yet applied, each in its own transaction, under an
        advisory lock (nodes starting together: one applies, the others then find it done)."""
        async with self._connection() as conn:
            try:
                await _migrate(conn)
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc


def postgres_sql(version: int, name: str, sql: str, override: str | None) -> str:
    """The PostgreSQL text of a migration: its translation, then its override file (which
    holds the statements the translation refuses, storage/dialects.py)."""
    return migration_to_postgres(sql, f"{version:04d}_{name}.sql", override)


async def _migrate(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version BIGINT PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in load_migrations():
            if m.version in done:
                continue
            sql = postgres_sql(m.version, m.name, m.sql, m.postgres_sql)
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    to_db_time(utcnow()),
                )
                try:
                    await conn.execute(sql)  # no parameters: the simple protocol, many statements
                except asyncpg.PostgresError as exc:
                    raise StorageError(
                        f"migration {m.version:04d}_{m.name} failed on PostgreSQL: {exc}"
                    ) from exc
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
