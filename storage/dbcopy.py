"""Copy a SQLite metadata database into an empty PostgreSQL database (issue 20), checked.

`lienthong storage migrate-db --to postgresql://...` (server/cli/migrate_db_cmd.py) runs this.
What it promises:

- **The schema is PostgreSQL's own**: the target's tables are made by the PostgreSQL migrations
  (`PgDatabase.connect`), never copied from SQLite's DDL; the source is first brought to the
  same migration version.
- **One consistent source**: the whole run reads the SQLite file inside one transaction that
  holds its write lock (`BEGIN IMMEDIATE`): nothing can be written to it meanwhile (a running
  axis would wait, then fail its writes: stop it first), and every table is read as of one
  commit.
- **Table by table, in dependency order** (foreign keys: a table after those it references; a
  foreign key of a table to itself, such as agencies' parents or documents' related ones,
  checked at the end of that table's copy), in batches of
  `batch_rows` rows sent with PostgreSQL's COPY (one round trip a batch). Each table is copied
  in one PostgreSQL transaction that also records it as done in `lienthong_db_copy`, with its
  user triggers disabled meanwhile (the rows are stored exactly as they were: the append-only
  guards and the dashboard's queueing triggers do not fire; foreign keys are still checked).
- **Identity columns** (the SQLite AUTOINCREMENT ids, and the `rowid` columns PostgreSQL adds to
  the two tables that order by it) keep the copied values, and their sequences are moved past
  the largest one.
- **Checked**: the rows of every table counted on both sides, the audit chain verified on the
  target (storage.audit.verify_log, the `audit verify` logic) and its head equal to the
  source's.
- **Resumable by continuing**: a run interrupted (Ctrl-C, SIGKILL, the network) leaves the
  tables committed so far, recorded in `lienthong_db_copy`; the table being copied was rolled
  back with its transaction. A new run keeps the tables done and copies the others, so no row is
  copied twice. It refuses to continue when the source changed since (its audit head or the row
  count of a table done differs): then drop the target database, create it again empty and
  start over.
- **Refuses a target that is not empty** unless it is this source's own earlier copy (the
  marker table naming the same source).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from storage.audit import verify_log
from storage.db import SqliteDatabase, load_migrations
from storage.errors import StorageError
from storage.ids import to_db_time, utcnow
from storage.pg import PgDatabase

MARKER = "lienthong_db_copy"  # written out in the SQL below
DEFAULT_BATCH_ROWS = 2000
# How long the copy waits for the SQLite write lock before telling the operator to stop the axis.
_SOURCE_BUSY_MS = 3000

_ROWS_KEY = "table:"
_SOURCE_KEY = "source"
_COMPLETE_KEY = "complete"


class CopyError(StorageError):
    """The copy cannot start or go on; the message says why and what to do."""


@dataclass
class TableCopy:
    """One table: its rows in the source, and whether this run copied it (False: an earlier
    run had)."""

    name: str
    rows: int
    copied: bool


@dataclass
class CopyReport:
    """What a run did and found."""

    tables: list[TableCopy] = field(default_factory=list)
    resumed: bool = False
    audit_entries: int = 0
    audit_head: tuple[int, str] | None = None
    sequences: int = 0

    @property
    def rows(self) -> int:
        """Rows of every table in the source."""
        return sum(t.rows for t in self.tables)

    @property
    def rows_copied(self) -> int:
        """Rows copied by this run."""
        return sum(t.rows for t in self.tables if t.copied)


#: Called after each batch sent: (table, rows of the table sent so far in this run).
OnBatch = Callable[[str, int], None]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]


class _Source:
    """The SQLite file, read inside one transaction holding its write lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(
            f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=_SOURCE_BUSY_MS / 1000
        )
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self.conn.close()
            raise CopyError(
                f"{path} is being written ({exc}): stop the axis (every `lienthong serve` on this "
                "data directory) before copying its database"
            ) from None

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def tables(self) -> list[_Table]:
        names = [
            str(r[0])
            for r in self.query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND name != 'schema_migrations' ORDER BY name"
            )
        ]
        tables: dict[str, _Table] = {}
        refs: dict[str, set[str]] = {}
        for name in names:
            columns = tuple(str(r[1]) for r in self.query(f"PRAGMA table_info({_quote(name)})"))
            fks = self.query(f"PRAGMA foreign_key_list({_quote(name)})")
            refs[name] = {str(f[2]) for f in fks if f[2] != name}
            tables[name] = _Table(name, columns)
        ordered: list[_Table] = []
        placed: set[str] = set()

        def place(name: str, path: tuple[str, ...]) -> None:
            if name in placed or name not in tables:
                return
            if name in path:
                raise CopyError(f"foreign keys form a cycle: {' -> '.join((*path, name))}")
            for ref in sorted(refs[name]):
                place(ref, (*path, name))
            placed.add(name)
            ordered.append(tables[name])

        for name in names:
            place(name, ())
        return ordered

    def count(self, table: str) -> int:
        sql = f"SELECT count(*) FROM {_quote(table)}"  # noqa: S608 (a name from the catalog)
        return int(self.query(sql)[0][0])

    def audit_head(self) -> tuple[int, str] | None:
        rows = self.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return None if not rows else (int(rows[0][0]), str(rows[0][1]))

    def identity(self) -> str:
        """What names this source in the marker: its file and the first entry of its audit
        chain (made at `lienthong init`, unique to this axis)."""
        first = self.query("SELECT hash FROM audit_log ORDER BY seq LIMIT 1")
        return f"sqlite:{self.path.resolve()} audit:{first[0][0] if first else '-'}"

    def rows(
        self, table: _Table, columns: Sequence[str], batch: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of `table` (`columns`, `rowid` included when asked), in batches."""
        select = f"SELECT {', '.join(_quote(c) if c != 'rowid' else 'rowid' for c in columns)}"
        cursor = self.conn.execute(f"{select} FROM {_quote(table.name)}")
        while rows := cursor.fetchmany(batch):
            yield rows


def _converter(pg_type: str) -> Callable[[Any], Any]:
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda v: None if v is None else int(v)
    if pg_type in ("double precision", "real"):
        return lambda v: None if v is None else float(v)
    if pg_type == "bytea":
        return lambda v: None if v is None else (v if isinstance(v, bytes) else str(v).encode())
    if pg_type == "text":
        return lambda v: v if v is None or isinstance(v, str) else str(v)
    return lambda v: v


class _Target:
    """The PostgreSQL database, on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def relations(self) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'm', 'p', 'f')"
        )
        return [str(r[0]) for r in rows]

    async def marker(self) -> dict[str, str]:
        rows = await self.conn.fetch("SELECT item, value FROM lienthong_db_copy")
        return {str(r[0]): str(r[1]) for r in rows}

    async def self_references(self, table: str) -> list[str]:
        """Names of the foreign keys of `table` to itself (NOT DEFERRABLE, as migrated)."""
        rows = await self.conn.fetch(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid = confrelid"
            " AND conrelid = (quote_ident(current_schema()) || '.' || quote_ident($1))::regclass",
            table,
        )
        return [str(r[0]) for r in rows]

    async def columns(self, table: str) -> dict[str, str]:
        rows = await self.conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1",
            table,
        )
        return {str(r[0]): str(r[1]) for r in rows}


