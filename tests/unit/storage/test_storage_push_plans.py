"""The push worker's polls seek the index deliveries_due (migration 0045) on SQLite, whatever
the number of undelivered rows of pull inboxes beside the due pushes.

Before 0045 SQLite chose deliveries_state (state, id) and walked every 'new' delivery on each
poll, inline on the event loop: a ~65 ms stall a poll with 10,000 of them (py-spy on
bench/dashboard_bench.py's axis at --scale 0.05), growing with the inboxes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.db import Database
from storage.repos.routes import DUE_PUSHES, OLDEST_DUE


def plan(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> str:
    return " | ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


async def test_the_push_polls_seek_the_due_index(tmp_path: Path) -> None:
    path = tmp_path / "lienthong.sqlite3"
    database = await Database.open(path)
    await database.close()
    conn = sqlite3.connect(path)
    try:
        # many undelivered pull deliveries, a few due pushes, and SQLite's statistics of them
        conn.execute("INSERT INTO agencies (organ_id, name, created_at) VALUES ('A', 'A', 'x')")
        conn.executemany(
            "INSERT INTO documents (id, kind, sender, document_id, sha256, size, received_at,"
            " meta_json) VALUES (?, 'document', 'A', ?, 's', 1, 'x', '{}')",
            [(f"d{i:08d}", f"k{i}") for i in range(5000)],
        )
        conn.executemany(
            "INSERT INTO deliveries (id, document_id, recipient, kind, state, created_at,"
            " next_attempt_at) VALUES (?, ?, 'A', 'document', 'new', 'x', ?)",
            [(f"{i:08d}", f"d{i:08d}", None if i % 500 else "2026-01-01") for i in range(5000)],
        )
        conn.commit()
        for analysed in (False, True):
            if analysed:
                conn.execute("ANALYZE")
            leased = plan(conn, DUE_PUSHES, ("~", "~", 10))
            oldest = plan(conn, OLDEST_DUE, ())
            assert "deliveries_due" in leased and "TEMP B-TREE" not in leased, leased
            assert "deliveries_due" in oldest, oldest
    finally:
        conn.close()
