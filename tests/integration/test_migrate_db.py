"""``lienthong storage migrate-db --to postgresql://...`` (issue 20, storage/dbcopy.py): a real
data directory's SQLite database copied into the suite's real PostgreSQL, checked, the config
switched, and the axis serving its old documents and new sends from PostgreSQL.

The data: `lienthong demo` (months of documents with statuses, dossiers with their events and
files, feedback with its events, through the domains) plus documents sent over HTTP to the axis
on SQLite. Interruptions: one in-process in the middle of a table (its transaction rolled back),
one SIGKILL of the command; each resumed by running it again, with no row twice.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from axis_client import document
from fixtures_pg import PgDatabases, fetch_rows

import edxml
from server.app.application import build_app
from server.cli import main
from server.demo.content import DEMO_RECIPIENT, DEMO_SENDER
from server.http.appkeys import DATABASE
from server.runtime.config import load_config
from server.runtime.tokens import new_token
from storage.db import Database
from storage.dbcopy import CopyError, copy_database
from storage.repos.tokens import TokenRepo

pytestmark = pytest.mark.slow
SENT = 4  # documents sent over HTTP before the move


def lienthong(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


async def add_token(db_path: Path, organ_id: str) -> str:
    database = await Database.open(db_path)
    try:
        token, token_hash = new_token()
        async with database.transaction() as tx:
            await TokenRepo(tx).create(organ_id, token_hash, label="migrate-db test")
        return token
    finally:
        await database.close()


async def send_documents(aiohttp_client: Any, config: Any, token: str, n: int) -> list[str]:
    """Send `n` documents from DEMO_SENDER to DEMO_RECIPIENT; return their DocumentIds."""
    client = await aiohttp_client(build_app(config))
    ids = []
    for _ in range(n):
        envelope = document(DEMO_SENDER, (DEMO_RECIPIENT,))
        resp = await client.post(
            "/api/v1/documents",
            data=edxml.serialize(envelope),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
        )
        assert resp.status == 201, await resp.text()
        ids.append(envelope.header.document_id)
    await client.close()
    return ids


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory seeded by `lienthong demo` (its database closed)."""
    data = tmp_path_factory.mktemp("demo") / "data"
    rc, _, err = lienthong("demo", "--data-dir", str(data))
    assert rc == 0, err
    yield data


@pytest.fixture
def data_dir(demo_data: Path, tmp_path: Path) -> Path:
    """This test's own copy of the demo data directory."""
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    return data