async def _begin(target: _Target, source: _Source) -> tuple[dict[str, str], bool]:
    """Check the target is empty or this source's copy; mark it. Return the marker and whether
    it is a resumed copy."""
    identity = source.identity()
    relations = await target.relations()
    if MARKER in relations:
        marker = await target.marker()
        if marker.get(_SOURCE_KEY) != identity:
            raise CopyError(
                f"the target holds a copy of another database ({marker.get(_SOURCE_KEY)}), "
                f"not of {source.path}: give an empty database"
            )
        return marker, True
    if relations:
        raise CopyError(
            f"the target database is not empty ({len(relations)} tables, e.g. "
            f"{sorted(relations)[0]}) and is not an earlier copy of {source.path}: give an "
            "empty database"
        )
    head = source.audit_head()
    async with target.conn.transaction():
        await target.conn.execute(
            "CREATE TABLE lienthong_db_copy (item TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        await target.conn.executemany(
            "INSERT INTO lienthong_db_copy (item, value) VALUES ($1, $2)",
            [(_SOURCE_KEY, identity), ("audit-head", _head_text(head))],
        )
    return {_SOURCE_KEY: identity, "audit-head": _head_text(head)}, False


def _head_text(head: tuple[int, str] | None) -> str:
    return "-" if head is None else f"{head[0]}:{head[1]}"


