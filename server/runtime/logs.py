"""Structured logging: one JSON object per line, carrying the request id of the current request.

The request id lives in a context variable set by the request middleware, so every log line
emitted while serving a request (domain code included) carries it without passing it around.
Never log a token, a PIN, a key or document content: log ids and sizes only.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lienthong_request_id", default=None
)
# Fields that domain code adds to the request's one access line (see :func:`annotate`); None
# outside a request.
request_fields_var: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "lienthong_request_fields", default=None
)


def annotate(**fields: Any) -> bool:
    """Add ``fields`` to the access line of the request being served, if any; return whether
    they will be logged there. Outside a request (a CLI, a background task) nothing is kept
    and the caller logs its own line: one line per request, not one per step."""
    extra = request_fields_var.get()
    if extra is None:
        return False
    extra.update(fields)
    return True


# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged as-is.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time (UTC), level, logger, message, request_id, extras."""

    def __init__(self) -> None:
        super().__init__()
        # The "YYYY-MM-DDTHH:MM:SS" part of the time, per whole second: formatting a datetime
        # for every line is a measurable share of a small request's CPU.
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        micros = round(created * 1_000_000)
        second, fraction = divmod(micros, 1_000_000)
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._second, self._second_text = second, stamp.removesuffix("+00:00")
        return f"{self._second_text}.{fraction // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


# Control characters (C0, DEL, C1) and Unicode line and paragraph separators, written as
# escapes in text lines: a ``%0a`` in a request path must not start a forged line.
_ESCAPES = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape_controls(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``)."""
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """Plain text for a terminal, with the request id and extras appended. Control characters
    of the message and the extras are escaped, so one record is one line (a traceback that
    follows keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = escape_controls(
            " ".join(
                f"{k}={v}"
                for k, v in vars(record).items()
                if k not in _STANDARD_ATTRS and not k.startswith("_")
            )
        )
        request_id = request_id_var.get()
        prefix = f"[{request_id}] " if request_id else ""
        return f"{prefix}{base}" + (f" {extras}" if extras else "")


def setup_logging(*, json_lines: bool = True, level: int = logging.INFO) -> None:
    """Send the ``lienthong`` and ``aiohttp`` loggers to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
