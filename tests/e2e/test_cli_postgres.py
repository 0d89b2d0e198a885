"""The local commands on a config whose [database] url names PostgreSQL: they work on that
database (no SQLite file appears), and a wrong password is one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

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
