"""VDXP secrets at rest: AES-GCM bound to the row, key from env, file or a new 0600 file."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from server.vdxp import credentials as c
from server.vdxp.errors import CredentialsError


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError):
        c.load_key(tmp_path, env={})
    key = c.load_key(tmp_path, env={}, create=True)
    assert len(key) == 32
    path = c.key_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert c.load_key(tmp_path, env={}, create=True) == key  # never overwritten


def test_key_from_environment_wins(tmp_path: Path) -> None:
    raw = bytes(range(32))
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert c.load_key(tmp_path, env={c.KEY_ENV: text}, create=True) == raw
    assert not c.key_path(tmp_path).exists()
    keyfile = tmp_path / "k"
    keyfile.write_text(text)
    assert c.load_key(tmp_path, env={c.KEY_FILE_ENV: str(keyfile)}) == raw
    with pytest.raises(CredentialsError):
        c.load_key(tmp_path, env={c.KEY_ENV: "c2hvcnQ"})


def test_secret_round_trip_and_binding_to_its_row() -> None:
    key = bytes(32)
    secret = c.new_secret()
    assert secret.isascii() and len(secret) >= 40
    stored = c.encrypt_secret(key, secret, organ_id="000.00.00.G22", system_id="sys-g22")
    assert secret not in stored
    assert c.decrypt_secret(key, stored, organ_id="000.00.00.G22", system_id="sys-g22") == secret
    with pytest.raises(CredentialsError):  # copied onto another agency's row
        c.decrypt_secret(key, stored, organ_id="000.00.00.H41", system_id="sys-g22")
    with pytest.raises(CredentialsError):  # another key
        c.decrypt_secret(bytes([1]) * 32, stored, organ_id="000.00.00.G22", system_id="sys-g22")


@pytest.mark.parametrize("bad", ["", "has space", 'quo"te', "semi;colon", "Đồng", "x" * 101])
def test_system_id_must_travel_in_a_header(bad: str) -> None:
    with pytest.raises(CredentialsError):
        c.check_system_id(bad)
