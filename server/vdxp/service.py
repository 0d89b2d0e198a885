"""The VDXP operations as thin translations onto the exchange rules of :mod:`server.exchange`.

Nothing here decides who may send what: accepting, routing, isolation and idempotent resend
are :class:`~server.exchange.Exchange`'s, exactly as for ``/api/v1``, so a document sent through
one protocol is received through the other. This module adds only what VDXP has and
``/api/v1`` has not: system-id authentication, the transport state of pulled items
(updateStatus processing/fail/done; ``done`` acknowledges the delivery), the SDK's list shapes,
and units registered by an agency (registerAgency/deleteAgency).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import edxml
from server import exchange as ex
from server.exchange import DocumentNotFound, Exchange, ExchangeError, Receipt
from server.runtime.spool import BodyTooLarge, SpooledPackage
from server.vdxp import protocol
from server.vdxp.credentials import Caller, decrypt_secret, load_key
from server.vdxp.errors import AuthError, ErrorCode, NotFoundError, RequestError
from storage import errors as storage_errors
from storage.errors import Conflict
from storage.repos.agencies import Agency, AgencyRepo
from storage.repos.deliveries import Delivery, DeliveryRepo
from storage.repos.documents import Document
from storage.repos.vdxp import CredentialRepo, RegistrationRepo, TransportRepo

log = logging.getLogger("lienthong.vdxp")

MESSAGE_TYPES = {"edoc": "document", "status": "status"}
# Labels of transport states (ASCII-escaped on the wire like every answer).
_STATE_DESC = {
    "initial": "Chưa nhận — waiting to be fetched",
    "processing": "Đang xử lý — being fetched",
    "fail": "Nhận lỗi — fetch failed, will be offered again",
    "done": "Đã nhận — received",
}
_PAGE = 500
# A list call answers at most this many items when the caller gives no pageSize.
DEFAULT_LIST_LIMIT = 1000
MAX_LIST_LIMIT = 5000


@dataclass(frozen=True)
class HashCheckedBody:
    """A sendEdoc body stream with its trailing CRLF removed once the hash-file is checked.

    The SDK sends the file followed by ``\\r\\n`` and hashes the file only. The last two bytes
    are held back while the rest is forwarded and hashed; at the end they are dropped when the
    hash of what was forwarded matches (the SDK), or forwarded too when the hash of the whole
    body matches (a client that sent no CRLF). Anything else is a hash-file mismatch, raised
    inside the stream so that the spool file is removed and nothing is stored.
    """

    chunks: AsyncIterable[bytes]
    expected: str

    async def __aiter__(self) -> AsyncIterator[bytes]:
        hasher = hashlib.sha256()
        tail = b""
        async for chunk in self.chunks:
            if not chunk:
                continue
            data = tail + chunk
            tail = data[-2:]
            out = data[:-2]
            if out:
                hasher.update(out)
                yield out
        if tail == b"\r\n" and protocol.hash_file_matches(hasher.digest(), self.expected):
            return
        whole = hasher.copy()
        whole.update(tail)
        if protocol.hash_file_matches(whole.digest(), self.expected):
            if tail:
                yield tail
            return
        raise RequestError(
            "header XroadVnpt-hash-file does not match the body (SHA-256 of the file without "
            "the trailing CRLF, in unpadded hex)",
            ErrorCode.HASH_FILE_MISMATCH,
        )


def _page_args(params: protocol.SignedParams) -> tuple[int, int]:
    """(offset, limit) from the optional pageSize/pageIndex parameters (pageIndex from 1)."""

    def number(name: str) -> int | None:
        value = params.get(name)
        if value is None or not value.strip():
            return None
        try:
            return int(value.strip())
        except ValueError:
            raise RequestError(f"header {protocol.header_name(name)} must be a number") from None

    size = number("pageSize")
    index = number("pageIndex")
    limit = DEFAULT_LIST_LIMIT if size is None or size <= 0 else min(size, MAX_LIST_LIMIT)
    offset = 0 if index is None or index <= 1 else (index - 1) * limit
    return offset, limit


class VdxpService:
    """VDXP operations for one axis, bound to its :class:`Exchange` and data directory."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.database = exchange.database
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()

    # -- authentication -------------------------------------------------------------------

    async def _secrets_key(self) -> bytes:
        if self._key is None:
            async with self._key_lock:
                if self._key is None:
                    data_dir = self.exchange.config.storage.data_dir
                    self._key = await asyncio.to_thread(load_key, data_dir)
        return self._key

    async def authenticate(
        self, headers: Iterable[tuple[str, str]]
    ) -> tuple[Caller, protocol.SignedParams]:
        """The calling agency and its signed parameters; :class:`AuthError` otherwise.

        Unknown system id and wrong secret are told apart in ``ErrorCode`` (an agency's
        operator needs to know which to fix); neither reveals anything about other agencies.
        """
        pairs = list(headers)
        auth = protocol.read_auth_headers(pairs)
        async with self.database.reader() as tx:
            known = await CredentialRepo(tx).by_system_id(auth.system_id)
        if known is None:
            raise AuthError(
                f"system id {auth.system_id} is not known to this axis", ErrorCode.UNKNOWN_SYSTEM
            )
        secret = decrypt_secret(
            await self._secrets_key(),
            known.secret_ciphertext,
            organ_id=known.organ_id,
            system_id=known.system_id,
        )
        caller = Caller(organ_id=known.organ_id, system_id=known.system_id, secret=secret)
        params = protocol.verify_signature(auth, pairs, caller.secret)
        return caller, params

    # -- sending ----------------------------------------------------------------------------

    async def send(
        self, caller: Caller, params: protocol.SignedParams, body: AsyncIterable[bytes]
    ) -> Receipt:
        """sendEdoc: a document (messagetype edoc) or status package (status) from the caller.

        ``from`` must be the caller, every id in ``to`` a known agency; routing, the rules and
        the idempotent resend are the exchange's (the edXML ``To``/``ResponseFor`` decide).
        """
        sender = params.get("from")
        if sender is not None and sender.strip() and sender.strip() != caller.organ_id:
            raise RequestError(
                f"header XroadVnpt-from is {sender.strip()} but system id {caller.system_id} "
                f"belongs to {caller.organ_id}",
                ErrorCode.FORBIDDEN,
            )
        message_type = (params.get("messagetype") or "edoc").strip().lower()
        if message_type not in MESSAGE_TYPES:
            raise RequestError("header XroadVnpt-messagetype must be edoc or status")
        to_header = params.get("to")
        if to_header is not None and to_header.strip():
            recipients = protocol.parse_to(to_header)
            async with self.database.reader() as tx:
                unknown = set(recipients) - await AgencyRepo(tx).known(recipients)
            if unknown:
                raise RequestError(
                    "these recipients are not known to this axis: " + ", ".join(sorted(unknown)),
                    ErrorCode.UNKNOWN_RECIPIENT,
                )
        expected = params.require("hash-file")
        package: SpooledPackage = await self.exchange.receive(HashCheckedBody(body, expected))
        try:
            if message_type == "status":
                return await self.exchange.accept_status(caller.organ_id, package)
            return await self.exchange.accept_document(caller.organ_id, package)
        except ex.WrongKind:
            other = "edoc" if message_type == "status" else "status"
            raise RequestError(
                f"this package does not match XroadVnpt-messagetype {message_type}: "
                f"send it with messagetype {other}",
                ErrorCode.INVALID_PACKAGE,
            ) from None

    # -- receiving --------------------------------------------------------------------------

    async def _pending(
        self, organ_id: str, kind: str | None, limit: int, offset: int = 0
    ) -> list[tuple[Delivery, Document]]:
        """Deliveries not yet acknowledged (``new``), oldest first."""
        found: list[tuple[Delivery, Document]] = []
        after: str | None = None
        skipped = 0
        while len(found) < limit:
            page = await self.exchange.inbox(organ_id, after, _PAGE, kind, "new")
            if not page:
                break
            after = page[-1][0].id
            for item in page:
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(item)
                if len(found) >= limit:
                    break
            if len(page) < _PAGE:
                break
        return found

    async def received_list(
        self, caller: Caller, params: protocol.SignedParams
    ) -> list[dict[str, str]]:
        """getReceivedEdocList: items waiting for the caller, of the asked ``messagetype``."""
        message_type = (params.get("messagetype") or "edoc").strip().lower()
        kind = MESSAGE_TYPES.get(message_type)
        if kind is None:
            raise RequestError("header XroadVnpt-messagetype must be edoc or status")
        offset, limit = _page_args(params)
        pending = await self._pending(caller.organ_id, kind, limit, offset)
        async with self.database.reader() as tx:
            states = await TransportRepo(tx).states(d.id for d, _ in pending)
        items = []
        for delivery, doc in pending:
            state = states.get(delivery.id)
            name = state.state if state is not None else "initial"
            items.append(
                protocol.received_item(
                    doc_id=doc.id,
                    service_type=(params.get("servicetype") or "eDoc").strip() or "eDoc",
                    message_type=message_type,
                    created_time=protocol.format_answer_time(delivery.created_at),
                    updated_time=protocol.format_answer_time(
                        state.updated_at if state is not None else delivery.created_at
                    ),
                    sender=doc.sender,
                    recipient=caller.organ_id,
                    status=name,
                    status_desc=_STATE_DESC[name],
                )
            )
        return items

    async def count(self, caller: Caller, kind: str) -> int:
        """countReceiveEdoc / countReceiveStatus: how many items wait for the caller."""
        return len(await self._pending(caller.organ_id, kind, 10**9))

    async def _delivery_of(self, caller: Caller, doc_id: str) -> Delivery:
        """The caller's delivery of package ``doc_id``; NotFoundError when there is none."""
        async with self.database.reader() as tx:
            for delivery in await DeliveryRepo(tx).for_document(doc_id):
                if delivery.recipient == caller.organ_id:
                    return delivery
        raise NotFoundError(f"no item {doc_id} for {caller.organ_id}")

    async def pick_doc_id(self, caller: Caller, params: protocol.SignedParams) -> str:
        """The ``docId`` parameter, read in any case.

        The SDK keeps every key it was ever given on its client object, so after a call with
        ``docid`` and one with ``docId`` both ride along, one of them stale. When they differ,
        the one meant is the item still waiting for the caller; if that does not single one
        out, the request is ambiguous.
        """
        candidates = params.all("docId")
        if not candidates:
            raise RequestError("missing signed header XroadVnpt-docId", ErrorCode.NOT_SIGNED)
        if len(candidates) == 1:
            return candidates[0].strip()
        waiting = []
        async with self.database.reader() as tx:
            deliveries = DeliveryRepo(tx)
            for candidate in candidates:
                for delivery in await deliveries.for_document(candidate.strip()):
                    if delivery.recipient == caller.organ_id and delivery.state == "new":
                        waiting.append(candidate.strip())
        if len(waiting) == 1:
            return waiting[0]
        raise RequestError(
            f"parameter docId is signed with {len(candidates)} different values",
            ErrorCode.AMBIGUOUS_HEADER,
        )

    async def document(self, caller: Caller, doc_id: str) -> Document:
        """The package row if the caller sent it or received it (else not found, nothing said)."""
        try:
            return await self.exchange.document(caller.organ_id, doc_id)
        except DocumentNotFound:
            raise NotFoundError(f"no document {doc_id} for {caller.organ_id}") from None

    def open_package(self, doc: Document) -> AsyncIterator[bytes]:
        """The stored bytes of a package, streamed."""
        return self.exchange.objects.open(doc.sha256)

    async def update_status(self, caller: Caller, doc_id: str, status: str) -> None:
        """updateStatus: the transport state of a pulled item; ``done`` acknowledges it."""
        state = status.strip().lower()
        if state not in ("done", "fail", "processing"):
            raise RequestError(
                "header XroadVnpt-status must be done, fail or processing", ErrorCode.BAD_PARAMETER
            )
        delivery = await self._delivery_of(caller, doc_id)
        if state == "done":
            await self.exchange.ack(caller.organ_id, delivery.id)
        elif delivery.state == "acked":
            # Already received: a late "processing"/"fail" cannot put it back in the list.
            return
        async with self.database.transaction() as tx:
            await TransportRepo(tx).set(delivery.id, state)

    async def sent_list(
        self, caller: Caller, params: protocol.SignedParams
    ) -> list[dict[str, str]]:
        """getSentEdocList: one item per (document, recipient) the caller sent."""
        message_type = (params.get("messagetype") or "edoc").strip().lower()
        if message_type not in MESSAGE_TYPES:
            raise RequestError("header XroadVnpt-messagetype must be edoc or status")
        if message_type == "status":
            return []
        offset, limit = _page_args(params)
        items: list[dict[str, str]] = []
        after: str | None = None
        skipped = 0
        while len(items) < limit:
            entries = await self.exchange.sent(caller.organ_id, after, _PAGE)
            if not entries:
                break
            after = entries[-1].document.id
            deliveries = [d for e in entries for d in e.deliveries]
            async with self.database.reader() as tx:
                states = await TransportRepo(tx).states(d.id for d in deliveries)
            for entry in entries:
                doc = entry.document
                for delivery in entry.deliveries:
                    if skipped < offset:
                        skipped += 1
                        continue
                    if len(items) >= limit:
                        break
                    items.append(self._sent_item(doc, delivery, entry.latest, states))
            if len(entries) < _PAGE:
                break
        return items

    @staticmethod
    def _sent_item(
        doc: Document, delivery: Delivery, latest: dict[str, Any], states: dict[str, Any]
    ) -> dict[str, str]:
        if delivery.state == "acked":
            receive = "done"
        else:
            recorded = states.get(delivery.id)
            receive = recorded.state if recorded is not None else "initial"
        status = latest.get(delivery.recipient)
        if status is not None:
            code = edxml.StatusCode(status.code)
            receive_desc = f"{status.code} {code.label}"
        else:
            receive_desc = _STATE_DESC[receive]
        notation = ""
        if doc.code:
            notation = doc.code
        return protocol.sent_item(
            senderDocId=doc.id,
            receiverDocId=doc.id,
            fromCode=doc.sender,
            toCode=delivery.recipient,
            sendStatus="done",
            sendStatusDesc="Đã gửi — accepted by the axis",
            receiveStatus=receive,
            receiveStatusDesc=receive_desc,
            title=doc.subject or "",
            notation=notation,
            sentTime=protocol.format_answer_time(doc.received_at),
            receivedTime=protocol.format_answer_time(delivery.acked_at),
            serviceType="eDoc",
            messageType="edoc",
        )

    # -- the directory ----------------------------------------------------------------------

    async def agencies(self) -> tuple[list[Agency], dict[str, Any]]:
        """Every agency and the units marked deleted through deleteAgency."""
        async with self.database.reader() as tx:
            return await AgencyRepo(tx).list(), await RegistrationRepo(tx).deleted()

    async def register_agency(self, caller: Caller, unit: dict[str, Any]) -> Agency:
        """registerAgency: add a unit under the caller (its ``pid`` must be the caller)."""
        code = unit.get("code") or unit.get("id")
        name = unit.get("name")
        parent = unit.get("pid") or caller.organ_id
        mail = unit.get("mail") or None
        if not isinstance(code, str) or not code.strip():
            raise RequestError("the unit needs a code (its organisation id)")
        if not isinstance(name, str) or not name.strip():
            raise RequestError("the unit needs a name")
        if parent != caller.organ_id:
            raise RequestError(
                f"an agency registers units under itself only (pid must be {caller.organ_id})",
                ErrorCode.FORBIDDEN,
            )
        if mail is not None and not isinstance(mail, str):
            raise RequestError("mail must be text")
        try:
            edxml.OrganId.parse(code)
        except edxml.EdxmlError as exc:
            raise RequestError(str(exc)) from None
        async with self.database.transaction() as tx:
            registrations = RegistrationRepo(tx)
            previous = await registrations.get(code)
            agencies = AgencyRepo(tx)
            if previous is not None and previous.registered_by == caller.organ_id:
                if previous.deleted_at is None:
                    raise RequestError(f"unit {code} is already registered", ErrorCode.CONFLICT)
                await registrations.restore(code)
                existing = await agencies.get(code)
                assert existing is not None
                return existing
            try:
                agency = await agencies.add(
                    code, name.strip(), parent_id=caller.organ_id, email=mail
                )
            except Conflict:
                raise RequestError(f"unit {code} already exists", ErrorCode.CONFLICT) from None
            await registrations.add(code, caller.organ_id)
        log.info("vdxp unit registered", extra={"unit": code, "by": caller.organ_id})
        return agency

    async def delete_agency(self, caller: Caller, code: str) -> None:
        """deleteAgency: mark a unit the caller registered as deleted."""
        async with self.database.transaction() as tx:
            registrations = RegistrationRepo(tx)
            found = await registrations.get(code)
            if found is None or found.registered_by != caller.organ_id:
                raise NotFoundError(f"no unit {code} registered by {caller.organ_id}")
            await registrations.mark_deleted(code)
        log.info("vdxp unit deleted", extra={"unit": code, "by": caller.organ_id})


