"""Fault tests (issue 9): real ``lienthong serve`` processes killed, starved of disk, stopped.

Every test here is marked ``faults`` (select with ``-m faults``, skip with ``-m "not faults"``);
all traffic stays on 127.0.0.1 and each test is bounded in count and time.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests (tests/faults/)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
