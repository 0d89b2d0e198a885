"""The local commands on a config whose [database] url names PostgreSQL: they work on that
database (no SQLite file appears), and a wrong password is one line, never a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from fixtures_pg import database_settings

from server.cli import main


def test_init_agency_and_audit_verify_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in database_settings(pg_url, tmp_path).items():
        monkeypatch.setenv(name, value)
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["init", *data]) == 0
    assert "database: postgresql://" in capsys.readouterr().out
    assert main(["agency", "add", "000.00.00.H41", "--name", "UBND tỉnh Nghệ An", *data]) == 0
    assert main(["audit", "verify", *data]) == 0
    out = capsys.readouterr().out
    assert "audit log OK: 1 entries" in out or "audit log OK: 1 entry" in out, out
    assert not (tmp_path / "data" / "lienthong.sqlite3").exists()

    monkeypatch.setenv("LIENTHONG_DATABASE_PASSWORD", "wrong")
    assert main(["audit", "verify", *data]) != 0
    err = capsys.readouterr().err
    assert "password authentication failed" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_audit_verify_names_an_entry_edited_through_sql_on_postgresql(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with the database's owner role edits an audit entry with plain SQL: `audit
    verify` names it and fails."""
    for name, value in database_settings(pg_url, tmp_path).items():
        monkeypatch.setenv(name, value)
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["init", *data]) == 0
    for organ_id in ("000.00.00.H41", "000.00.00.H42"):
        assert main(["agency", "add", organ_id, "--name", organ_id, *data]) == 0
    assert main(["audit", "verify", *data]) == 0
    capsys.readouterr()

    async def tamper() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 1")
        finally:
            await conn.close()

    asyncio.run(tamper())
    assert main(["audit", "verify", *data]) != 0
    captured = capsys.readouterr()
    report = captured.out + captured.err
    assert "seq 1: edited" in report, report
    assert "Traceback" not in report
