"""Which metadata database a target names: a path is SQLite (storage/db.py), a
postgresql:// URL is PostgreSQL (storage/pg.py)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from storage.db import Database, SqliteDatabase
from storage.pg import DEFAULT_POOL_MAX, PgDatabase

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(target: Path | str) -> bool:
    """Whether `target` is a postgresql:// (or postgres://) URL."""
    return isinstance(target, str) and urlsplit(target).scheme in POSTGRES_SCHEMES


def with_password(url: str, password: str | None) -> str:
    """`url` with `password` put in (kept out of configuration files, given apart)."""
    if not password:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def open_database(
    target: Path | str,
    *,
    writer_lock: bool = False,
    password: str | None = None,
    pool_size: int = DEFAULT_POOL_MAX,
) -> Database:
    """Open the database `target` names, applying pending migrations: SQLite at a path
    (`writer_lock`: several server processes share the file), PostgreSQL at a URL (`password`
    added to it, `pool_size` connections at most)."""
    if is_postgres_url(target):
        return await PgDatabase.connect(with_password(str(target), password), max_size=pool_size)
    return await SqliteDatabase.open(Path(target), writer_lock=writer_lock)
