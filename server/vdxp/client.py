"""A client of the national axis protocol (VDXP), asynchronous, on aiohttp.

Written from ``shared/VDXP-PROTOCOL.md`` to send what the published Java SDK (SDKVXP 2.0.1)
sends: the ``XroadVnpt-*`` headers signed with HMAC-SHA256, the ``to`` parameter as JSON text,
``hash-file`` in unpadded hex, the sendEdoc body followed by ``\\r\\n``, ``Expect:
100-continue`` on the operations where the SDK sends it, the SDK's ``User-Agent`` and
protocol version. It talks to this axis (``/vdxp``) or to the real national axis alike.

Usage::

    async with VdxpClient("http://127.0.0.1:8080/vdxp", "sys-g22", secret) as client:
        doc_id = await client.send_edoc(package, sender="000.00.00.G22", to=["000.00.00.H41"])
        for item in await client.get_received_edoc_list():
            data = await client.get_edoc(item["docId"])
            await client.update_status(item["docId"], "done")

Every FAIL answer raises :class:`VdxpFailure` carrying ``ErrorCode`` and ``ErrorDesc``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import aiohttp

from server.vdxp.protocol import (
    H_VERSION,
    USER_AGENT,
    VERSION,
    VN_TZ,
    encode_to,
    format_timestamp,
    hash_file,
    signed_headers,
)

JSON = "application/json"
OCTETS = "application/octet-stream"
TRANSPORT_STATES = ("done", "fail", "processing")


class VdxpClientError(Exception):
    """Base of the client's errors: the axis could not be reached or answered nonsense."""


class VdxpFailure(VdxpClientError):
    """The axis answered ``status: FAIL``; ``code`` and ``desc`` are its ErrorCode/ErrorDesc."""

    def __init__(self, operation: str, code: str, desc: str, answer: Mapping[str, Any]) -> None:
        super().__init__(f"{operation}: FAIL {code}: {desc}")
        self.operation = operation
        self.code = code
        self.desc = desc
        self.answer = dict(answer)


