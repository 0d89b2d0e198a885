"""The HTTP connections of the axis: what happens before a request reaches the application.

aiohttp answers a request its parser refuses (a control byte in a header, a header line over
8,190 bytes, a broken request line) itself, before any middleware runs: by default it logs the
parser's message at ERROR with a traceback and sends that message back as the 400 body. The
message quotes the offending line, so an ``Authorization: Bearer <token>`` header that a client
broke ended up in the log and in the answer (issue 18, finding 5). :class:`QuietRequestHandler`
is the base of the connections ``serve`` makes (``server/app/connections.py``,
``GuardedAppRunner``): they log such a refusal at WARNING, naming only the kind of
error, and answer a problem+json without the request's bytes; a body whose chunk framing breaks
mid-way fails the handler reading it (a 400), instead of leaving it waiting for more.

This leans on two private parts of aiohttp's ``RequestHandler`` (``_current_request``, the
request being served, and ``_messages``, the parsed messages waiting), checked by
tests/integration/test_sec_logs.py at the version uv.lock pins.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import _ErrInfo

from server.http.errors import problem_response

log = logging.getLogger("lienthong.http")


class QuietRequestHandler(web.RequestHandler):
    """A connection that answers parser refusals without echoing (or logging) the request, and
    hands a body's framing error to the handler reading that body."""

    def data_received(self, data: bytes) -> None:
        # aiohttp's C parser, meeting broken chunk framing in the middle of a body, drops the
        # body without an error (the handler reading it would wait until the client hangs up,
        # then fail as if the storage had) and queues a refusal for a next request. Give the
        # error to the body being read instead: its handler answers 400 (server/http/errors.py).
        reading = self._current_request
        queued = len(self._messages)
        super().data_received(data)
        if reading is None or len(self._messages) == queued:
            return
        body = reading.content
        for message, _ in list(self._messages)[queued:]:
            if isinstance(message, _ErrInfo) and message.exc is not None and not body.is_eof():
                if body.exception() is None:
                    body.set_exception(message.exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # Never the parser's message: it quotes the line (a header's value, a token).
        log.warning(
            "malformed request refused",
            extra={"remote": request.remote, "error": type(exc).__name__, "status": status},
        )
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already sent on this connection")
        response = problem_response(
            "bad-request",
            "The request is malformed HTTP: a request line or header the axis cannot read "
            "(e.g. a control character, or a line over 8,190 bytes).",
        )
        response.force_close()
        return response
