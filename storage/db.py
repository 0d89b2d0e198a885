"""The metadata database: SQLite through aiosqlite, one writer connection and a few readers.

Why this shape:
- WAL lets readers run while the single writer commits; `synchronous=FULL` makes a committed
  transaction survive power loss, so an acknowledged send is never lost.
- SQLite has one writer at a time anyway; serialising writers on an asyncio.Lock in the process
  (and `BEGIN IMMEDIATE`, which takes the write lock at the start) means no transaction ever
  fails half-way with SQLITE_BUSY; `busy_timeout` covers another process (the CLI) writing.
- Connections are opened once and reused: each aiosqlite connection is a thread, and opening one
  per request would cost far more than the queries.

Repositories receive a `Tx` and use only `execute` / `fetchone` / `fetchall` with `?`
placeholders and portable SQL, so a PostgreSQL `Tx` can follow by translating placeholders.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import Conflict, MissingReference, StorageError, StorageFull
from storage.ids import to_db_time, utcnow

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Extended result codes of sqlite3 errors (sqlite3.h), used to tell conflicts from other faults.
_SQLITE_FULL = 13
_SQLITE_CONSTRAINT_UNIQUE = 2067
_SQLITE_CONSTRAINT_PRIMARYKEY = 1555
_SQLITE_CONSTRAINT_FOREIGNKEY = 787

DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_READERS = 3

Params = Sequence[Any]


def _translate(exc: BaseException) -> StorageError:
    """Map a sqlite3/aiosqlite error to the storage error the callers understand."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (_SQLITE_CONSTRAINT_UNIQUE, _SQLITE_CONSTRAINT_PRIMARYKEY):
        return Conflict(str(exc))
    if code == _SQLITE_CONSTRAINT_FOREIGNKEY:
        return MissingReference(str(exc))
    if code is not None and code & 0xFF == _SQLITE_FULL:
        return StorageFull("the database disk is full")
    if isinstance(exc, ValueError):  # aiosqlite: "Connection closed" / "no active connection"
        return StorageError(f"database connection unavailable: {exc}")
    return StorageError(f"database error: {exc}")


class Tx:
    """A connection handed to repositories: inside `Database.transaction()` it writes, inside
    `Database.reader()` it only reads. Every sqlite3 error comes out as a StorageError."""

    def __init__(self, conn: aiosqlite.Connection, *, writable: bool) -> None:
        self._conn = conn
        self.writable = writable

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        try:
            cursor = await self._conn.execute(sql, params)
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for each parameter row; return the total rows changed."""
        try:
            cursor = await self._conn.executemany(sql, rows)
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run a query and return every row (rows index by column name)."""
        try:
            rows = await self._conn.execute_fetchall(sql, params)
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        return list(rows)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Run a query and return its first row, or None. Put a LIMIT in the query: all rows
        are fetched (in one round trip to the connection thread)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


@dataclass(frozen=True)
class Migration:
    """One schema migration file: storage/migrations/NNNN_name.sql."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Return the packaged migrations in version order (read with importlib.resources)."""
    found: list[Migration] = []
    folder = importlib.resources.files("storage").joinpath("migrations")
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StorageError(f"two migrations share a version number: {versions}")
    return found


async def _connect(path: Path, busy_timeout_ms: int) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module must not open transactions behind our back;
    # Database.transaction() issues BEGIN IMMEDIATE / COMMIT / ROLLBACK itself.
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
    try:
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        await conn.close()
        raise
    return conn