class VdxpClient:
    """One agency's connection to a VDXP axis (``endpoint`` ends before ``/{operation}``).

    Like the SDK's client object, the ``timestamp`` header is taken once, when the client is
    created (pass ``timestamp`` to fix it). Parameters do *not* accumulate across calls here
    (the SDK's do; :meth:`call` takes ``extra`` to imitate it).
    """

    def __init__(
        self,
        endpoint: str,
        system_id: str,
        secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timestamp: datetime | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.system_id = system_id
        self._secret = secret
        self.timestamp = format_timestamp(timestamp or datetime.now(VN_TZ))
        self._own_session = session is None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> VdxpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    # ------------------------------------------------------------------ the wire

    def build_headers(
        self, params: Mapping[str, str], content_type: str, *, file_hash: str | None = None
    ) -> dict[str, str]:
        """Every header of one call, in the SDK's shape: the caller's parameters, then
        ``systemid``, ``timestamp``, ``Content-Type`` (and ``hash-file``), all signed.

        :class:`VdxpClientError` for a non-ASCII value: the Java stack sends only the low
        byte of each character, so an axis could not verify it.
        """
        signed: dict[str, str] = {}
        for key, value in params.items():
            if not value.isascii():
                raise VdxpClientError(
                    f"parameter {key} has non-ASCII characters, which VDXP headers cannot carry"
                )
            signed[key] = value
        signed["systemid"] = self.system_id
        signed["timestamp"] = self.timestamp
        signed["Content-Type"] = content_type
        if file_hash is not None:
            signed["hash-file"] = file_hash
        headers = signed_headers(signed, self._secret)
        headers["Content-Type"] = content_type
        headers[H_VERSION] = VERSION
        headers["User-Agent"] = USER_AGENT
        return headers

    async def call(
        self,
        operation: str,
        params: Mapping[str, str] | None = None,
        *,
        body: bytes = b"",
        method: str = "POST",
        content_type: str = JSON,
        expect_continue: bool = False,
        file_hash: str | None = None,
        extra: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> dict[str, Any] | bytes:
        """Send one operation and return its decoded JSON answer (or the raw body with ``raw``
        when the answer is not JSON). :class:`VdxpFailure` on ``status: FAIL``.

        ``extra`` parameters are sent (and signed) too, as the SDK sends what earlier calls
        left on its client object; aiohttp folds header names that differ only in case, so
        ``docId`` and ``docid`` cannot both be sent this way.
        """
        merged = dict(extra or {})
        merged.update(params or {})
        headers = self.build_headers(merged, content_type, file_hash=file_hash)
        url = f"{self.endpoint}/{operation}"
        session = self._get_session()
        try:
            async with session.request(
                method,
                url,
                data=body if method != "GET" else None,
                headers=headers,
                expect100=expect_continue,
                # The SDK never follows redirects (a redirect would drop the body anyway).
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                payload = await response.read()
                content = response.headers.get("Content-Type", "")
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VdxpClientError(f"{operation}: cannot reach {url}: {exc}") from exc
        if raw and "json" not in content.lower():
            if status != 200:
                raise VdxpClientError(f"{operation}: HTTP {status} from {url}")
            return payload
        try:
            answer = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise VdxpClientError(
                f"{operation}: HTTP {status} from {url} with a body that is not JSON"
            ) from None
        if not isinstance(answer, dict) or "status" not in answer:
            raise VdxpClientError(f"{operation}: HTTP {status}: answer without a status")
        if answer.get("status") != "OK":
            raise VdxpFailure(
                operation,
                str(answer.get("ErrorCode", "")),
                str(answer.get("ErrorDesc", "")),
                answer,
            )
        return answer

    async def _json(
        self, operation: str, params: Mapping[str, str] | None = None, **kw: Any
    ) -> dict[str, Any]:
        answer = await self.call(operation, params, **kw)
        assert isinstance(answer, dict)
        return answer

    # ------------------------------------------------------------------ operations

    async def send_edoc(
        self,
        package: bytes,
        *,
        sender: str,
        to: Sequence[str] | str,
        message_type: str = "edoc",
        service_type: str = "eDoc",
    ) -> str:
        """sendEdoc: send a package (``message_type`` ``edoc`` or ``status``); return DocId.

        The body is the package followed by CRLF, and ``hash-file`` covers the package only.
        """
        params = {
            "from": sender,
            "to": encode_to(to),
            "servicetype": service_type,
            "messagetype": message_type,
        }
        answer = await self._json(
            "sendEdoc",
            params,
            body=package + b"\r\n",
            content_type=OCTETS,
            file_hash=hash_file(package),
        )
        return str(answer.get("DocId", ""))

    async def get_received_edoc_list(
        self, message_type: str = "edoc", service_type: str = "eDoc"
    ) -> list[dict[str, Any]]:
        """getReceivedEdocList: items waiting for this agency (``edoc`` or ``status``)."""
        answer = await self._json(
            "getReceivedEdocList", {"servicetype": service_type, "messagetype": message_type}
        )
        return list(answer.get("data") or [])

    async def get_sent_edoc_list(
        self, message_type: str = "edoc", service_type: str = "eDoc"
    ) -> list[dict[str, Any]]:
        """getSentEdocList: what this agency sent, per recipient, with both sides' status."""
        answer = await self._json(
            "getSentEdocList", {"servicetype": service_type, "messagetype": message_type}
        )
        return list(answer.get("data") or [])

    async def get_edoc(self, doc_id: str) -> bytes:
        """getEdoc: the package (decoded from the answer's base64 ``data``)."""
        answer = await self._json("getEdoc", {"docId": doc_id}, body=b"{}", expect_continue=True)
        try:
            return base64.b64decode(str(answer.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise VdxpClientError("getEdoc: data is not base64") from None

    async def download_edoc(self, doc_id: str) -> bytes:
        """downloadEdoc: the package as a raw file (GET)."""
        result = await self.call("downloadEdoc", {"docId": doc_id}, method="GET", raw=True)
        if not isinstance(result, bytes):
            raise VdxpClientError("downloadEdoc: the answer is JSON, not a file")
        return result

    async def update_status(self, doc_id: str, status: str) -> None:
        """updateStatus: mark a pulled item ``done``, ``fail`` or ``processing``."""
        await self._json(
            "updateStatus", {"docId": doc_id, "status": status}, body=b"{}", expect_continue=True
        )

    async def count_receive_edoc(self) -> int:
        """countReceiveEdoc: how many documents wait for this agency."""
        answer = await self._json("countReceiveEdoc", {}, body=b"{}", expect_continue=True)
        return int(answer.get("count", 0))

    async def count_receive_status(self) -> int:
        """countReceiveStatus: how many status packages wait for this agency."""
        answer = await self._json("countReceiveStatus", {}, body=b"{}", expect_continue=True)
        return int(answer.get("count", 0))

    async def get_agencies_list(self, *, qd20: bool = False) -> list[dict[str, Any]]:
        """getAgenciesList (or getAgenciesListQD20, whose items add ``code102``)."""
        operation = "getAgenciesListQD20" if qd20 else "getAgenciesList"
        answer = await self._json(operation)
        return list(answer.get("data") or [])

    async def get_synchronize_unit(self) -> list[dict[str, Any]]:
        """getSynchronizeUnit: the directory with version, deleted flag and modify date."""
        answer = await self._json("getSynchronizeUnit")
        return list(answer.get("data") or [])

    async def register_agency(self, unit: Mapping[str, Any] | str) -> dict[str, Any]:
        """registerAgency: the caller's JSON string as the body (with Expect: 100-continue)."""
        text = unit if isinstance(unit, str) else json.dumps(unit, ensure_ascii=False)
        return await self._json(
            "registerAgency", {}, body=text.encode("utf-8"), expect_continue=True
        )

    async def delete_agency(self, code: str) -> dict[str, Any]:
        """deleteAgency: remove a unit the caller registered (its code in a header)."""
        return await self._json("deleteAgency", {"code": code}, body=b"{}", expect_continue=True)
