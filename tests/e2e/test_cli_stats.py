"""``lienthong stats rebuild | fold`` through the installed console script, on a temporary data
directory: the rollups recomputed from the raw rows, a missing database one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_cli_calendar import lienthong, one_error_line

T0 = "2026-11-03T02:00:00.000000Z"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("stats") / "data"
    assert lienthong("init", data=directory).returncode == 0
    return directory


def test_rebuild_recomputes_the_rollups_from_the_raw_rows(data: Path) -> None:
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        conn.execute(
            "INSERT INTO agencies (organ_id, name, created_at) VALUES"
            " ('000.00.00.H41', 'UBND tỉnh Nghệ An', ?), ('000.00.00.G22', 'VPCP', ?)",
            (T0, T0),
        )
        conn.execute(
            "INSERT INTO documents (id, sender, document_id, kind, sha256, size, received_at,"
            " meta_json) VALUES ('d1', '000.00.00.G22', 'x', 'document', 'aa', 1, ?, '{}')",
            (T0,),
        )
        conn.execute(
            "INSERT INTO deliveries (id, document_id, recipient, kind, created_at)"
            " VALUES ('l1', 'd1', '000.00.00.H41', 'document', ?)",
            (T0,),
        )
        conn.execute("DELETE FROM stats_daily")  # as if the rollups were lost
        conn.commit()
    finally:
        conn.close()
    result = lienthong("stats", "rebuild", data=data)
    assert result.returncode == 0, result.stderr
    # one cell for the sender's day, one for the recipient's
    assert result.stdout.strip() == "Rebuilt 2 rollup cells from the raw rows."
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        rows = conn.execute(
            "SELECT day, agency, counter, value FROM stats_daily ORDER BY agency, counter"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [
        ("2026-11-03", "000.00.00.G22", "sent", 1),
        ("2026-11-03", "000.00.00.G22", "without_paper", 1),  # no Paper flag: no paper copy
        ("2026-11-03", "000.00.00.H41", "received", 1),
    ]
    again = lienthong("stats", "fold", data=data)
    assert again.returncode == 0 and again.stdout.strip() == "Folded 0 queued rollup cells."


def test_without_a_database_one_line(tmp_path: Path) -> None:
    assert "lienthong: error: " in one_error_line(
        lienthong("stats", "rebuild", data=tmp_path / "none")
    )
