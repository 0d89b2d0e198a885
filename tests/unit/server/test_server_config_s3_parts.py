"""[s3] parallel_parts: the default, the environment override reaching the store's settings,
and out-of-range values refused with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.runtime.config import ConfigError, load_config
from server.runtime.objectstore import s3_settings

KEYS = {"LIENTHONG_S3_ACCESS_KEY": "ak", "LIENTHONG_S3_SECRET_KEY": "sk"}


def test_parallel_parts_default_and_override(tmp_path: Path) -> None:
    env = {"LIENTHONG_S3_ENDPOINT": "http://127.0.0.1:9", **KEYS}
    assert s3_settings(load_config(env=env, data_dir=tmp_path), env).parallel_parts == 2
    env["LIENTHONG_S3_PARALLEL_PARTS"] = "4"
    assert s3_settings(load_config(env=env, data_dir=tmp_path), env).parallel_parts == 4


@pytest.mark.parametrize("value", ["0", "17"])
def test_parallel_parts_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"s3\.parallel_parts"):
        load_config(env={"LIENTHONG_S3_PARALLEL_PARTS": value}, data_dir=tmp_path)