def _check_unchanged(source: _Source, marker: dict[str, str], tables: list[_Table]) -> None:
    """CopyError when the source changed since the copy began (a resumed copy would mix)."""
    changed = []
    if marker.get("audit-head") != _head_text(source.audit_head()):
        changed.append("its audit chain grew")
    for table in tables:
        done = marker.get(_ROWS_KEY + table.name)
        if done is not None and int(done) != source.count(table.name):
            changed.append(f"{table.name} has {source.count(table.name)} rows, {done} copied")
    if changed:
        raise CopyError(
            "the SQLite database changed since this copy began ("
            + "; ".join(changed[:3])
            + "): drop the target database, create it again empty, and run the command again"
        )


async def _copy_table(
    target: _Target, source: _Source, table: _Table, batch_rows: int, on_batch: OnBatch | None
) -> int:
    """Copy one table in one transaction, recorded as done in it; return its rows."""
    pg_columns = await target.columns(table.name)
    if not pg_columns:
        raise CopyError(f"table {table.name} has no counterpart in PostgreSQL")
    missing = [c for c in table.columns if c not in pg_columns]
    if missing:
        raise CopyError(f"{table.name}.{missing[0]} has no counterpart in PostgreSQL")
    columns = list(table.columns)
    if "rowid" in pg_columns and "rowid" not in columns:
        columns.append("rowid")  # the implicit rowid PostgreSQL keeps as a column (0042)
    convert = [_converter(pg_columns[c]) for c in columns]
    name = _quote(table.name)
    sent = 0
    # A row may reference a row of its own table copied in a later batch (a document's
    # related_id): those foreign keys are checked at the end of the table instead of each
    # batch (made deferrable for this transaction only).
    self_refs = [_quote(c) for c in await target.self_references(table.name)]
    async with target.conn.transaction():
        await target.conn.execute(f"ALTER TABLE {name} DISABLE TRIGGER USER")
        for constraint in self_refs:
            await target.conn.execute(
                f"ALTER TABLE {name} ALTER CONSTRAINT {constraint} DEFERRABLE INITIALLY DEFERRED"
            )
        # rows a migration seeded: the source holds the same ones, as they are now
        await target.conn.execute(f"DELETE FROM {name}")  # noqa: S608 (from the catalog)
        for batch in source.rows(table, columns, batch_rows):
            records = []
            for row in batch:
                try:
                    records.append(tuple(f(v) for f, v in zip(convert, row, strict=True)))
                except (TypeError, ValueError) as exc:
                    raise CopyError(
                        f"{table.name}: a value does not fit PostgreSQL's column type: {exc}"
                    ) from None
            await target.conn.copy_records_to_table(table.name, records=records, columns=columns)
            sent += len(records)
            if on_batch is not None:
                on_batch(table.name, sent)
        for constraint in self_refs:
            await target.conn.execute(f"SET CONSTRAINTS {constraint} IMMEDIATE")  # checked now
            await target.conn.execute(
                f"ALTER TABLE {name} ALTER CONSTRAINT {constraint} NOT DEFERRABLE"
            )
        await target.conn.execute(f"ALTER TABLE {name} ENABLE TRIGGER USER")
        await target.conn.execute(
            "INSERT INTO lienthong_db_copy (item, value) VALUES ($1, $2)",
            _ROWS_KEY + table.name,
            str(sent),
        )
    return sent


