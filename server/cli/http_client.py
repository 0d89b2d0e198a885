"""A small blocking HTTP client of the axis API for the ``lienthong`` client commands.

Plain ``http.client`` (no extra dependency): packages are uploaded from a file and downloaded to
a file in 256 KiB chunks, so a 1 GB package never sits in memory; transfers over 1 MB show a
progress bar on stderr. Every failure becomes a :class:`ClientError` with a one-line message:
problem+json answers as ``<title>: <detail>``, network failures in plain words.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from server import __version__
from server.cli import CliError

CHUNK = 256 * 1024
PROGRESS_THRESHOLD = 1024 * 1024
DEFAULT_TIMEOUT = 60.0


class ClientError(CliError):
    """A request to the axis failed; the message is one line."""

    def __init__(self, message: str, status: int | None = None, problem_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.problem_type = problem_type


class Progress:
    """A one-line progress bar on stderr for transfers larger than :data:`PROGRESS_THRESHOLD`.

    On a terminal it redraws in place (at most ten times a second); elsewhere (logs, CI, tests)
    it prints one summary line at the end instead of a stream of carriage returns.
    """

    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self.tty = self.stream.isatty()

    @property
    def shown(self) -> bool:
        """Whether this transfer is large enough to report (unknown sizes count once large)."""
        size = self.total if self.total is not None else self.done
        return size > PROGRESS_THRESHOLD

    def update(self, n: int) -> None:
        """Account ``n`` more bytes; redraw the bar on a terminal."""
        self.done += n
        if not (self.tty and self.shown):
            return
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self.stream.write("\r" + self._line(now))
            self.stream.flush()

    def finish(self) -> None:
        """Print the final state (a summary line with the rate) when the transfer was large."""
        if not self.shown:
            return
        prefix = "\r" if self.tty else ""
        self.stream.write(prefix + self._line(time.monotonic()) + "\n")
        self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed / 1e6
        mb = self.done / 1e6
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * 30)
            bar = "#" * filled + "." * (30 - filled)
            return (
                f"{self.label} [{bar}] {fraction * 100:5.1f}% "
                f"{mb:.1f}/{self.total / 1e6:.1f} MB {rate:.1f} MB/s"
            )
        return f"{self.label} {mb:.1f} MB {rate:.1f} MB/s"


@dataclass(frozen=True)
class Response:
    """A finished JSON exchange: status, headers and the decoded body (None when empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart form: a JSON field or a file."""

    name: str
    data: bytes
    content_type: str = "application/json"
    filename: str | None = None


class AxisClient:
    """Calls one axis with one bearer token. Each call opens its own connection (the CLI makes
    a handful of calls per run, so keep-alive would save nothing worth the state)."""

    def __init__(self, server: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(server)
        self.server = server.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port
        self.base_path = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout

    # --- plumbing ------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "User-Agent": f"lienthong-cli/{__version__}",
            "Accept": "application/json, application/problem+json",
        }
        headers.update(extra or {})
        return headers

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return self.base_path + path + ("?" + urlencode(query) if query else "")

    def _network_error(self, exc: BaseException) -> ClientError:
        where = f"the axis at {self.server}"
        if isinstance(exc, ConnectionRefusedError):
            return ClientError(f"cannot reach {where}: connection refused (is it running?)")
        if isinstance(exc, socket.gaierror):
            return ClientError(f"cannot reach {where}: unknown host {self.host}")
        if isinstance(exc, TimeoutError | socket.timeout):
            return ClientError(f"{where} did not answer within {self.timeout:.0f} s")
        if isinstance(exc, ssl.SSLError):
            return ClientError(f"TLS with {where} failed: {exc.reason or exc}")
        if isinstance(exc, http.client.HTTPException | ConnectionError):
            return ClientError(f"the connection to {where} broke: {type(exc).__name__}")
        return ClientError(f"cannot reach {where}: {exc}")

    @staticmethod
    def _error_from(status: int, reason: str, raw: bytes, content_type: str) -> ClientError:
        """A ClientError from a non-2xx answer: `<title>: <detail>` of a problem document."""
        if "json" in content_type:
            try:
                problem = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                problem = None
            if isinstance(problem, dict):
                title = str(problem.get("title") or reason or status)
                detail = problem.get("detail")
                message = f"{title}: {detail}" if detail else title
                return ClientError(" ".join(message.split()), status, problem.get("type"))
        return ClientError(f"HTTP {status} {reason}".strip(), status)

    def _finish(self, resp: http.client.HTTPResponse) -> Response:
        raw = resp.read()
        content_type = resp.getheader("Content-Type", "")
        if not 200 <= resp.status < 300:
            raise self._error_from(resp.status, resp.reason, raw, content_type)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ClientError(
                    f"the axis answered {resp.status} with a body that is not JSON"
                ) from None
        return Response(resp.status, dict(resp.getheaders()), body)

    # --- calls ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Response:
        """One JSON request; raise ClientError unless the answer is 2xx."""
        conn = self._connection()
        try:
            body = None
            extra: dict[str, str] = {}
            if json_body is not None:
                body = json.dumps(json_body).encode("utf-8")
                extra["Content-Type"] = "application/json"
            conn.request(method, self._url(path, params), body=body, headers=self._headers(extra))
            return self._finish(conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from None
        finally:
            conn.close()

    def every_item(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The ``items`` of every page of a paged list (following ``next``), 500 a page."""
        query: dict[str, Any] = {**(params or {}), "limit": 500}
        items: list[Any] = []
        while True:
            page = self.request("GET", path, params=query).body
            items += page["items"]
            if not page["next"]:
                return items
            query["after"] = page["next"]

    def post_form(
        self,
        path: str,
        parts: list[FormPart],
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """POST a small ``multipart/form-data`` form built in memory (a dossier and its files)."""
        boundary = "lienthong-" + os.urandom(12).hex()
        body = bytearray()
        for part in parts:
            disposition = f'form-data; name="{part.name}"'
            if part.filename is not None:
                disposition += f'; filename="{part.filename.replace(chr(34), "")}"'
            body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
            body += f"Content-Type: {part.content_type}\r\n\r\n".encode()
            body += part.data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        conn = self._connection()
        try:
            extra = {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})}
            conn.request("POST", self._url(path), body=bytes(body), headers=self._headers(extra))
            return self._finish(conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from None
        finally:
            conn.close()

    def request_xml(self, path: str, data: bytes) -> Response:
        """POST a small edXML package held in memory (a status message)."""
        conn = self._connection()
        try:
            headers = self._headers({"Content-Type": "application/xml"})
            conn.request("POST", self._url(path), body=data, headers=headers)
            return self._finish(conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from None
        finally:
            conn.close()

    def upload(
        self, path: str, source: Path, content_type: str = "application/xml", label: str = "send"
    ) -> Response:
        """POST the file ``source`` as the request body, streamed in chunks with progress."""
        size = source.stat().st_size
        progress = Progress(label, size)
        conn = self._connection()
        try:
            with source.open("rb") as fh:
                conn.putrequest("POST", self._url(path))
                headers = self._headers({"Content-Type": content_type, "Content-Length": str(size)})
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                try:
                    while chunk := fh.read(CHUNK):
                        conn.send(chunk)
                        progress.update(len(chunk))
                except (BrokenPipeError, ConnectionResetError):
                    # The server may refuse early (413, 401) and close while we still send:
                    # its answer is more useful than the broken pipe.
                    pass
            progress.finish()
            return self._finish(conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise  # the local file, not the network: printed by the CLI as is
            raise self._network_error(exc) from None
        finally:
            conn.close()

    def download(self, path: str, out: IO[bytes], label: str = "fetch") -> tuple[int, str]:
        """GET ``path`` into ``out`` in chunks; return (bytes written, sha256 hex of them).

        When the server sends an ETag (the sha256 of the package), the received bytes are
        checked against it and a mismatch is an error.
        """
        conn = self._connection()
        try:
            conn.request("GET", self._url(path), headers=self._headers({"Accept": "*/*"}))
            resp = conn.getresponse()
            if not 200 <= resp.status < 300:
                self._finish(resp)  # raises with the problem's title and detail
            length = resp.getheader("Content-Length")
            progress = Progress(label, int(length) if length and length.isdigit() else None)
            digest = hashlib.sha256()
            written = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                progress.update(len(chunk))
            progress.finish()
            if length and length.isdigit() and written != int(length):
                raise ClientError(f"the download stopped after {written} of {length} bytes")
            sha = digest.hexdigest()
            etag = (resp.getheader("ETag") or "").strip('W/"')
            if len(etag) == 64 and etag.lower() != sha:
                raise ClientError("the downloaded bytes do not match the server's ETag (sha256)")
            return written, sha
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OSError) and exc.filename is not None:
                raise
            raise self._network_error(exc) from None
        finally:
            conn.close()

    def download_to(self, path: str, target: Path, label: str = "fetch") -> tuple[int, str]:
        """:meth:`download` into the file ``target``, which appears only once complete
        (temporary file, fsync, rename); nothing is left behind on failure."""
        fh, temp = atomic_output(target)
        try:
            result = self.download(path, fh, label=label)
            commit(fh, temp, target)
        except BaseException:
            fh.close()
            temp.unlink(missing_ok=True)
            raise
        return result


def atomic_output(target: Path) -> tuple[IO[bytes], Path]:
    """Open a temporary file next to ``target`` for writing; rename it with :func:`commit`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.part")
    return temp.open("wb"), temp


def commit(fh: IO[bytes], temp: Path, target: Path) -> None:
    """fsync and rename the temporary file of :func:`atomic_output` onto ``target``."""
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()
    temp.replace(target)
