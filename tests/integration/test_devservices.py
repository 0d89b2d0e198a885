"""``[devpki]`` (development only): the setting, and what ``serve`` does with it."""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path

import pytest

from server.app.devservices import SOFTHSM2_CONF_ENV, DevServicesError, dev_services
from server.runtime.config import ConfigError, load_config
from signing import devpki
from signing.trust import TEST_TRUST_ENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lienthong.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_devpki_setting_from_file_and_env(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env={}).devpki.dir is None
    config = load_config(write(tmp_path, '[devpki]\ndir = "data/pki"\nserve = false\n'), env={})
    assert config.devpki.dir == Path("data/pki") and config.devpki.serve is False
    env = {"LIENTHONG_DEVPKI_DIR": "/x/pki", "LIENTHONG_DEVPKI_SERVE": "yes"}
    config = load_config(write(tmp_path, ""), env=env)
    assert config.devpki.dir == Path("/x/pki") and config.devpki.serve is True
    with pytest.raises(ConfigError, match=r"unknown setting devpki\.port"):
        load_config(write(tmp_path, "[devpki]\nport = 1\n"), env={})


def test_no_devpki_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, "/elsewhere.conf")
    with dev_services(load_config(write(tmp_path, ""), env={})) as url:
        assert url is None
        assert os.environ[SOFTHSM2_CONF_ENV] == "/elsewhere.conf"
    assert os.environ[SOFTHSM2_CONF_ENV] == "/elsewhere.conf"


def test_devpki_without_a_pki_is_one_line(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f'[devpki]\ndir = "{tmp_path / "none"}"\n'), env={})
    with pytest.raises(DevServicesError, match=r"^setting devpki.dir: .* holds no generated PKI"):
        with dev_services(config):
            pass


def test_devpki_serves_and_trusts_while_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registered first, so that monkeypatch restores the variables dev_services sets.
    monkeypatch.setenv(SOFTHSM2_CONF_ENV, "")
    monkeypatch.setenv(TEST_TRUST_ENV, "")
    pki = devpki.generate(tmp_path / "pki", port=free_port())
    (tmp_path / "pki" / "softhsm").mkdir()
    (tmp_path / "pki" / "softhsm" / "softhsm2.conf").write_text("directories.tokendir = /x\n")
    config = load_config(write(tmp_path, f'[devpki]\ndir = "{tmp_path / "pki"}"\n'), env={})
    with dev_services(config) as url:
        assert url == pki.url_prefix
        with urllib.request.urlopen(pki.crl_url(), timeout=10) as resp:
            assert resp.status == 200 and len(resp.read()) > 100
        assert os.environ[SOFTHSM2_CONF_ENV] == str(tmp_path / "pki" / "softhsm" / "softhsm2.conf")
        assert os.environ[TEST_TRUST_ENV] == str(tmp_path / "pki" / "trust")
        # A second axis on the same PKI cannot serve it too: one clear line, no traceback.
        with pytest.raises(DevServicesError, match="is another `lienthong serve`"):
            with dev_services(config):
                pass
    with pytest.raises(OSError):  # stopped with the block
        urllib.request.urlopen(pki.crl_url(), timeout=2)
