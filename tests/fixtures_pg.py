"""A real PostgreSQL server for the tests: a throwaway cluster on 127.0.0.1.

Started once per test session (so once per pytest-xdist worker) by
tests/services/postgres/start-pg.sh (adapted from the proven reference scripts: Debian's
`postgresql` package, initdb into a temp dir, a free port, fsync on), stopped after. When
LIENTHONG_TEST_POSTGRES_URL is set, that server is used instead and nothing is started; the
role it names must be allowed to create databases.

Each test gets a database of its own, created from a migrated template database (`CREATE
DATABASE ... TEMPLATE`, tens of milliseconds), so tests stay independent without a server
each (initdb takes over a second).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from fixtures_pki import start_service

SCRIPTS = Path(__file__).resolve().parent / "services" / "postgres"
DB_BACKENDS = ("sqlite", "postgresql")
ENV_URL = "LIENTHONG_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class PgServer:
    """How to reach the test server (a URL naming its first database) and, for a server we
    started, its directory."""

    url: str
    directory: Path | None = None

    def database_url(self, name: str) -> str:
        """The server's URL naming database `name` instead."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path="/" + name))


def start_server(directory: Path) -> PgServer:
    """Start a server in `directory` (empty, and enterable by the `postgres` user when run as
    root); stop it with stop_server."""
    out = start_service(
        [str(SCRIPTS / "start-pg.sh"), str(directory)],
        [str(SCRIPTS / "stop-pg.sh"), "--rm", str(directory)],
    )
    return PgServer(out.splitlines()[-1], directory)


def stop_server(server: PgServer) -> None:
    """Stop a server started by start_server and remove its directory."""
    if server.directory is not None:
        subprocess.run(
            [str(SCRIPTS / "stop-pg.sh"), "--rm", str(server.directory)],
            capture_output=True,
            check=True,
        )


def postgres_server_fixture() -> Iterator[PgServer]:
    """Body of the session fixture `postgres_server` (registered in tests/conftest.py)."""
    given = os.environ.get(ENV_URL)
    if given:
        yield PgServer(given)
        return
    if not glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("runuser") is None:
        pytest.skip(
            "PostgreSQL tests need Debian's postgresql package (`make test` installs it; or "
            "tests/services/postgres/install-deps.sh) or LIENTHONG_TEST_POSTGRES_URL"
        )
    # Not tmp_path_factory: run as root the server runs as `postgres`, which cannot enter
    # pytest's /tmp/pytest-of-root (mode 0700); mkdtemp makes a short 0700 directory directly
    # under /tmp that start-pg.sh hands to that user.
    server = start_server(Path(tempfile.mkdtemp(prefix="lienthong-pg-")))
    try:
        yield server
    finally:
        stop_server(server)


# Database names of this process: unique per xdist worker, since a given server may be shared.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_numbers = itertools.count(1)


async def _admin(server: PgServer, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server.url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def fetch_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    """The rows of one query on the database at `url` (a connection of its own)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


class PgDatabases:
    """Makes databases on the test server: a migrated template once, then one copy per test."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.template = f"lt_tpl_{_WORKER}_{os.getpid()}"
        self._made: list[str] = []
        self._template_ready = False

    async def _ensure_template(self) -> None:
        if self._template_ready:
            return
        from storage.pg import PgDatabase

        await _admin(self.server, f"DROP DATABASE IF EXISTS {self.template}")
        await _admin(self.server, f"CREATE DATABASE {self.template}")
        db = await PgDatabase.connect(self.server.database_url(self.template))
        await db.close()
        self._template_ready = True

    async def new(self, *, migrated: bool = True) -> str:
        """A new database (migrated, or empty); return its URL."""
        name = f"lt_{_WORKER}_{os.getpid()}_{next(_numbers)}"
        if migrated:
            await self._ensure_template()
            await _admin(self.server, f"CREATE DATABASE {name} TEMPLATE {self.template}")
        else:
            await _admin(self.server, f"CREATE DATABASE {name}")
        self._made.append(name)
        return self.server.database_url(name)

    async def drop_all(self) -> None:
        """Drop every database made here (WITH (FORCE): connections left open are ended)."""
        names, self._made = self._made, []
        if self._template_ready:
            names.append(self.template)
        statements = [f"DROP DATABASE IF EXISTS {n} WITH (FORCE)" for n in names]
        if statements:
            await _admin(self.server, *statements)


def database_settings(url: str, directory: Path) -> dict[str, str]:
    """The LIENTHONG_DATABASE_* variables of a config on the database at `url`: the url without
    its password, which goes to a file in `directory` (a config refuses one in the url)."""
    parts = urlsplit(url)
    bare = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@"))
    secret = directory / "database-password"
    secret.write_text(parts.password or "", "utf-8")
    secret.chmod(0o600)
    return {
        "LIENTHONG_DATABASE_URL": urlunsplit(bare),
        "LIENTHONG_DATABASE_PASSWORD_FILE": str(secret),
    }


def pg_databases_fixture(server: PgServer) -> Iterator[PgDatabases]:
    """Body of the session fixture `pg_databases`. On a server of our own the databases go
    with it (each DROP DATABASE waits for a checkpoint: seconds); on a given server they are
    dropped."""
    made = PgDatabases(server)
    try:
        yield made
    finally:
        if server.directory is None:
            asyncio.run(made.drop_all())
