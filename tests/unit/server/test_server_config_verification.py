"""The [verification] settings: defaults, the file section, LIENTHONG_VERIFICATION_* overrides,
and bad values refused with the setting's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.runtime.config import ConfigError, load_config


def test_defaults_are_the_former_constants(tmp_path: Path) -> None:
    settings = load_config(env={}, data_dir=tmp_path).verification
    assert settings.public_max_bytes == settings.upload_max_bytes == 50 * 1024 * 1024
    assert (settings.public_slots, settings.workers, settings.retry_after) == (4, 2, 5)
    assert settings.online is True and settings.refresh_min_interval == 3600


def test_file_section_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "lienthong.toml"
    path.write_text("[verification]\npublic_slots = 8\nworkers = 3\nonline = false\n", "utf-8")
    env = {
        "LIENTHONG_VERIFICATION_PUBLIC_SLOTS": "16",
        "LIENTHONG_VERIFICATION_PUBLIC_MAX_BYTES": "1048576",
    }
    settings = load_config(path, env=env).verification
    assert settings.public_slots == 16  # the environment wins over the file
    assert settings.public_max_bytes == 1024 * 1024
    assert settings.workers == 3 and settings.online is False


@pytest.mark.parametrize(
    ("var", "value", "name"),
    [
        ("LIENTHONG_VERIFICATION_PUBLIC_SLOTS", "0", "verification.public_slots"),
        ("LIENTHONG_VERIFICATION_WORKERS", "0", "verification.workers"),
        ("LIENTHONG_VERIFICATION_PUBLIC_MAX_BYTES", "lots", "verification.public_max_bytes"),
        ("LIENTHONG_VERIFICATION_REFRESH_MIN_INTERVAL", "-1", "refresh_min_interval"),
    ],
)
def test_bad_values_are_refused_by_name(tmp_path: Path, var: str, value: str, name: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(name)):
        load_config(env={var: value}, data_dir=tmp_path)


def test_unknown_setting_in_the_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lienthong.toml"
    path.write_text("[verification]\npublic_slot = 8\n", "utf-8")
    with pytest.raises(ConfigError, match=r"verification\.public_slot"):
        load_config(path, env={})