async def _advance_sequences(target: _Target) -> int:
    """Move every sequence owned by a column past the largest value copied; return how many."""
    rows = await target.conn.fetch(
        "SELECT c.relname AS tbl, a.attname AS col, pg_get_serial_sequence("
        " quote_ident(c.relname), a.attname) AS seq"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0"
        " AND NOT a.attisdropped"
    )
    moved = 0
    async with target.conn.transaction():
        for row in rows:
            if row["seq"] is None:
                continue
            tbl, col = _quote(row["tbl"]), _quote(row["col"])
            await target.conn.execute(
                f"SELECT setval($1::regclass, COALESCE((SELECT max({col}) FROM {tbl}), 1),"  # noqa: S608
                f" (SELECT max({col}) FROM {tbl}) IS NOT NULL)",
                row["seq"],
            )
            moved += 1
    return moved


async def _check(target_url: str, target: _Target, source: _Source, report: CopyReport) -> None:
    """Row counts on both sides, and the audit chain verified on the target."""
    for table in report.tables:
        sql = f"SELECT count(*) FROM {_quote(table.name)}"  # noqa: S608 (from the catalog)
        got = await target.conn.fetchval(sql)
        if int(got) != table.rows:
            raise CopyError(f"{table.name}: {got} rows in PostgreSQL, {table.rows} in SQLite")
    database = await PgDatabase.connect(target_url, min_size=1, max_size=1)
    try:
        async with database.reader() as tx:
            chain, _ = await verify_log(tx)
    finally:
        await database.close()
    if not chain.ok:
        raise CopyError(f"the audit chain copied does not verify: {chain.problems[0]}")
    head = None if chain.head_seq is None else (chain.head_seq, str(chain.head_hash))
    if head != source.audit_head():
        raise CopyError(f"the audit head copied {head} is not the source's {source.audit_head()}")
    report.audit_entries = chain.entries
    report.audit_head = head


async def copy_database(
    source_path: Path,
    target_url: str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_batch: OnBatch | None = None,
) -> CopyReport:
    """Copy the SQLite database at `source_path` into the PostgreSQL database at `target_url`
    (with its password), check it, and return what was done (see the module docstring).
    Raises CopyError (or another StorageError) with a message for the operator."""
    if batch_rows < 1:
        raise CopyError("the batch size must be at least 1")
    if not source_path.is_file():  # noqa: ASYNC240 (one stat, before any work)
        raise CopyError(f"no SQLite database at {source_path}")
    # the source at the code's migration version, as the target will be
    sqlite_db = await SqliteDatabase.open(source_path)
    await sqlite_db.close()
    latest = max(m.version for m in load_migrations())
    try:
        conn = await asyncpg.connect(target_url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CopyError(f"cannot connect to the target: {exc}") from None
    source = _Source(source_path)
    try:
        target = _Target(conn)
        marker, resumed = await _begin(target, source)
        report = CopyReport(resumed=resumed)
        tables = source.tables()
        _check_unchanged(source, marker, tables)
        # the schema, by PostgreSQL's migrations (resumes an interrupted migration too)
        await (await PgDatabase.connect(target_url, min_size=1, max_size=1)).close()
        versions = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        if versions != latest:
            raise CopyError(f"the target is at migration {versions}, this program at {latest}")
        for table in tables:
            done = marker.get(_ROWS_KEY + table.name)
            if done is not None:
                report.tables.append(TableCopy(table.name, int(done), copied=False))
                continue
            rows = await _copy_table(target, source, table, batch_rows, on_batch)
            report.tables.append(TableCopy(table.name, rows, copied=True))
        report.sequences = await _advance_sequences(target)
        await _check(target_url, target, source, report)
        await conn.execute(
            "INSERT INTO lienthong_db_copy (item, value) VALUES ($1, $2)"
            " ON CONFLICT (item) DO UPDATE SET value = EXCLUDED.value",
            _COMPLETE_KEY,
            to_db_time(utcnow()),
        )
        return report
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise CopyError(f"PostgreSQL: {exc}") from None
    except sqlite3.Error as exc:
        raise CopyError(f"SQLite: {exc}") from None
    finally:
        source.close()
        await conn.close()
