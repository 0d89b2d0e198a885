"""``lienthong secrets rotate`` on a real data directory (real SQLite, real key files): every
sealed secret opens to the same plaintext with the new key only; env keys are refused."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.runtime import secretbox
from server.vdxp.credentials import decrypt_secret

LIENTHONG = Path(sys.executable).parent / "lienthong"
G22, AXIS = "000.00.00.G22", "000.00.00.H41"
WEBHOOK_SECRET = "webhook-secret-0123456789abcdefXYZ"
AXIS_TOKEN = "axis-token-9876543210zyxwvuQWERTY"


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def run(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(LIENTHONG), *args], capture_output=True, text=True, encoding="utf-8", timeout=60,
        env=env,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"lienthong {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def env() -> dict[str, str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in (secretbox.KEY_ENV, secretbox.KEY_FILE_ENV)
    }
    # A port nothing listens on: the "is the axis running" check must not see other tests.
    clean["LIENTHONG_SERVER_PORT"] = _free_port()
    return clean


def _setup(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str]:
    data = tmp_path / "data"
    d = ("--data-dir", str(data))
    run("init", *d, env=env)
    added = run("agency", "add", G22, "--name", "VPCP", "--system-id", "sys-g22", *d, env=env)
    vdxp_secret = added.stdout.strip().splitlines()[-1]
    run("agency", "add", AXIS, "--name", "Trục khác", *d, env=env)
    (tmp_path / "hook").write_text(WEBHOOK_SECRET)
    (tmp_path / "tok").write_text(AXIS_TOKEN)
    run("route", "webhook", G22, "--url", "http://127.0.0.1:9/hook",
        "--secret-file", str(tmp_path / "hook"), *d, env=env)  # fmt: skip
    run("route", "axis", AXIS, "--url", "http://127.0.0.1:9", "--token-file",
        str(tmp_path / "tok"), "--hosts", "000.00.99.*", *d, env=env)  # fmt: skip
    return data, vdxp_secret


def _rows(data: Path) -> tuple[str, str, str]:
    conn = sqlite3.connect(data / "lienthong.sqlite3")
    try:
        cred = conn.execute(
            "SELECT secret_ciphertext FROM vdxp_credentials WHERE organ_id = ?", (G22,)
        ).fetchone()[0]
        hook = conn.execute("SELECT secret FROM webhooks WHERE organ_id = ?", (G22,)).fetchone()[0]
        tok = conn.execute("SELECT token FROM axis_links WHERE organ_id = ?", (AXIS,)).fetchone()[0]
    finally:
        conn.close()
    return cred, hook, tok


def _open_all(key: bytes, data: Path) -> tuple[str, str, str]:
    cred, hook, tok = _rows(data)
    return (
        decrypt_secret(key, cred, organ_id=G22, system_id="sys-g22"),
        secretbox.unseal(key, hook, f"lienthong-webhook-secret\x00{G22}".encode()),
        secretbox.unseal(key, tok, f"lienthong-axis-link-token\x00{AXIS}".encode()),
    )


def _no_plaintext(data: Path, *plain: str) -> None:
    for f in data.glob("lienthong.sqlite3*"):
        blob = f.read_bytes()
        for p in plain:
            assert p.encode() not in blob, f"{p!r} in {f.name}"


def test_rotate_reseals_every_secret(tmp_path: Path, env: dict[str, str]) -> None:
    data, vdxp_secret = _setup(tmp_path, env)
    key_file = data / "secrets.key"
    old_key = secretbox.load_key(data, env={})
    old_text = key_file.read_text()
    assert _open_all(old_key, data) == (vdxp_secret, WEBHOOK_SECRET, AXIS_TOKEN)
    before = _rows(data)

    out = run("secrets", "rotate", "--data-dir", str(data), env=env)
    assert (
        "re-sealed 1 VDXP secret(s), 2 webhook secret(s)/axis token(s) and 0 signing-session"
        in out.stdout
    )

    assert key_file.read_text() != old_text
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    old_copy = data / "secrets.key.old"
    assert old_copy.read_text() == old_text
    assert stat.S_IMODE(old_copy.stat().st_mode) == 0o600
    assert not (data / "secrets.key.new").exists()

    new_key = secretbox.load_key(data, env={})
    assert new_key != old_key
    after = _rows(data)
    assert all(a != b for a, b in zip(after, before, strict=True))
    assert _open_all(new_key, data) == (vdxp_secret, WEBHOOK_SECRET, AXIS_TOKEN)
    with pytest.raises(Exception, match="cannot be"):
        decrypt_secret(old_key, after[0], organ_id=G22, system_id="sys-g22")
    with pytest.raises(secretbox.SecretsError):
        secretbox.unseal(old_key, after[1], f"lienthong-webhook-secret\x00{G22}".encode())
    with pytest.raises(secretbox.SecretsError):
        secretbox.unseal(old_key, after[2], f"lienthong-axis-link-token\x00{AXIS}".encode())
    _no_plaintext(data, vdxp_secret, WEBHOOK_SECRET, AXIS_TOKEN)

    # The axis itself still opens them: `route list` reads the sealed rows with the new key.
    listed = run("route", "list", "--data-dir", str(data), env=env)
    assert G22 in listed.stdout and AXIS in listed.stdout

    # A second rotation waits until the operator has deleted the .old key.
    again = run("secrets", "rotate", "--data-dir", str(data), env=env, check=False)
    assert again.returncode == 1 and "secrets.key.old" in again.stderr
    assert key_file.read_text() != old_text and _rows(data) == after


def test_rotate_finishes_an_interrupted_rotation(tmp_path: Path, env: dict[str, str]) -> None:
    """Crash after the commit, before the rename: rows sealed with .new, the key file old."""
    data, vdxp_secret = _setup(tmp_path, env)
    key_file = data / "secrets.key"
    old_text = key_file.read_text()
    run("secrets", "rotate", "--data-dir", str(data), env=env)
    new_text = key_file.read_text()
    # Put the files back as a crash before the rename would have left them.
    (data / "secrets.key.new").write_text(new_text)
    key_file.write_text(old_text)

    out = run("secrets", "rotate", "--data-dir", str(data), env=env)
    assert "finished an interrupted rotation" in out.stdout
    assert key_file.read_text() == new_text
    assert not (data / "secrets.key.new").exists()
    key = secretbox.load_key(data, env={})
    assert _open_all(key, data) == (vdxp_secret, WEBHOOK_SECRET, AXIS_TOKEN)


def test_rotate_with_key_file_env(tmp_path: Path, env: dict[str, str]) -> None:
    elsewhere = tmp_path / "keys" / "axis.key"
    elsewhere.parent.mkdir()
    data, vdxp_secret = _setup(tmp_path, env)
    (data / "secrets.key").rename(elsewhere)
    env = {**env, secretbox.KEY_FILE_ENV: str(elsewhere)}
    old_text = elsewhere.read_text()
    run("secrets", "rotate", "--data-dir", str(data), env=env)
    assert elsewhere.read_text() != old_text
    assert (elsewhere.parent / "axis.key.old").read_text() == old_text
    assert not (data / "secrets.key").exists()
    key = secretbox.load_key(data, env={secretbox.KEY_FILE_ENV: str(elsewhere)})
    assert _open_all(key, data) == (vdxp_secret, WEBHOOK_SECRET, AXIS_TOKEN)


def test_env_key_is_refused_in_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    data, _ = _setup(tmp_path, env)
    before = _rows(data)
    key_text = (data / "secrets.key").read_text().strip()
    result = run(
        "secrets", "rotate", "--data-dir", str(data),
        env={**env, secretbox.KEY_ENV: key_text}, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert secretbox.KEY_ENV in result.stderr and "key file" in result.stderr
    assert key_text not in result.stderr
    assert _rows(data) == before
    assert not (data / "secrets.key.old").exists()


def test_rotation_refused_while_the_axis_answers(tmp_path: Path, env: dict[str, str]) -> None:
    data, _ = _setup(tmp_path, env)
    before = _rows(data)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = {**env, "LIENTHONG_SERVER_PORT": str(listener.getsockname()[1])}
        result = run("secrets", "rotate", "--data-dir", str(data), env=busy, check=False)
    assert result.returncode == 1 and "stop `lienthong serve`" in result.stderr
    assert result.stderr.count("\n") == 1
    assert _rows(data) == before
