"""The event loop `lienthong serve` runs on: ``[server] event_loop``.

``"asyncio"`` (the default): the standard library's loop; ``"uvloop"``: uvloop (libuv), from
the optional ``speed`` extra; ``"auto"``: uvloop when it is installed, else asyncio's. uvloop
moves the loop's own work (selecting, socket reads and writes, callbacks) into C, but measured
with ``bench/send_profile.py`` on the send path it took no CPU off a package that could be told
from the noise (docs/operations.md, "Speed of the send path"): the cost is in storage and
Python code, so it stays a choice, not the default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from server.runtime.config import Config, ConfigError

T = TypeVar("T")


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop ``choice`` names; None for asyncio's own.

    Raises :class:`ConfigError` when ``"uvloop"`` is asked for and not installed.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                "setting server.event_loop: uvloop is not installed "
                "(pip install 'lienthong[speed]', or set it to 'asyncio')"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(choice: str) -> str:
    """What ``choice`` runs on: ``"uvloop"`` or ``"asyncio"`` (for the start-up log line)."""
    return "asyncio" if loop_factory(choice) is None else "uvloop"


def run_with_loop(config: Config, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the loop ``config.server.event_loop`` names."""
    try:
        factory = loop_factory(config.server.event_loop)
    except BaseException:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