def sqlite_counts(db_path: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db_path) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'"
            )
        ]
        return {n: db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608


async def pg_counts(url: str, names: Any) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {n: await conn.fetchval(f'SELECT count(*) FROM "{n}"') for n in names}  # noqa: S608
    finally:
        await conn.close()


async def copied_tables(url: str) -> set[str]:
    rows = await fetch_rows(url, "SELECT item FROM lienthong_db_copy WHERE item LIKE 'table:%'")
    return {str(r[0]).removeprefix("table:") for r in rows}


def password_env(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The url without its password; the password in LIENTHONG_DATABASE_PASSWORD."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    monkeypatch.setenv("LIENTHONG_DATABASE_PASSWORD", parts.password or "")
    return url.replace(f":{parts.password}@", "@")


async def test_move_a_used_axis_to_postgresql_and_serve_from_it(
    data_dir: Path,
    tmp_path: Path,
    pg_databases: PgDatabases,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIENTHONG_SERVER_LOG_JSON", "0")
    monkeypatch.setenv("LIENTHONG_VERIFY_ONLINE", "0")
    config_file = tmp_path / "lienthong.toml"
    config_file.write_text(
        f'# the axis of the demo\n[storage]\ndata_dir = "{data_dir}"\n', encoding="utf-8"
    )
    sqlite_config = load_config(config_file)
    token = await add_token(sqlite_config.db_path, DEMO_SENDER)
    before = await send_documents(aiohttp_client, sqlite_config, token, SENT)
    counts = sqlite_counts(sqlite_config.db_path)
    assert counts["documents"] > SENT and counts["dossiers"] > 0 and counts["feedback"] > 0

    url = await pg_databases.new(migrated=False)
    bare = password_env(url, tmp_path, monkeypatch)
    rc, out, err = await asyncio.to_thread(
        lienthong, "storage", "migrate-db", "--to", bare, "--config", str(config_file)
    )
    assert rc == 0, err
    assert "row counts equal; audit chain verified" in out
    assert f'url = "{bare}"' in config_file.read_text("utf-8")
    assert "# the axis of the demo" in config_file.read_text("utf-8")
    assert await pg_counts(url, counts) == counts

    # the audit chain, as `lienthong audit verify` sees it on the switched config
    rc, out, err = await asyncio.to_thread(
        lienthong, "audit", "verify", "--config", str(config_file)
    )
    assert rc == 0, out + err

    # the axis on PostgreSQL: the old documents in the inbox, new sends take new ids
    pg_config = load_config(config_file)
    assert pg_config.database.url == bare
    after = await send_documents(aiohttp_client, pg_config, token, 2)
    client = await aiohttp_client(build_app(pg_config))
    recipient_token = await _pg_token(client, DEMO_RECIPIENT)
    seen: set[str] = set()
    query = "?limit=100"
    while True:
        resp = await client.get(
            f"/api/v1/inbox{query}", headers={"Authorization": f"Bearer {recipient_token}"}
        )
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        seen |= {item["edxml_document_id"] for item in page["items"]}
        if not page.get("next"):
            break
        query = f"?limit=100&after={page['next']}"
    assert set(before) | set(after) <= seen
    # a sequence moved past the copied ids: a new row of an identity column takes the next
    conn = await asyncpg.connect(url)
    try:
        top = await conn.fetchval("SELECT max(id) FROM dossier_events")
        following = await conn.fetchval(
            "SELECT nextval(pg_get_serial_sequence('dossier_events', 'id'))"
        )
        assert following == top + 1
    finally:
        await conn.close()
    # run again: already on PostgreSQL, refused in one line
    rc, _, err = await asyncio.to_thread(
        lienthong, "storage", "migrate-db", "--to", bare, "--config", str(config_file)
    )
    assert rc == 1 and err.count("\n") == 1 and "already uses PostgreSQL" in err


async def _pg_token(client: Any, organ_id: str) -> str:
    token, token_hash = new_token()
    async with client.app[DATABASE].transaction() as tx:
        await TokenRepo(tx).create(organ_id, token_hash, label="migrate-db test")
    return token


async def test_interrupted_in_a_table_resumes_without_a_row_twice(
    data_dir: Path, pg_databases: PgDatabases
) -> None:
    source = data_dir / "lienthong.sqlite3"
    url = await pg_databases.new(migrated=False)
    sent: list[tuple[str, int]] = []

    def stop_in_audit_log(table: str, rows: int) -> None:
        sent.append((table, rows))
        if table == "audit_log" and rows >= 20:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the table

    with pytest.raises(KeyboardInterrupt):
        await copy_database(source, url, batch_rows=10, on_batch=stop_in_audit_log)
    done = await copied_tables(url)
    assert "documents" in done and "audit_log" not in done
    assert (await pg_counts(url, ["audit_log"]))["audit_log"] == 0  # its transaction undone

    report = await copy_database(source, url, batch_rows=10)
    assert report.resumed
    kept = {t.name for t in report.tables if not t.copied}
    assert kept == done
    counts = sqlite_counts(source)
    assert await pg_counts(url, counts) == counts
    assert report.audit_head is not None and report.audit_entries == counts["audit_log"]


async def test_sigkilled_command_resumes(data_dir: Path, pg_databases: PgDatabases) -> None:
    url = await pg_databases.new(migrated=False)
    env = {**os.environ, "LIENTHONG_SERVER_LOG_JSON": "0"}
    args = [str(Path(sys.executable).parent / "lienthong"), "storage", "migrate-db", "--to", url]
    args += ["--data-dir", str(data_dir), "--batch-rows", "1", "--no-switch"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # killed once a few tables are committed, long before the 50th (one row per COPY)
        for _ in range(3000):
            if process.poll() is not None:
                break
            try:
                if len(await copied_tables(url)) >= 4:
                    break
            except asyncpg.UndefinedTableError:
                pass
            await asyncio.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        _, err = process.communicate()
    assert process.returncode == -signal.SIGKILL, err.decode()
    done = await copied_tables(url)
    assert 4 <= len(done) < 50

    rc, out, err_text = await asyncio.to_thread(
        lienthong, "storage", "migrate-db", "--to", url, "--data-dir", str(data_dir), "--no-switch"
    )
    assert rc == 0, err_text
    assert f"{len(done)} kept from the interrupted run" in out
    counts = sqlite_counts(data_dir / "lienthong.sqlite3")
    assert await pg_counts(url, counts) == counts


async def test_refusals_are_one_line(
    data_dir: Path, demo_data: Path, pg_databases: PgDatabases, tmp_path: Path
) -> None:
    def refused(*args: str) -> str:
        rc, _, err = lienthong("storage", "migrate-db", *args)
        assert rc == 1 and err.startswith("lienthong: error: ") and err.count("\n") == 1, err
        return err

    # a database in use by something else: tables, and not a copy of ours
    used = await pg_databases.new(migrated=True)
    assert "is not empty" in await asyncio.to_thread(
        refused, "--to", used, "--data-dir", str(data_dir)
    )
    # another axis's copy
    other = tmp_path / "other"
    shutil.copytree(demo_data, other)
    theirs = await pg_databases.new(migrated=False)
    await copy_database(other / "lienthong.sqlite3", theirs)
    assert "copy of another database" in await asyncio.to_thread(
        refused, "--to", theirs, "--data-dir", str(data_dir)
    )
    assert "postgresql://" in refused("--to", "mysql://x/y", "--data-dir", str(data_dir))
    assert "no database" in refused("--to", theirs, "--data-dir", str(tmp_path / "none"))


async def test_a_source_changed_since_the_interruption_is_refused(
    data_dir: Path, pg_databases: PgDatabases, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIENTHONG_SERVER_LOG_JSON", "0")
    source = data_dir / "lienthong.sqlite3"
    url = await pg_databases.new(migrated=False)

    def stop(table: str, rows: int) -> None:
        if table == "dossiers":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await copy_database(source, url, on_batch=stop)
    # the axis was started again on SQLite meanwhile and took a document
    config = load_config(env={}, data_dir=data_dir)
    token = await add_token(source, DEMO_SENDER)
    await send_documents(aiohttp_client, config, token, 1)
    with pytest.raises(CopyError, match="changed since this copy began"):
        await copy_database(source, url)


async def test_a_row_before_the_row_it_references_in_its_own_table(
    data_dir: Path, pg_databases: PgDatabases
) -> None:
    """An agency stored before its parent (both kept by SQLite's file order), copied one row a
    batch: the self-reference is checked at the end of the table, not at each batch."""
    import sqlite3

    source = data_dir / "lienthong.sqlite3"
    with sqlite3.connect(source) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(
            "INSERT INTO agencies (organ_id, name, parent_id, created_at) VALUES"
            " ('000.01.77.H41', 'Phòng con', '000.00.77.H41', '2026-01-01T00:00:00Z'),"
            " ('000.00.77.H41', 'Sở cha', NULL, '2026-01-01T00:00:00Z')"
        )
    url = await pg_databases.new(migrated=False)
    report = await copy_database(source, url, batch_rows=1)
    assert next(t for t in report.tables if t.name == "agencies").rows == 7
    rows = await fetch_rows(url, "SELECT parent_id FROM agencies WHERE organ_id = '000.01.77.H41'")
    assert rows == [("000.00.77.H41",)]
    # and a dangling one is refused, the table not marked done
    with sqlite3.connect(source) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(
            "INSERT INTO agencies (organ_id, name, parent_id, created_at) VALUES"
            " ('000.02.77.H41', 'Mồ côi', '000.00.99.H41', '2026-01-01T00:00:00Z')"
        )
    other = await pg_databases.new(migrated=False)
    with pytest.raises(CopyError, match="agencies"):
        await copy_database(source, other, batch_rows=1)
    assert "agencies" not in await copied_tables(other)
