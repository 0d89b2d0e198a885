"""``lienthong stats rebuild | fold`` through the installed console script, on a temporary data
directory (and in process on a PostgreSQL database): the rollups recomputed from the raw rows, a
missing database one line."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from fixtures_pg import database_settings
from test_cli_calendar import lienthong, one_error_line

from server.cli import main
from storage.backends import open_database

T0 = "2026-11-03T02:00:00.000000Z"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stats") / "data"
    assert lienthong("init", data=directory).returncode == 0
    return directory


# Two agencies and one document between them, stored without their rollups.
RAW = (
    (
        "INSERT INTO agencies (organ_id, name, created_at) VALUES"
        " ('000.00.00.H41', 'UBND tỉnh Nghệ An', ?), ('000.00.00.G22', 'VPCP', ?)",
        (T0, T0),
    ),
    (
        "INSERT INTO documents (id, sender, document_id, kind, sha256, size, received_at,"
        " meta_json) VALUES ('d1', '000.00.00.G22', 'x', 'document', 'aa', 1, ?, '{}')",
        (T0,),
    ),
    (
        "INSERT INTO deliveries (id, document_id, recipient, kind, created_at)"
        " VALUES ('l1', 'd1', '000.00.00.H41', 'document', ?)",
        (T0,),
    ),
    ("DELETE FROM stats_daily", ()),  # as if the rollups were lost
)
DAILY = "SELECT day, agency, counter, value FROM stats_daily ORDER BY agency, counter"
REBUILT = [
    ("2026-11-03", "000.00.00.G22", "sent", 1),
    ("2026-11-03", "000.00.00.G22", "without_paper", 1),  # no Paper flag: no paper copy
    ("2026-11-03", "000.00.00.H41", "received", 1),
]
# one cell for the sender's day, one for the recipient's
REBUILT_LINE = "Rebuilt 2 rollup cells from the raw rows."


def test_rebuild_recomputes_the_rollups_from_the_raw_rows(data: Path) -> None:
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        for sql, params in RAW:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()
    result = lienthong("stats", "rebuild", data=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == REBUILT_LINE
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        rows = conn.execute(DAILY).fetchall()
    finally:
        conn.close()
    assert rows == REBUILT
    again = lienthong("stats", "fold", data=data)
    assert again.returncode == 0 and again.stdout.strip() == "Folded 0 queued rollup cells."


async def _on_postgresql(
    url: str, statements: tuple[tuple[str, tuple[str, ...]], ...]
) -> list[tuple[object, ...]]:
    """Run ``statements`` on the PostgreSQL database at ``url``; its daily rollup rows."""
    database = await open_database(url)
    try:
        async with database.transaction() as tx:
            for sql, params in statements:
                await tx.execute(sql, params)
        async with database.reader() as tx:
            return [tuple(r) for r in await tx.fetchall(DAILY)]
    finally:
        await database.close()


def test_rebuild_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same rebuild on a [database] url naming PostgreSQL: the set-based SQL of the subtree
    rollups runs there and gives the same rows."""
    for name, value in database_settings(pg_url, tmp_path).items():
        monkeypatch.setenv(name, value)
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["init", *data]) == 0
    asyncio.run(_on_postgresql(pg_url, RAW))
    capsys.readouterr()
    assert main(["stats", "rebuild", *data]) == 0
    assert capsys.readouterr().out.strip() == REBUILT_LINE
    assert asyncio.run(_on_postgresql(pg_url, ())) == REBUILT
    assert main(["stats", "fold", *data]) == 0
    assert capsys.readouterr().out.strip() == "Folded 0 queued rollup cells."


def test_without_a_database_one_line(tmp_path: Path) -> None:
    assert "lienthong: error: " in one_error_line(
        lienthong("stats", "rebuild", data=tmp_path / "none")
    )
