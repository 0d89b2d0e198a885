"""The optional speed-ups of `lienthong serve` (issue 21): the event loop and JSON answers.

Each is used when installed and chosen, and the axis behaves the same without it: the loop
setting is checked, JSON answers carry the same values whichever encoder wrote them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from server.app import eventloop
from server.http import jsonresponse
from server.runtime.config import ConfigError, load_config


def test_json_answer_holds_the_same_values_as_the_standard_encoder() -> None:
    data = {
        "organ": "Văn phòng Chính phủ",
        "sizes": [1, 2.5, None, True],
        "nested": {"a": [], "b": {}},
        7: "a key that is not a string",
    }
    response = jsonresponse.json_response(data, status=201, headers={"ETag": '"x"'})
    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["ETag"] == '"x"'
    assert isinstance(response.body, bytes)
    assert "Văn phòng".encode() in response.body  # UTF-8, not \u escapes
    assert json.loads(response.body) == json.loads(json.dumps(data, ensure_ascii=False))


def test_a_value_orjson_cannot_encode_falls_back_to_the_standard_encoder() -> None:
    huge = 2**70  # beyond 64 bits
    assert json.loads(jsonresponse.encode_json({"n": huge})) == {"n": huge}
    with pytest.raises(TypeError):  # what the standard encoder always said
        jsonresponse.encode_json({"s": {1, 2}})


def test_without_orjson_the_standard_encoder_writes_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now raises ImportError
    encode = jsonresponse._encoder()
    assert encode is jsonresponse._encode_std
    assert encode({"a": "ồ"}) == '{"a": "ồ"}'.encode()


def test_event_loop_setting_names_a_known_loop(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[server]\nevent_loop = "trio"\n')
    with pytest.raises(ConfigError, match=r"server\.event_loop"):
        load_config(config, env={})
    assert load_config(None, env={}).server.event_loop == "asyncio"
    env = {"LIENTHONG_SERVER_EVENT_LOOP": "uvloop"}
    assert load_config(None, env=env).server.event_loop == "uvloop"


def test_asyncio_runs_on_the_standard_loop_and_uvloop_on_uvloop() -> None:
    config = load_config(None, env={})

    async def loop_type() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.loop_factory("asyncio") is None
    assert eventloop.run_with_loop(config, loop_type()).startswith("asyncio")
    pytest.importorskip("uvloop")
    uv = load_config(None, env={"LIENTHONG_SERVER_EVENT_LOOP": "uvloop"})
    assert eventloop.run_with_loop(uv, loop_type()).startswith("uvloop")
    assert eventloop.loop_name("auto") == "uvloop"


def test_uvloop_asked_for_but_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert eventloop.loop_factory("auto") is None  # auto: the standard loop
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        eventloop.loop_factory("uvloop")
    config = load_config(None, env={"LIENTHONG_SERVER_EVENT_LOOP": "uvloop"})

    async def never() -> None:
        raise AssertionError("not run")

    with pytest.raises(ConfigError):
        eventloop.run_with_loop(config, never())
