"""Migration 0039 on a real SQLite file: the rows of ``dossier_transfer_reports`` move into
``carried_outbox`` (one topic per transfer, their order, bytes and attempts kept) and the table
goes."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import storage.db
from storage.db import Database, load_migrations
from storage.repos.carried_outbox import OutboxRepo

PAST = "2026-01-05T08:00:00.000000Z"


async def test_reports_move_into_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "meta.db"
    monkeypatch.setattr(
        storage.db, "load_migrations", lambda: [m for m in load_migrations() if m.version <= 38]
    )
    await (await Database.open(path)).close()
    # What the status messages of two transfers' moves left under 0038 (foreign keys off: the
    # transfers' packages need not exist for this). Transfer 7's second message waits behind its
    # first, which failed; transfer 8's first was accepted, its second waits.
    reports = [
        (7, b"<seven-1/>", 1, "OSError: the spool is full", None, None),
        (8, b"<eight-1/>", 1, None, "pkg-8-1", PAST),
        (7, b"<seven-2/>", 0, None, None, None),
        (8, b"<eight-2/>", 0, None, None, None),
    ]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO dossier_transfer_reports (transfer, actor, message, created_at,"
            " attempts, next_attempt_at, last_error, package, sent_at)"
            " VALUES (?, 'SO', ?, ?, ?, ?, ?, ?, ?)",
            [(t, m, PAST, a, PAST, e, p, s) for t, m, a, e, p, s in reports],
        )
    monkeypatch.setattr(storage.db, "load_migrations", load_migrations)

    db = await Database.open(path)
    try:
        async with db.reader() as tx:
            assert (
                await tx.fetchone(
                    "SELECT 1 FROM sqlite_master WHERE name = 'dossier_transfer_reports'"
                )
                is None
            )
            rows = await tx.fetchall(
                "SELECT topic, kind, actor, message, attempts, last_error, package, sent_at,"
                " next_attempt_at FROM carried_outbox ORDER BY id"
            )
            assert [tuple(r) for r in rows] == [
                (f"dossier:report:{t}", "status", "SO", m, a, e, p, s, PAST)
                for t, m, a, e, p, s in reports
            ]
            outbox = OutboxRepo(tx)
            # The waiting ones, each topic in its order, due as they were.
            seven = await outbox.waiting("dossier:report:7")
            assert [(r.message, r.attempts) for r in seven] == [
                (b"<seven-1/>", 1),
                (b"<seven-2/>", 0),
            ]
            assert [r.message for r in await outbox.waiting("dossier:report:8")] == [b"<eight-2/>"]
            now = datetime(2026, 1, 6, tzinfo=UTC)
            assert await outbox.due_topics("dossier:", now) == [
                "dossier:report:7",
                "dossier:report:8",
            ]
            assert await outbox.due_topics("feedback:", now) == []
    finally:
        await db.close()
