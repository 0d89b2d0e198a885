"""The vendored Apache ECharts (server/http/static/vendor/echarts/) is the file its README
records: same SHA-256, same version, its licence and notice beside it."""

from __future__ import annotations

import hashlib

from server.http.dashboard_page import ECHARTS_PATH, ECHARTS_SHA256, ECHARTS_VERSION


def test_vendored_echarts_is_the_recorded_file() -> None:
    assert hashlib.sha256(ECHARTS_PATH.read_bytes()).hexdigest() == ECHARTS_SHA256
    readme = (ECHARTS_PATH.parent / "README.md").read_text(encoding="utf-8")
    assert f"`{ECHARTS_SHA256}`" in readme
    assert f"**{ECHARTS_VERSION}**" in readme
    assert "Apache License" in (ECHARTS_PATH.parent / "LICENSE").read_text(encoding="utf-8")
    assert "Apache ECharts" in (ECHARTS_PATH.parent / "NOTICE").read_text(encoding="utf-8")
