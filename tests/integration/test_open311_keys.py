"""``lienthong open311 key create|revoke|list`` on a temporary data directory: the key printed
once alone on its stdout line, only its hash stored, one active key per app, revocation, and
bad input as one line (real SQLite, the real command parser in process)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from server.app.application import build_app
from server.cli import main
from server.runtime.config import ConfigError, load_config
from server.runtime.tokens import hash_token


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lienthong: error: "), err
    return lines[0]


def test_key_create_revoke_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert run(capsys, "init", "--data-dir", data)[0] == 0
    code, out, err = run(
        capsys, "open311", "key", "create", "--name", "hanoi-app", "--data-dir", data
    )
    assert code == 0
    key = out.strip()
    assert out == key + "\n" and key.startswith("o311_") and len(key) > 40  # alone on its line
    assert "shown only this once" in err and key not in err
    with sqlite3.connect(tmp_path / "data" / "lienthong.sqlite3") as conn:
        stored = conn.execute("SELECT name, key_hash, revoked_at FROM open311_keys").fetchall()
        dump = "\n".join(conn.iterdump())
    assert stored == [("hanoi-app", hash_token(key), None)]
    assert key not in dump  # only the hash is stored

    # one active key per app
    code, out, err = run(
        capsys, "open311", "key", "create", "--name", "hanoi-app", "--data-dir", data
    )
    assert code == 1 and out == ""
    assert "already has an active key" in one_error_line(err)

    code, out, _ = run(capsys, "open311", "key", "list", "--data-dir", data)
    assert code == 0 and "hanoi-app" in out and key not in out

    code, out, _ = run(capsys, "open311", "key", "revoke", "hanoi-app", "--data-dir", data)
    assert code == 0 and "Revoked" in out
    code, _, err = run(capsys, "open311", "key", "revoke", "hanoi-app", "--data-dir", data)
    assert code == 1 and "no active Open311 key" in one_error_line(err)
    # a new key after revocation
    code, out, _ = run(
        capsys, "open311", "key", "create", "--name", "hanoi-app", "--data-dir", data
    )
    assert code == 0 and out.strip() != key


def test_key_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert run(capsys, "init", "--data-dir", data)[0] == 0
    code, out, err = run(
        capsys, "open311", "key", "create", "--name", "bad name!", "--data-dir", data
    )
    assert code == 1 and out == "" and "app name" in one_error_line(err)
    missing = str(tmp_path / "nowhere")
    code, out, err = run(capsys, "open311", "key", "create", "--name", "x", "--data-dir", missing)
    assert code == 1 and out == "" and "no database" in one_error_line(err)


def test_open311_settings(tmp_path: Path) -> None:
    config = load_config(env={"LIENTHONG_OPEN311_POSTS_PER_MINUTE": "5"}, data_dir=tmp_path)
    assert config.open311.posts_per_minute == 5 and config.open311.contact
    with pytest.raises(ConfigError, match=r"open311\.posts_per_minute"):
        load_config(env={"LIENTHONG_OPEN311_POSTS_PER_MINUTE": "0"}, data_dir=tmp_path)


async def test_a_key_made_by_the_cli_posts_until_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aiohttp_client: Any
) -> None:
    """The commands and the running app agree: an agency, a category and a key made with
    ``lienthong`` on a data directory; the app on it takes posts with that key, and refuses
    them once ``key revoke`` ran (while it runs)."""
    data = str(tmp_path / "data")
    setup = [
        ("init",),
        ("agency", "add", "000.01.00.H41", "--name", "Sở Xây dựng"),
        ("feedback", "category", "add", "duong", "--name", "Đường", "--agency", "000.01.00.H41"),
    ]

    async def cli(*argv: str) -> tuple[int, str, str]:  # the CLI runs its own event loop
        return await asyncio.to_thread(run, capsys, *argv, "--data-dir", data)

    for argv in setup:
        assert (await cli(*argv))[0] == 0
    key = (await cli("open311", "key", "create", "--name", "app"))[1].strip()
    config = load_config(env={"LIENTHONG_SERVER_LOG_JSON": "0"}, data_dir=Path(data))
    client = await aiohttp_client(build_app(config))
    form = {
        "service_code": "duong",
        "address_string": "Vinh",
        "last_name": "Lê",
        "email": "le@example.vn",
        "description": "Ổ gà",
    }
    resp = await client.post("/open311/v2/requests.json", data={**form, "api_key": key})
    assert resp.status == 200, await resp.text()
    assert (await cli("open311", "key", "revoke", "app"))[0] == 0
    resp = await client.post("/open311/v2/requests.json", data={**form, "api_key": key})
    assert resp.status == 403
