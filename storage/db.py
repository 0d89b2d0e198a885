"""The metadata database: SQLite, one writer connection and a pool of reader connections.

Why this shape:
- WAL lets readers run while the single writer commits; `synchronous=FULL` makes a committed
  transaction survive power loss, so an acknowledged send is never lost.
- SQLite has one writer at a time anyway; serialising writers on an asyncio.Lock in the process
  (and `BEGIN IMMEDIATE`, which takes the write lock at the start) means no transaction ever
  fails half-way with SQLITE_BUSY; `busy_timeout` covers another process (the CLI) writing.
- Connections are opened once and reused: opening one per request would cost far more than
  the queries.

Statements run inline on the event loop (measured: bench/api_send_bench.py). A query of a few
indexed rows takes microseconds from SQLite's page cache, whereas a round trip to a connection
thread (the aiosqlite way) costs a thread wake-up plus a turn of a busy event loop, and while a
Python thread does CPU work the GIL makes every such turn wait longer. Only what may block runs
on threads:
- reads: a progress handler interrupts a statement that runs longer than about a millisecond
  inline, and the statement is run again from the start on a reader thread, in the same read
  transaction (same snapshot; a read has no side effects, so nothing is done twice). Long
  listings and scans therefore never stall the event loop.
- writes: BEGIN IMMEDIATE (which may wait busy_timeout for another process) and COMMIT (the
  fsync of the WAL) run on the writer's own thread. The statements in between never wait for a
  lock (the transaction holds SQLite's write lock) and are small row writes.

Group commit. The write lock is the one serial section of every send, so only the row writes
happen under it: transactions that queue while a COMMIT is being fsynced share the next one.
Each runs in its own SAVEPOINT inside one SQLite transaction, so a failing transaction rolls
back only itself, and each `transaction()` block returns only once the COMMIT covering it is
durable (synchronous=FULL). One fsync then serves every transaction that arrived during the
previous one.

Repositories receive a `Tx` and use only `execute` / `fetchone` / `fetchall` with `?`
placeholders and portable SQL, so a PostgreSQL `Tx` can follow by translating placeholders.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import importlib.resources
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from storage.errors import Conflict, MissingReference, StorageError, StorageFull
from storage.ids import to_db_time, utcnow
from storage.private import create_file, make_dir

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Extended result codes of sqlite3 errors (sqlite3.h), used to tell conflicts from other faults.
_SQLITE_FULL = 13
_SQLITE_CONSTRAINT_UNIQUE = 2067
_SQLITE_CONSTRAINT_PRIMARYKEY = 1555
_SQLITE_CONSTRAINT_FOREIGNKEY = 787

DEFAULT_BUSY_TIMEOUT_MS = 10_000
DEFAULT_READERS = 3

Params = Sequence[Any]
T = TypeVar("T")

# The savepoint each transaction of a group commit runs in (they never nest: one at a time).
_SAVEPOINT = "lienthong_tx"

# A read statement runs inline on the event loop for at most this many progress-handler calls
# of _INLINE_BUDGET_STEPS SQLite VM steps each (about 1 ms here), then moves to a thread.
_SQLITE_INTERRUPT = 9
_INLINE_BUDGET_STEPS = 10_000
_INLINE_BUDGET_CALLS = 10

# Reader connections open at most (each is a file handle and some cache, no thread).
_MAX_READERS = 32


Row = sqlite3.Row
"""What a query returns: a row indexed by column name or position (sqlite3.Row on SQLite,
asyncpg's Record on PostgreSQL: both behave so)."""


class Tx(abc.ABC):
    """A connection handed to repositories: inside `Database.transaction()` it writes, inside
    `Database.reader()` it only reads. Statements take `?` placeholders; every driver error
    comes out as a StorageError (Conflict, MissingReference, StorageFull, ...)."""

    writable: bool
    #: "sqlite" or "postgresql": for the few statements whose SQL differs (storage/dialects.py).
    dialect: ClassVar[str]

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for each parameter row; return the total rows changed."""

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query and return every row."""

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query and return its first row, or None."""

    @abc.abstractmethod
    async def serialize(self, name: str) -> None:
        """From here to its end, this write transaction runs alone among those that serialize
        on the same `name` (on any node): for what reads then writes on what it read, such as
        the audit chain's head or a day's last code number. A no-op where every write
        transaction runs alone anyway (SQLite's single writer)."""

    def attempt(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Around a statement whose failure (a Conflict) the caller catches and then goes on
        in the same transaction: the failure undoes only what ran inside. SQLite's failing
        statement undoes only itself: nothing to do; PostgreSQL aborts the whole transaction
        on an error, so it runs the block in a savepoint (storage/pg.py)."""
        return contextlib.nullcontext()


class Database(abc.ABC):
    """The metadata database: SQLite (`SqliteDatabase`, the default) or PostgreSQL
    (`storage.pg.PgDatabase`); `storage.backends.open_database` opens the one a target names.

    `Database.open(path)` opens SQLite, as it always did."""

    dialect: ClassVar[str]

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        readers: int = DEFAULT_READERS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        writer_lock: bool = False,
    ) -> Database:
        """Open the SQLite database at `path` (see `SqliteDatabase.open`)."""
        return await SqliteDatabase.open(
            path, readers=readers, busy_timeout_ms=busy_timeout_ms, writer_lock=writer_lock
        )

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection; transactions running finish first."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A write transaction, committed (durably) when the block ends, rolled back when it
        raises."""

    @abc.abstractmethod
    def reader(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A read-only transaction: its queries see one snapshot."""

    @abc.abstractmethod
    async def committed(self) -> None:
        """Return once every transaction that ended before the call is visible to readers."""

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


def _translate(exc: BaseException) -> StorageError:
    """Map a sqlite3 error to the storage error the callers understand."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (_SQLITE_CONSTRAINT_UNIQUE, _SQLITE_CONSTRAINT_PRIMARYKEY):
        return Conflict(str(exc))
    if code == _SQLITE_CONSTRAINT_FOREIGNKEY:
        return MissingReference(str(exc))
    if code is not None and code & 0xFF == _SQLITE_FULL:
        return StorageFull("the database disk is full")
    if isinstance(exc, sqlite3.ProgrammingError | ValueError):  # a closed connection
        return StorageError(f"database connection unavailable: {exc}")
    return StorageError(f"database error: {exc}")


class SqliteTx(Tx):
    """A SQLite connection handed to repositories: inside `transaction()` it writes, inside
    `reader()` it only reads. Every sqlite3 error comes out as a StorageError.

    Statements run inline on the event loop (see the module docstring); a reader's statement
    that runs too long is finished on a reader thread instead (`_offload`)."""

    dialect = "sqlite"

    def __init__(
        self, conn: sqlite3.Connection, *, writable: bool, reader: _Reader | None = None
    ) -> None:
        self._conn = conn
        self.writable = writable
        self._reader = reader

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            if self._reader is None:
                return fn()
            self._reader.budget.calls = 0
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != _SQLITE_INTERRUPT:
                    raise
            # Interrupted by the time budget: run it again from the start on a reader thread.
            return await self._reader.in_thread(fn)
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        return await self._run(lambda: self._conn.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for each parameter row; return the total rows changed."""
        rows = list(rows)  # may be run twice (see _run)
        return await self._run(lambda: self._conn.executemany(sql, rows).rowcount)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run a query and return every row (rows index by column name)."""
        return await self._run(lambda: list(self._conn.execute(sql, params).fetchall()))

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Run a query and return its first row, or None. Put a LIMIT in the query: all rows
        are fetched."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def serialize(self, name: str) -> None:
        """Nothing to do: SQLite runs one write transaction at a time (BEGIN IMMEDIATE)."""


class _Budget:
    """A reader connection's progress handler: interrupts a statement running inline on the
    event loop once it has used its budget of SQLite VM steps (about a millisecond)."""

    def __init__(self) -> None:
        self.inline = True
        self.calls = 0

    def __call__(self) -> int:
        if not self.inline:
            return 0
        self.calls += 1
        return 1 if self.calls > _INLINE_BUDGET_CALLS else 0


class _Reader:
    """A pooled read-only connection, its time budget and the threads its long reads use."""

    def __init__(self, conn: sqlite3.Connection, threads: ThreadPoolExecutor) -> None:
        self.conn = conn
        self.budget = _Budget()
        self._threads = threads
        conn.set_progress_handler(self.budget, _INLINE_BUDGET_STEPS)

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a reader thread without the budget; the connection is not used by
        anyone else until it is over, even if the caller is cancelled (see _settled)."""
        self.budget.inline = False
        try:
            fut = asyncio.get_running_loop().run_in_executor(self._threads, fn)
            cancelled = await _settled(fut)
        finally:
            self.budget.inline = True
        result = fut.result()
        if cancelled:
            raise asyncio.CancelledError
        return result


@dataclass(frozen=True)
class Migration:
    """One schema migration file: storage/migrations/NNNN_name.sql (SQLite's SQL, the source of
    truth, which storage/dialects.py translates for PostgreSQL), with the hand-written
    PostgreSQL version NNNN_name.postgres.sql where there is one."""

    version: int
    name: str
    sql: str
    postgres_sql: str | None = None


def load_migrations() -> list[Migration]:
    """Return the packaged migrations in version order (read with importlib.resources)."""
    found: list[Migration] = []
    folder = importlib.resources.files("storage").joinpath("migrations")
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        override = folder.joinpath(f"{match.group(1)}_{match.group(2)}.postgres.sql")
        found.append(
            Migration(
                int(match.group(1)),
                match.group(2),
                entry.read_text("utf-8"),
                override.read_text("utf-8") if override.is_file() else None,
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StorageError(f"two migrations share a version number: {versions}")
    return found


def _connect(path: Path, busy_timeout_ms: int, *, readonly: bool) -> sqlite3.Connection:
    """Blocking: a connection with our PRAGMAs. check_same_thread=False: its statements run on
    the event loop's thread, the blocking ones on a worker thread, never two at once (the write
    lock, or the reader pool, hands a connection to one user at a time). isolation_level=None:
    the sqlite3 module must not open transactions behind our back; we issue BEGIN and the rest.
    """
    conn = sqlite3.connect(
        path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
    )
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        if readonly:
            # A reader can never write by mistake: writes go through transaction().
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: Path) -> None:
    """Blocking: create the database file (empty: SQLite takes it as an empty database) with
    mode 0600, and its directory 0700, whatever the umask. SQLite gives its -wal and -shm files
    the database file's mode, so they are private too."""
    make_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(create_file(path, os.O_WRONLY | os.O_EXCL))


def _switch_to_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Blocking: ``PRAGMA journal_mode = WAL``, retried while the database is locked.

    Two processes opening a new (empty) database file together both switch it to WAL; SQLite
    answers the loser "database is locked" at once, without its busy handler (it would deadlock
    waiting), so the busy timeout is applied here instead."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.005
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _connect_writer(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Blocking: the writer connection, in WAL mode, with every pending migration applied."""
    conn = _connect(path, busy_timeout_ms, readonly=False)
    try:
        mode = _switch_to_wal(conn, busy_timeout_ms)
        if str(mode).lower() != "wal":
            raise StorageError(f"SQLite refused WAL mode (journal_mode is {mode!r})")
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


async def _settled(fut: asyncio.Future[Any]) -> bool:
    """Wait until ``fut`` is done even if the awaiting task is cancelled meanwhile; return
    whether it was. A statement running on the writer thread must be over before anyone else
    touches the connection or the write lock is released."""
    cancelled = False
    while not fut.done():
        try:
            await asyncio.wait([fut])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


class SqliteDatabase(Database):
    """The SQLite metadata database. Open with `await Database.open(path)`, close with
    `close()`."""

    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        writer: sqlite3.Connection,
        *,
        readers: int = DEFAULT_READERS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        writer_lock: bool = False,
    ) -> None:
        self.path = path
        # Several server processes (`serve --workers N`): a file lock taken before BEGIN
        # IMMEDIATE and released after COMMIT/ROLLBACK hands the write lock over fairly. SQLite's
        # own wait is a sleep-and-retry loop: a process that commits groups back to back takes
        # the lock again before the sleeping one retries, which then starves (seconds, then
        # SQLITE_BUSY). A blocked flock() is woken by the release itself. Only the server's
        # processes take it; the CLI still waits busy_timeout on SQLite's lock.
        self._lock_fd: int | None = None
        if writer_lock:
            self._lock_fd = os.open(
                path.with_name(path.name + "-writer.lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        self._locked = False
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = writer
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="lienthong-db-writer")
        self._write_lock = asyncio.Lock()
        # Group commit state (all guarded by _write_lock): whether BEGIN IMMEDIATE was issued,
        # the transactions done but not yet committed, and the task that will commit them.
        self._open = False
        self._done: list[asyncio.Future[None]] = []
        self._committer: asyncio.Task[None] | None = None
        # Readers: connections are opened as needed (up to _MAX_READERS); `readers` threads
        # run the statements too long for the event loop.
        self._read_threads = ThreadPoolExecutor(
            max(1, readers), thread_name_prefix="lienthong-db-reader"
        )
        # Blocking calls run on the writer thread before every COMMIT (add_before_commit).
        self._before_commit: list[Callable[[], None]] = []
        self._idle: list[_Reader] = []
        self._reader_slots = asyncio.Semaphore(_MAX_READERS)
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        readers: int = DEFAULT_READERS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        writer_lock: bool = False,
    ) -> SqliteDatabase:
        """Open (creating if needed) the database at `path` and apply pending migrations.

        Sets WAL, synchronous=FULL, foreign_keys=ON and busy_timeout on every connection;
        `readers` is the number of threads for long reads; `writer_lock`: take the fair
        cross-process writer lock (for several server processes on one database). Opening an
        up-to-date database changes nothing.
        """
        path = Path(path)
        try:
            await asyncio.to_thread(_create_private, path)
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from exc
        try:
            writer = await asyncio.to_thread(_connect_writer, path, busy_timeout_ms)
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        db = cls(
            path, writer, readers=readers, busy_timeout_ms=busy_timeout_ms, writer_lock=writer_lock
        )
        try:
            async with db.reader():  # fail now, not on the first request, if reading fails
                pass
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        """Close every connection. Waits for running transactions to commit first."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            if self._done:  # a commit is due and its committer waits behind us: do it here
                await self._commit()
            if self._open:
                self._rollback()
            await self._on_writer_thread(self._writer.close)
        self._writer_thread.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock too
            self._lock_fd = None
        idle, self._idle = self._idle, []
        for reader in idle:
            reader.conn.close()
        self._read_threads.shutdown(wait=False)  # readers in use close when given back

    async def _on_writer_thread(self, fn: Callable[[], T]) -> T:
        """Run a blocking call on the writer thread and return its result. If the caller is
        cancelled meanwhile, the call still finishes first (see _settled); its error, if it
        failed, wins over the cancellation."""
        fut = asyncio.get_running_loop().run_in_executor(self._writer_thread, fn)
        cancelled = await _settled(fut)
        result = fut.result()
        if cancelled:
            raise asyncio.CancelledError
        return result

    def _rollback(self) -> None:
        """Roll the SQLite transaction back; never raises (the original error matters more)."""
        self._open = False
        with contextlib.suppress(Exception):
            self._writer.execute("ROLLBACK")
        self._unlock()

    def _begin(self) -> None:
        """Blocking (writer thread): the cross-process writer lock if any, then BEGIN
        IMMEDIATE."""
        if self._lock_fd is not None and not self._locked:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._locked = True
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock()
            raise

    def add_before_commit(self, hook: Callable[[], None]) -> None:
        """Run the blocking ``hook`` on the writer thread before every COMMIT of a group (the
        filesystem store's directory fsyncs: what a row names is durable before the row). If
        it raises, the group is rolled back and its transactions fail with the error."""
        self._before_commit.append(hook)

    def _commit_blocking(self) -> None:
        """Blocking (writer thread): the before-commit hooks, COMMIT, then hand the
        cross-process writer lock on (after a failure the caller rolls back, which releases
        it)."""
        for hook in self._before_commit:
            hook()
        self._writer.execute("COMMIT")
        self._unlock()

    def _unlock(self) -> None:
        if self._locked and self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._locked = False

    def _fail_group(self, exc: BaseException) -> None:
        """The whole SQLite transaction is gone: every transaction waiting for it fails."""
        done, self._done = self._done, []
        for fut in done:
            if not fut.done():
                fut.set_exception(StorageError(f"the transaction was rolled back: {exc}"))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: one at a time, committed when the block ends, rolled back (and
        the error re-raised) when it raises. The block returns only once its changes are
        durable (COMMIT with synchronous=FULL). Keep the block short: other writers wait.

        Transactions that end while another's COMMIT is being written share the next COMMIT
        (group commit), each in its own SAVEPOINT: one failing never undoes another.
        """
        if self._closed:
            raise StorageError("the database is closed")
        async with self._write_lock:
            if self._closed:
                raise StorageError("the database is closed")
            conn = self._writer
            if not self._open:
                try:
                    await self._on_writer_thread(self._begin)
                except BaseException as exc:
                    self._rollback()  # a cancelled BEGIN may still have begun
                    if isinstance(exc, sqlite3.Error | ValueError):
                        raise _translate(exc) from exc
                    raise
                self._open = True
            try:
                conn.execute(f"SAVEPOINT {_SAVEPOINT}")
            except (sqlite3.Error, ValueError) as exc:
                self._rollback()
                self._fail_group(exc)
                raise _translate(exc) from exc
            try:
                yield SqliteTx(conn, writable=True)
            except BaseException as exc:
                self._undo(exc)
                raise
            try:
                conn.execute(f"RELEASE {_SAVEPOINT}")
            except (sqlite3.Error, ValueError) as exc:
                self._undo(exc)
                raise _translate(exc) from exc
            committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._done.append(committed)
            if self._committer is None:
                self._committer = asyncio.create_task(self._commit_when_free())
        # Waits outside the lock, so that the transactions queued behind this one run now and
        # join the same COMMIT. A cancelled caller does not stop the COMMIT (shield).
        await asyncio.shield(committed)

    async def committed(self) -> None:
        """Return once every transaction that ended before the call is committed (or its group
        failed). Needed after a UNIQUE conflict with a transaction of the same group commit:
        its row is visible to the writer at once, but to readers only after the COMMIT. An
        empty transaction joins the open group (or the next one, when the group is being
        committed already) and returns with it; a failed group is not an error here."""
        with contextlib.suppress(StorageError):
            async with self.transaction():
                pass

    def _undo(self, exc: BaseException) -> None:
        """Blocking but quick: undo only this transaction's SAVEPOINT (the others in the group
        stay); if SQLite rolled the whole transaction back (disk full, I/O error), fail the
        whole group."""
        conn = self._writer
        if conn.in_transaction:
            try:
                conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                conn.execute(f"RELEASE {_SAVEPOINT}")
            except (sqlite3.Error, ValueError):
                pass
            else:
                if not self._done and self._committer is None:
                    self._rollback()  # nothing else in the group: end the transaction now
                return
        self._rollback()
        self._fail_group(exc)

    async def _commit_when_free(self) -> None:
        """Commit the group once the transactions queued on the write lock have joined it."""
        try:
            async with self._write_lock:
                self._committer = None
                await self._commit()
        except BaseException as exc:  # pragma: no cover - only when the loop itself shuts down
            self._committer = None
            self._fail_group(exc)
            raise

    async def _commit(self) -> None:
        """With the write lock held: COMMIT on the writer thread, then release every
        transaction of the group (with the error if it failed: then none was committed)."""
        done, self._done = self._done, []
        if not done:
            return
        commit = asyncio.get_running_loop().run_in_executor(
            self._writer_thread, self._commit_blocking
        )
        cancelled = await _settled(commit)
        exc = commit.exception()
        if exc is None:
            self._open = False
            for fut in done:
                if not fut.done():
                    fut.set_result(None)
        else:
            self._rollback()
            error = _translate(exc) if isinstance(exc, sqlite3.Error | ValueError) else exc
            for fut in done:
                if not fut.done():
                    fut.set_exception(error)
        if cancelled:
            raise asyncio.CancelledError

    async def _take_reader(self) -> _Reader:
        """An idle reader, or a new one; the caller holds one of the _reader_slots."""
        if self._idle:
            return self._idle.pop()
        try:
            conn = await asyncio.to_thread(
                _connect, self.path, self._busy_timeout_ms, readonly=True
            )
        except (sqlite3.Error, ValueError) as exc:
            raise _translate(exc) from exc
        return _Reader(conn, self._read_threads)

    def _give_back(self, reader: _Reader) -> None:
        if self._closed:
            reader.conn.close()
        else:
            self._idle.append(reader)

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[Tx]:
        """A read-only connection from a pool, inside one read transaction so that several
        queries see the same snapshot. WAL lets it run while a writer commits."""
        if self._closed:
            raise StorageError("the database is closed")
        async with self._reader_slots:
            reader = await self._take_reader()
            conn = reader.conn
            try:
                try:
                    conn.execute("BEGIN")
                except (sqlite3.Error, ValueError) as exc:
                    raise _translate(exc) from exc
                try:
                    yield SqliteTx(conn, writable=False, reader=reader)
                finally:
                    # Read-only: ending it by rollback is the cheapest; never raises.
                    with contextlib.suppress(Exception):
                        conn.execute("ROLLBACK")
            finally:
                self._give_back(reader)


def _migrate(conn: sqlite3.Connection) -> None:
    """Blocking: apply every migration not yet recorded in schema_migrations, each in its own
    transaction.

    The schema_migrations row is inserted first in each transaction, so if another process
    applies the same migration at the same moment, one of the two fails on the primary key
    before touching the schema, and simply re-reads what is applied.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    applied = "SELECT 1 FROM schema_migrations WHERE version = ?"
    for migration in load_migrations():
        if conn.execute(applied, (migration.version,)).fetchone() is not None:
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
            conn.executescript(script)
        except sqlite3.IntegrityError as exc:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            if conn.execute(applied, (migration.version,)).fetchone() is None:
                # not the race with another process: the script itself failed
                raise StorageError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
        except BaseException as exc:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            raise StorageError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc}"
            ) from exc
