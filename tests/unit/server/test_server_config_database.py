"""The [database] settings: SQLite by default, a PostgreSQL url selects PostgreSQL, its password
only from the environment or a file, bad values refused with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.runtime.config import ConfigError, database_password, load_config
from storage.backends import is_postgres_url, with_password

URL = "postgresql://lienthong@127.0.0.1:5433/lienthong"


def test_sqlite_is_the_default(tmp_path: Path) -> None:
    config = load_config(env={}, data_dir=tmp_path)
    assert config.database.url is None and not config.database.postgresql
    assert config.db_path == tmp_path / "lienthong.sqlite3"


def test_postgresql_url_from_the_file_and_password_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "lienthong.toml"
    path.write_text(f'[database]\nurl = "{URL}"\npool_size = 20\n', "utf-8")
    config = load_config(path, env={})
    assert config.database.postgresql and config.database.pool_size == 20
    assert database_password(config.database) is None
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t/:@\n", "utf-8")
    env = {"LIENTHONG_DATABASE_PASSWORD_FILE": str(secret)}
    config = load_config(path, env=env)
    password = database_password(config.database)
    assert password == "s3cr3t/:@"
    assert (
        with_password(URL, password) == "postgresql://lienthong:s3cr3t/:@@127.0.0.1:5433/lienthong"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sqlite:///x.db", "must be postgresql://"),
        ("postgresql:///nohost", "must be postgresql://"),
        ("postgresql://u:pw@127.0.0.1/db", "password must not be in the url"),
    ],
)
def test_bad_urls_are_refused(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(env={"LIENTHONG_DATABASE_URL": value}, data_dir=tmp_path)
    assert "database.url" in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_pool_size_bounds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"database\.pool_size"):
        load_config(env={"LIENTHONG_DATABASE_POOL_SIZE": "0"}, data_dir=tmp_path)


def test_which_backend_a_target_names() -> None:
    assert is_postgres_url(URL) and is_postgres_url("postgres://h/db")
    assert not is_postgres_url(Path("/var/lib/lienthong/lienthong.sqlite3"))
    assert not is_postgres_url("/var/lib/lienthong/lienthong.sqlite3")