def error_of(exc: BaseException) -> tuple[ErrorCode, str]:
    """The FAIL code and description of an exchange/edxml refusal met through VDXP."""
    table: list[tuple[type[BaseException], ErrorCode]] = [
        (ex.SenderMismatch, ErrorCode.FORBIDDEN),
        (ex.NotOriginalSender, ErrorCode.FORBIDDEN),
        (ex.StatusNotAllowed, ErrorCode.FORBIDDEN),
        (ex.UnknownRecipients, ErrorCode.UNKNOWN_RECIPIENT),
        (ex.DuplicateDocument, ErrorCode.CONFLICT),
        (ex.DocumentNotFound, ErrorCode.NOT_FOUND),
        (ex.OriginalNotFound, ErrorCode.NOT_FOUND),
        (ex.UnknownDocument, ErrorCode.NOT_FOUND),
        (ExchangeError, ErrorCode.INVALID_PACKAGE),
        (edxml.EdxmlError, ErrorCode.INVALID_PACKAGE),
        (BodyTooLarge, ErrorCode.TOO_LARGE),
        (storage_errors.StorageFull, ErrorCode.UNAVAILABLE),
        (storage_errors.StorageError, ErrorCode.UNAVAILABLE),
    ]
    for cls, code in table:
        if isinstance(exc, cls):
            detail = getattr(exc, "detail", None) or str(exc)
            return code, detail
    return ErrorCode.INTERNAL, "internal error of the axis"
