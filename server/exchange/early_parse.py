"""Parsing a large package while its body is still arriving (issue 21).

On S3 a large package is uploaded while it arrives (storage/objects/s3_stream.py); what was left
after its last byte was the parse of the whole package from the spool file (about 3.7 s per GB
here), which only then could begin. :class:`EarlyParse` follows the spool file instead: once
``EARLY_PARSE_BYTES`` of it are written, a worker thread parses it through a reader that waits
for each next write (:class:`_Following`), so that by the last byte the parse is nearly done too.

It is the same parse (``edxml.parse`` on a stream, the reference way), only begun sooner; its
result or its error is what the exchange then judges (validation, trace, loop), exactly as for
a package parsed after the fact. A body that fails (cut, too large, S3 down) aborts the reader:
the thread stops at its next read. Packages below the threshold are parsed after the fact, as
before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar, cast

T = TypeVar("T")

# Below this a package is parsed after the fact: its parse is short, and small sends keep
# their path (and their thread hops) as they were.
EARLY_PARSE_BYTES = 8 * 1024 * 1024
# Threads of their own (started on first use): an early parse waits for its body most of the
# time, and must not hold the default pool's threads, where other requests' short blocking calls
# go. More large sends at once than this queue their parses, each begun when a thread is free.
_PARSE_THREADS = ThreadPoolExecutor(4, thread_name_prefix="lienthong-early-parse")


class _Aborted(Exception):
    """The body failed: the spool file will never be complete."""


class EarlyParse(Generic[T]):
    """``parse`` run on the spool file while it is written (see the module docstring).

    The spool calls :meth:`written` after each flushed write and :meth:`abort` when the body
    fails; the exchange awaits :meth:`result` when :attr:`started`.
    """

    def __init__(self, parse: Callable[[BinaryIO], T], threshold: int = EARLY_PARSE_BYTES):
        self._parse = parse
        self._threshold = threshold
        self._changed = threading.Condition()
        self._size = 0
        self._last = False
        self._aborted = False
        self._begun = threading.Event()
        self._future: asyncio.Future[T] | None = None

    @property
    def started(self) -> bool:
        """True once the parse began (the body crossed the threshold before it ended)."""
        return self._future is not None

    def written(self, path: Path, size: int, *, last: bool = False) -> None:
        """The first ``size`` bytes of ``path`` are on disk (all of it when ``last``)."""
        with self._changed:
            self._size, self._last = size, last
            self._changed.notify_all()
        if self._future is None and not last and size >= self._threshold:
            future = asyncio.get_running_loop().run_in_executor(_PARSE_THREADS, self._run, path)
            future.add_done_callback(_retrieve)
            self._future = future

    def abort(self) -> None:
        """The body failed: the parse stops at its next read."""
        with self._changed:
            self._aborted = True
            self._changed.notify_all()

    def withdraw(self) -> bool:
        """Give up a parse still queued for a thread (others' bodies hold them all): True if
        it will not run, and the package is to be parsed now, after the fact."""
        if self._future is None or self._begun.is_set():
            return False
        return self._future.cancel()

    async def result(self) -> T:
        """What ``parse`` returned, or its exception."""
        assert self._future is not None
        return await self._future

    def _run(self, path: Path) -> T:
        self._begun.set()
        with open(path, "rb") as src:
            return self._parse(cast(BinaryIO, _Following(src, self._available)))

    def _available(self, position: int) -> int:
        """Bytes past ``position`` written so far; waits for some unless the file is complete
        (0 then means its end)."""
        with self._changed:
            while True:
                if self._aborted:
                    raise _Aborted("the body failed before its end")
                if self._size > position or self._last:
                    return self._size - position
                self._changed.wait()


class _Following:
    """A binary reader of a file being written: ``read`` waits for more until it is complete."""

    def __init__(self, src: BinaryIO, available: Callable[[int], int]) -> None:
        self._src = src
        self._available = available
        self._position = 0

    def seekable(self) -> bool:
        return False  # its size is not known: edxml streams it

    def read(self, size: int = -1) -> bytes:
        available = self._available(self._position)
        want = available if size < 0 else min(size, available)
        if want <= 0:
            return b""
        data = self._src.read(want)
        if not data:
            raise OSError("the spool file is shorter than what was written to it")
        self._position += len(data)
        return data


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark the outcome as seen: an aborted parse nobody awaits is no error to report."""
    if not future.cancelled():
        future.exception()
