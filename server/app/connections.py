"""The connections of the served axis against hostile or broken clients (issue 18, finding 1).

aiohttp alone keeps an idle connection for an hour (``keepalive_timeout=3630``), waits for the
rest of a request head or body for ever, and the process starts under the usual soft limit of
1,024 open files: a thousand idle sockets from one anonymous client made ``/healthz`` time out.
What the axis now does itself (docs/operations.md, "Connections"):

- **keep-alive** (``server.keepalive_timeout``): a connection that has not sent a complete
  request head this long after it opened, or after its last answer, is closed (aiohttp's own
  keep-alive timer, which also covers a connection that never sends a byte);
- **request head** (``server.header_timeout``): once the first byte of a request head has
  arrived, the head must be complete within this, else the connection is closed (slow loris);
- **request body** (``server.body_idle_timeout``): while a handler awaits a body, a client that
  sends no byte of it this long gets 408 ``request-timeout`` and the connection is closed; a
  pause the axis makes itself (aiohttp stops reading while the handler is behind) does not
  count;
- **per client address** (``server.max_connections_per_address``): a connection beyond the cap
  is answered 503 ``too-many-connections`` at once and closed, before anything is read;
- the soft **open-file limit** is raised to the hard one at start (:func:`raise_open_files_limit`),
  in the parent of ``serve --workers N`` and in each worker.

Each closing is counted in ``lienthong_connections_closed_total{reason}``.

aiohttp has no hooks for these, so :class:`GuardedRequestHandler` subclasses its protocol and
relies on a few of its internals (``_waiter``: a request head is awaited; ``_current_request``;
``_process_keepalive``; ``_reading_paused``), at the version uv.lock pins;
``tests/integration/test_net_connections.py`` checks every behaviour above against the real
server, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from server.app.protocol import QuietRequestHandler
from server.runtime.config import ServerSettings
from server.runtime.metrics import Metrics
from server.runtime.problems import DomainError, problem_type

log = logging.getLogger("lienthong")

REQUEST_TIMEOUT = problem_type(
    "request-timeout",
    408,
    "Request timeout",
    "The client sent no byte of the request body for server.body_idle_timeout seconds; "
    "nothing was stored and the connection is closed.",
)
TOO_MANY_CONNECTIONS = problem_type(
    "too-many-connections",
    503,
    "Too many connections",
    "This client address holds server.max_connections_per_address open connections already; "
    "this one is closed. Reuse connections, or retry after Retry-After seconds.",
    retry=True,
)
# Seconds in the Retry-After of a refused connection.
REFUSED_RETRY_AFTER = 5


class BodyIdleTimeout(DomainError):
    """No byte of the awaited request body arrived for ``server.body_idle_timeout`` seconds."""

    problem = REQUEST_TIMEOUT


@dataclass(frozen=True)
class ConnectionLimits:
    """The ``[server]`` timeouts (seconds) and the cap per client address (0: none)."""

    header_timeout: float = 20.0
    keepalive_timeout: float = 30.0
    body_idle_timeout: float = 30.0
    per_address: int = 128

    @classmethod
    def of(cls, settings: ServerSettings) -> ConnectionLimits:
        """The limits ``settings`` names (a worker's config holds its share of the cap)."""
        return cls(
            header_timeout=float(settings.header_timeout),
            keepalive_timeout=float(settings.keepalive_timeout),
            body_idle_timeout=float(settings.body_idle_timeout),
            per_address=settings.max_connections_per_address,
        )


def _refusal() -> bytes:
    """The whole HTTP answer written to a connection over its address's cap."""
    body = json.dumps(
        {
            "type": TOO_MANY_CONNECTIONS.uri,
            "title": TOO_MANY_CONNECTIONS.title,
            "status": TOO_MANY_CONNECTIONS.status,
            "detail": "Too many open connections from this address; this one is closed.",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {REFUSED_RETRY_AFTER}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class ConnectionGuard:
    """One process's open connections per client address, and the count of closings."""

    def __init__(self, limits: ConnectionLimits, metrics: Metrics | None) -> None:
        self.limits = limits
        self.metrics = metrics
        self.open_by_address: Counter[str] = Counter()

    def admit(self, address: str | None) -> bool:
        """Count a new connection from ``address``; False when it is over the cap."""
        if address is None:  # not an IP connection (a Unix socket): no cap
            return True
        cap = self.limits.per_address
        if cap and self.open_by_address[address] >= cap:
            self.closed("per-address-limit")
            return False
        self.open_by_address[address] += 1
        return True

    def release(self, address: str) -> None:
        """A connection admitted from ``address`` is gone."""
        self.open_by_address[address] -= 1
        if self.open_by_address[address] <= 0:
            del self.open_by_address[address]

    def closed(self, reason: str) -> None:
        """Count a connection the axis closed on its client."""
        if self.metrics is not None:
            self.metrics.connections_closed.labels(reason).inc()


class GuardedRequestHandler(QuietRequestHandler):
    """aiohttp's HTTP/1 protocol with the head and body timers of the module docstring, and
    malformed requests refused without echoing them (``server/app/protocol.py``)."""

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self.address: str | None = None  # set when admitted: counted under it until lost
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._last_data = self._loop.time()

    def _awaiting_head(self) -> bool:
        """Waiting for (the rest of) a request head, between requests."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._force_close

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        super().data_received(data)
        if data and self._awaiting_head():
            # bytes arrived and the head is still incomplete: it has begun
            if self._head_timer is None:
                self._head_timer = self._loop.call_later(
                    self.guard.limits.header_timeout, self._head_expired
                )
        elif self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._awaiting_head():
            self.guard.closed("header-timeout")
            self.force_close()

    def _process_keepalive(self) -> None:
        # aiohttp's keep-alive timer: it closes a connection awaiting a head past its deadline
        was_open = not self._force_close
        super()._process_keepalive()
        if was_open and self._force_close:
            self.guard.closed("header-timeout" if self._head_timer else "idle-timeout")

    def watch_body(self, request: web.BaseRequest) -> None:
        """Time the body of ``request`` (just made) until it has arrived whole."""
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if not request.content.is_eof():
            self._last_data = self._loop.time()
            timeout = self.guard.limits.body_idle_timeout
            self._body_timer = self._loop.call_later(timeout, self._check_body, request)

    def _check_body(self, request: web.BaseRequest) -> None:
        self._body_timer = None
        payload = request.content
        if (
            payload.is_eof()
            or self._current_request is not request  # answered already: aiohttp lingers
            or self._force_close
            or self._close
        ):
            return
        timeout = self.guard.limits.body_idle_timeout
        now = self._loop.time()
        if self._reading_paused or now - self._last_data < timeout:
            # The axis is behind (aiohttp stopped reading), or bytes came: look again later.
            wake = now + timeout if self._reading_paused else self._last_data + timeout
            self._body_timer = self._loop.call_at(wake, self._check_body, request)
            return
        self.guard.closed("body-idle-timeout")
        # The handler's read raises (408); the connection closes after that answer, and the
        # payload is marked complete so that aiohttp does not linger reading the rest of it.
        self.close()
        payload.set_exception(
            BodyIdleTimeout(
                f"No byte of the request body arrived for {timeout:g} seconds.",
                headers={"Connection": "close"},
            )
        )
        payload.feed_eof()

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)


class GuardedServer(web.Server):
    """aiohttp's low-level server making :class:`GuardedRequestHandler` protocols and counting
    connections per client address."""

    def __init__(self, handler: Any, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.guard = guard
        make_request = self.request_factory

        def request_factory(
            message: Any, payload: Any, protocol: Any, writer: Any, task: Any
        ) -> web.BaseRequest:
            request = make_request(message, payload, protocol, writer, task)
            if isinstance(protocol, GuardedRequestHandler):
                protocol.watch_body(request)
            return request

        self.request_factory = request_factory

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else None
        if not self.guard.admit(address):
            transport.write(_refusal())
            # Closed (once the answer is written; nothing is read) right after aiohttp has
            # started the handler's task: closed now, the connection would be lost before the
            # task starts, which aiohttp does not expect.
            self._loop.call_soon(handler.force_close)
            return
        if isinstance(handler, GuardedRequestHandler):
            handler.address = address

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        if isinstance(handler, GuardedRequestHandler) and handler.address is not None:
            self.guard.release(handler.address)
            handler.address = None
        super().connection_lost(handler, exc)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through a :class:`GuardedServer` with ``limits``."""

    def __init__(
        self,
        app: web.Application,
        *,
        limits: ConnectionLimits,
        metrics: Metrics | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self.guard = ConnectionGuard(limits, metrics)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app, as AppRunner does
        return GuardedServer(
            plain.request_handler,
            guard=self.guard,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **plain._kwargs,
        )


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (each connection is a
    file; the usual soft 1,024 is soon reached); the soft limit in force is returned. A limit
    that cannot be raised is logged and left as it is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("open-file limit not raised", extra={"soft": soft, "error": str(exc)})
        return soft
    return target
