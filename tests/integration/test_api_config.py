"""Configuration: TOML file, LIENTHONG_* overrides with types, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.runtime.config import ConfigError, load_config


def test_defaults_and_derived_paths(tmp_path: Path) -> None:
    config = load_config(env={})
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.max_body_bytes == 200 * 1024 * 1024
    config = load_config(env={}, data_dir=tmp_path)
    assert config.db_path == tmp_path / "lienthong.sqlite3"
    assert config.objects_dir == tmp_path / "objects"
    assert config.spool_dir == tmp_path / "spool"


def test_file_then_env_then_argument(tmp_path: Path) -> None:
    conf = tmp_path / "x.toml"
    conf.write_text('[server]\nport = 9000\nlog_json = false\n[storage]\ndata_dir = "/srv/a"\n')
    config = load_config(conf, env={})
    assert (config.server.port, config.server.log_json) == (9000, False)
    assert config.storage.data_dir == Path("/srv/a")
    env = {
        "LIENTHONG_SERVER_PORT": "9100",
        "LIENTHONG_SERVER_LOG_JSON": "yes",
        "LIENTHONG_STORAGE_DATA_DIR": "/srv/b",
        "LIENTHONG_TOKEN": "ignored",
    }
    config = load_config(conf, env=env)
    assert (config.server.port, config.server.log_json) == (9100, True)
    assert config.storage.data_dir == Path("/srv/b")
    assert load_config(conf, env=env, data_dir=tmp_path).storage.data_dir == tmp_path


@pytest.mark.parametrize(
    ("content", "env", "needle"),
    [
        ("[server]\nport = 'x'\n", {}, "server.port"),
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[nope]\n", {}, "[nope]"),
        ("[server\n", {}, "not valid TOML"),
        ("", {"LIENTHONG_SERVER_PORT": "eighty"}, "server.port"),
        ("", {"LIENTHONG_SERVER_PORT": "70000"}, "server.port"),
        ("", {"LIENTHONG_SERVER_LOG_JSON": "maybe"}, "server.log_json"),
        ("", {"LIENTHONG_SERVER_MAX_BODY_BYTES": "-5"}, "server.max_body_bytes"),
    ],
)
def test_bad_values_are_one_line_errors(
    tmp_path: Path, content: str, env: dict[str, str], needle: str
) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(conf, env=env)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_shipped_config_files_load() -> None:
    root = Path(__file__).resolve().parents[2]
    assert load_config(root / "conf" / "lienthong.toml", env={}).server.port == 8080
    prod = load_config(root / "conf" / "production.example.toml", env={})
    assert prod.storage.data_dir == Path("/var/lib/lienthong")
