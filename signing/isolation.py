"""Verification in worker processes with a time and memory budget.

A hostile PDF can make a parser loop, recurse or allocate without bound. Each file is verified
by a long-lived worker process (so validation contexts and imports are reused across files);
when a file exceeds its time budget the worker is killed and replaced, and the caller gets a
report saying the file could not be verified in time. Workers cap their address space, so a
memory bomb ends in a ``MemoryError`` verdict instead of taking the machine down.

:class:`VerifierPool` is thread-safe; :meth:`VerifierPool.averify` keeps the event loop free.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from signing.report import ValidationReport
from signing.validation import VerificationPolicy, close_shared_resources, verify_in_process

MEMORY_LIMIT_BYTES = 2 * 1024 * 1024 * 1024


def _worker_main(conn: Connection, memory_limit: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    except (ImportError, ValueError, OSError):
        pass
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            close_shared_resources()
            return
        data, policy, file_name = job
        try:
            report = verify_in_process(data, policy, file_name=file_name)
            conn.send(report.to_json())
        except BaseException as exc:  # MemoryError, RecursionError ...: still an answer
            conn.send({"__error__": f"{type(exc).__name__}: {exc}"[:300]})


class _Worker:
    def __init__(self, ctx: Any, memory_limit: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(child, memory_limit), daemon=True, name="pdf-verifier"
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class VerifierPool:
    """``size`` worker processes verifying PDFs, each file within ``policy.timeout`` seconds."""

    def __init__(
        self,
        size: int | None = None,
        memory_limit: int = MEMORY_LIMIT_BYTES,
        *,
        preload: Sequence[str] = (),
    ) -> None:
        """``preload``: modules a worker imports before the verifier (and pyHanko), for an
        application's process set-up, e.g. its warning filters (multiprocessing's own
        ``"__main__"`` preload does not reach a forkserver on Python 3.11)."""
        self.size = size or max(1, min(4, os.cpu_count() or 1))
        self.memory_limit = memory_limit
        # forkserver: workers do not inherit the caller's threads or event loop
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None
        self._ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            self._ctx.set_forkserver_preload([*preload, "signing.validation", "signing.isolation"])
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0
        self._closed = False

    def _take(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._started < self.size:
                self._started += 1
                return _Worker(self._ctx, self.memory_limit)
        return self._idle.get()

    def verify(
        self, data: bytes, policy: VerificationPolicy, *, file_name: str | None = None
    ) -> ValidationReport:
        """Verify ``data`` in a worker; a file over budget yields an "unreadable" report."""
        if self._closed:
            raise RuntimeError("verifier pool is closed")
        worker = self._take()
        healthy = False
        try:
            worker.conn.send((data, policy, file_name))
            if worker.conn.poll(policy.timeout):
                answer = worker.conn.recv()
                healthy = True
                if "__error__" in answer:
                    return _failure(data, file_name, f"verification error: {answer['__error__']}")
                return ValidationReport.from_json(answer)
            return _failure(
                data,
                file_name,
                f"verification took longer than {policy.timeout:g} s and was stopped "
                "(hostile or too complex PDF)",
            )
        except (EOFError, OSError, BrokenPipeError) as exc:
            return _failure(data, file_name, f"verification worker died: {type(exc).__name__}")
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                worker.kill()
                with self._lock:
                    self._started -= 1

    async def averify(
        self, data: bytes, policy: VerificationPolicy, *, file_name: str | None = None
    ) -> ValidationReport:
        """:meth:`verify` without blocking the event loop."""
        return await asyncio.to_thread(self.verify, data, policy, file_name=file_name)

    def close(self) -> None:
        """Stop every worker."""
        self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            try:
                worker.conn.send(None)
            except OSError:
                pass
            worker.kill()


def _failure(data: bytes, file_name: str | None, reason: str) -> ValidationReport:
    return ValidationReport.unreadable(data, file_name, reason)


_SHARED: VerifierPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool() -> VerifierPool:
    """The process-wide pool used by :func:`signing.verify.verify`."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = VerifierPool()
        return _SHARED