class Database:
    """The metadata database. Open with `await Database.open(path)`, close with `close()`."""

    def __init__(
        self, path: Path, writer: aiosqlite.Connection, readers: list[aiosqlite.Connection]
    ) -> None:
        self.path = path
        self._writer = writer
        self._readers = readers
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self._idle.put_nowait(conn)
        self._write_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        readers: int = DEFAULT_READERS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Database:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        Sets WAL, synchronous=FULL, foreign_keys=ON and busy_timeout on every connection.
        Opening an up-to-date database changes nothing.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = await _connect(path, busy_timeout_ms)
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        opened: list[aiosqlite.Connection] = []
        try:
            rows = await writer.execute_fetchall("PRAGMA journal_mode = WAL")
            mode = next(iter(rows))[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"SQLite refused WAL mode (journal_mode is {mode!r})")
            await _migrate(writer)
            for _ in range(max(1, readers)):
                reader = await _connect(path, busy_timeout_ms)
                opened.append(reader)
                # A reader can never write by mistake: writes go through transaction().
                await reader.execute("PRAGMA query_only = ON")
        except BaseException as exc:
            for conn in [*opened, writer]:
                with contextlib.suppress(Exception):
                    await conn.close()
            if isinstance(exc, sqlite3.Error | ValueError):
                raise _translate(exc) from exc
            raise
        return cls(path, writer, opened)

    async def close(self) -> None:
        """Close every connection. Waits for a running transaction to finish first."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            await self._writer.close()
        for conn in self._readers:
            await conn.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: one at a time, BEGIN IMMEDIATE, COMMIT when the block ends,
        ROLLBACK (and re-raise) when it raises. Keep the block short: other writers wait."""
        if self._closed:
            raise StorageError("the database is closed")
        async with self._write_lock:
            conn = self._writer
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except BaseException as exc:
                await _rollback(conn)
                if isinstance(exc, sqlite3.Error | ValueError):
                    raise _translate(exc) from exc
                raise
            try:
                yield Tx(conn, writable=True)
            except BaseException:
                await _rollback(conn)
                raise
            try:
                await conn.execute("COMMIT")
            except BaseException as exc:
                await _rollback(conn)
                if isinstance(exc, sqlite3.Error | ValueError):
                    raise _translate(exc) from exc
                raise

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[Tx]:
        """A read-only connection from a small pool, inside one read transaction so that
        several queries see the same snapshot. WAL lets it run while a writer commits."""
        if self._closed:
            raise StorageError("the database is closed")
        conn = await self._idle.get()
        try:
            try:
                await conn.execute("BEGIN")
            except BaseException as exc:
                await _rollback(conn)
                if isinstance(exc, sqlite3.Error | ValueError):
                    raise _translate(exc) from exc
                raise
            try:
                yield Tx(conn, writable=False)
            finally:
                await _rollback(conn)  # read-only: ending it by rollback is the cheapest
        finally:
            self._idle.put_nowait(conn)

    async def ping(self) -> None:
        """Raise StorageError unless the database answers a query (for /healthz)."""
        async with self.reader() as tx:
            row = await tx.fetchone("SELECT 1")
        if row is None or row[0] != 1:
            raise StorageError("the database did not answer")

    async def applied_migrations(self) -> list[tuple[int, str, str]]:
        """Return (version, name, applied_at) of every applied migration, oldest first."""
        async with self.reader() as tx:
            rows = await tx.fetchall(
                "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
            )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Roll back whatever transaction is open; never raises (the original error matters more).

    Issued unconditionally rather than after checking `in_transaction`: when a task is
    cancelled while its BEGIN or COMMIT is still queued on the connection thread, the check
    would run too early. The connection thread runs calls in order, so this ROLLBACK lands
    after that statement; "no transaction is active" is then harmless and ignored.
    """
    with contextlib.suppress(Exception):
        await conn.execute("ROLLBACK")


async def _migrate(conn: aiosqlite.Connection) -> None:
    """Apply every migration not yet recorded in schema_migrations, each in its own transaction.

    The schema_migrations row is inserted first in each transaction, so if another process
    applies the same migration at the same moment, one of the two fails on the primary key
    before touching the schema, and simply re-reads what is applied.
    """
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    for migration in load_migrations():
        rows = await conn.execute_fetchall(
            "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
        )
        if list(rows):
            continue
        # executescript runs many statements in one call; the script holds its own BEGIN and
        # COMMIT so the migration and its record land together or not at all. The values are
        # inlined because executescript takes no parameters: version is digits, name matches
        # [a-z0-9_]+ and the time is our own text, so nothing needs quoting.
        script = (
            "BEGIN IMMEDIATE;\n"
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES "
            f"({migration.version}, '{migration.name}', '{to_db_time(utcnow())}');\n"
            f"{migration.sql}\n;\n"
            "COMMIT;\n"
        )
        try:
            await conn.executescript(script)
        except sqlite3.IntegrityError as exc:
            await _rollback(conn)
            rows = await conn.execute_fetchall(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            )
            if not list(rows):  # not the race with another process: the script itself failed
                raise StorageError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
        except BaseException as exc:
            await _rollback(conn)
            raise StorageError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc}"
            ) from exc
