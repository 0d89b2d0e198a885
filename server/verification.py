"""Signature verification as a service of the axis (issue 7): on arrival, for readers, for anyone.

* **On arrival**: :meth:`Verifier.on_accepted` is an :data:`server.exchange.ArrivalHook`. Once
  a document is committed it marks its PDF attachments *pending* (synchronously, so a reader
  who asks right after the 201 sees "pending", not "nothing"), then verifies them in the
  worker pool in the background. Reports are kept under ``<data_dir>/verification/``: by the
  SHA-256 of the verified bytes (``<sha256>.json``) and by the attachment's edXML digest when
  that differs (an attachment the national SDK zipped), so readers find them without decoding.
  The report *at arrival* is evidence and is never overwritten.
* **For readers**: :meth:`Verifier.annotate_meta` adds a compact summary to each attachment of
  ``meta``; :meth:`Verifier.document_verdicts` gives inbox items their one-word ``signatures``
  verdict. A PDF attachment with no report and nothing running (the server stopped before it
  was verified) is scheduled again by whoever looks, and shown as ``pending`` meanwhile.
* **For anyone** (the public ``/xac-minh`` page): :meth:`Verifier.public_slot` bounds the
  uploads in progress; past the bound the caller gets :class:`VerifierBusy` (503, Retry-After).

Every verification runs in :class:`signing.isolation.VerifierPool` worker processes reached
through a thread; at most ``pool.size`` threads wait on workers at once (the rest wait on an
asyncio semaphore, not in the shared thread pool), so the event loop never waits on pyHanko.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.exchange import AcceptedDocument, document_meta

if TYPE_CHECKING:
    from server.exchange import Exchange
    from signing.isolation import VerifierPool
    from signing.report import ValidationReport
    from signing.verify import VerificationPolicy
    from storage.repos.documents import Document

log = logging.getLogger("lienthong.verify")

PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})

# One-word verdicts, best first. A document's verdict is the worst of its PDF attachments':
# "valid" only when every PDF attachment is signed and every signature passed; "none" when a
# PDF attachment has no signature (or the document has no PDF at all).
VERDICTS = ("valid", "none", "pending", "indeterminate", "invalid")
NOT_PDF = "not_pdf"  # an attachment's verdict only; never a document's

_KEY = re.compile(r"^[0-9a-f]{64}$")
_CACHE_SIZE = 4096


class VerificationError(Exception):
    """Base of the verification service's refusals."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotAPdf(VerificationError):
    """The attachment asked about is not a PDF: there is nothing to verify."""


class VerifierBusy(VerificationError):
    """Too many public verifications in progress or waiting; retry after ``retry_after`` s."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def looks_pdf(name: str | None, content_type: str | None) -> bool:
    """True when an attachment's declared type or name says PDF (what arrival verifies)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in PDF_TYPES or (name or "").lower().endswith(".pdf")


def is_pdf(name: str | None, content_type: str | None, data: bytes) -> bool:
    """:func:`looks_pdf`, or the bytes start like a PDF."""
    return looks_pdf(name, content_type) or data[:1024].lstrip().startswith(b"%PDF-")


def verdict_of(report: dict[str, Any]) -> str:
    """The one-word verdict of a ``lienthong.verification/1`` report."""
    status = report.get("status")
    if status == "unsigned":
        return "none"
    if status != "signed":  # unreadable: corrupt, hostile, encrypted, over budget
        return "indeterminate"
    indication = report.get("indication")
    if indication == "TOTAL_PASSED" and report.get("all_passed"):
        return "valid"
    if indication == "TOTAL_FAILED":
        return "invalid"
    return "indeterminate"


def worst(verdicts: Iterable[str]) -> str:
    """The worst of attachment verdicts (``not_pdf`` ignored); ``none`` when nothing is left."""
    ranked = [v for v in verdicts if v in VERDICTS]
    return max(ranked, key=VERDICTS.index) if ranked else "none"


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a reader needs from a report before opening the file (``meta`` attachments)."""
    signatures = []
    for sig in report.get("signatures") or []:
        signer = sig.get("signer") or {}
        signatures.append(
            {
                "index": sig.get("index"),
                "kind": sig.get("kind"),
                "indication": sig.get("indication"),
                "subindication": sig.get("subindication"),
                "signer": signer.get("name"),
                "organization": signer.get("organization"),
                "signing_time": sig.get("signing_time"),
                "intact": sig.get("intact"),
                "changes": sig.get("changes"),
            }
        )
    return {
        "verdict": verdict_of(report),
        "status": report.get("status"),
        "indication": report.get("indication"),
        "all_passed": report.get("all_passed"),
        "signatures": signatures,
        "summary_vi": report.get("summary_vi"),
        "verified_at": report.get("verified_at"),
        "sha256": (report.get("file") or {}).get("sha256"),
    }


_PENDING_VI = "Đang kiểm tra chữ ký số của tệp này."
_NOT_PDF_VI = "Tệp không phải PDF: không có chữ ký số PDF để kiểm tra."


def _pending_summary() -> dict[str, Any]:
    return {"verdict": "pending", "status": "pending", "signatures": [], "summary_vi": _PENDING_VI}


def _not_pdf_summary() -> dict[str, Any]:
    return {"verdict": NOT_PDF, "status": NOT_PDF, "signatures": [], "summary_vi": _NOT_PDF_VI}


@dataclass
class Verifier:
    """The axis's verification service: a worker pool, a policy, and the arrival store.

    ``public_slots`` bounds public uploads being read or verified at once (each holds up to the
    upload limit in memory); ``exchange`` is what arrival verification reads attachments from.
    """

    pool: VerifierPool
    policy: VerificationPolicy
    store: Path
    exchange: Exchange | None = None
    public_slots: int = 4
    retry_after: int = 5
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # attachment key -> the background task verifying it (arrival or catch-up)
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # One slot per worker process: one waiting thread per worker at most; more would only
    # block inside the pool, holding threads of the loop's shared executor that file I/O needs.
    workers: asyncio.Semaphore = field(init=False)
    public_in_use: int = 0
    _cache: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.workers = asyncio.Semaphore(max(1, int(getattr(self.pool, "size", 2))))

    # -- verifying ------------------------------------------------------------------------------

    async def verify(self, data: bytes, name: str | None) -> ValidationReport:
        """The report on ``data`` (a verdict even for hostile input; never raises for it)."""
        async with self.workers:
            return await self.pool.averify(data, self.policy, file_name=name)

    @asynccontextmanager
    async def public_slot(self) -> AsyncIterator[None]:
        """Hold one of the ``public_slots`` for an anonymous upload, or raise VerifierBusy.

        Taken before the body is read, so a flood is refused before it costs memory or CPU.
        """
        if self.public_in_use >= self.public_slots:
            raise VerifierBusy(
                f"{self.public_in_use} verifications are in progress; retry in a few seconds.",
                self.retry_after,
            )
        self.public_in_use += 1
        try:
            yield
        finally:
            self.public_in_use -= 1

    # -- the store --------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.store / f"{key}.json"

    def stored(self, sha256: str) -> dict[str, Any] | None:
        """The report kept for attachment bytes (or an attachment digest), or None. Blocking."""
        if not _KEY.match(sha256):
            return None
        try:
            data = json.loads(self._path(sha256).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def keep(self, sha256: str, report: dict[str, Any]) -> None:
        """Write a report under ``sha256`` (atomically). Blocking."""
        path = self._path(sha256)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        self._cache.pop(sha256, None)

    def _keep_first(self, keys: Sequence[str], report: dict[str, Any]) -> None:
        for key in dict.fromkeys(keys):
            if _KEY.match(key) and not self._path(key).exists():
                self.keep(key, report)

    def _summary_blocking(self, key: str) -> dict[str, Any] | None:
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        report = self.stored(key)
        if report is None:
            return None
        summary = report_summary(report)
        self._cache[key] = summary
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return summary

    # -- attachments of documents --------------------------------------------------------------

    async def attachment(
        self, exchange: Exchange, caller: str, doc_id: str, index: int, *, refresh: bool = False
    ) -> dict[str, Any]:
        """The report of attachment ``index`` of a document visible to ``caller``.

        The report made at arrival when there is one (``refresh`` verifies again now, without
        replacing it); NotAPdf when the attachment is not a PDF.
        """
        entry = await self._entry(exchange, caller, doc_id, index)
        alias = _attachment_key(entry)
        if not refresh and alias is not None:
            known = await asyncio.to_thread(self.stored, alias)
            if known is not None:
                return known
        decoded = await exchange.decode_attachment(caller, doc_id, index)
        try:
            data = await asyncio.to_thread(decoded.path.read_bytes)
        finally:
            decoded.path.unlink(missing_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        if not refresh:
            known = await asyncio.to_thread(self.stored, digest)
            if known is not None:
                if alias is not None:
                    await asyncio.to_thread(self._keep_first, [alias], known)
                return known
        if not is_pdf(decoded.name, decoded.content_type, data):
            raise NotAPdf(f"Attachment {index} is not a PDF: nothing to verify.")
        report: dict[str, Any] = (await self.verify(data, decoded.name)).to_json()
        keys = [digest] if alias is None else [digest, alias]
        await asyncio.to_thread(self._keep_first, keys, report)
        return report

    @staticmethod
    async def _entry(exchange: Exchange, caller: str, doc_id: str, index: int) -> dict[str, Any]:
        doc = await exchange.document(caller, doc_id)
        attachments = document_meta(doc).get("attachments") or []
        if 0 <= index < len(attachments) and isinstance(attachments[index], dict):
            entry: dict[str, Any] = attachments[index]
            return entry
        return {}

    # -- on arrival -----------------------------------------------------------------------

    def on_accepted(self, accepted: AcceptedDocument) -> Awaitable[None]:
        """The arrival hook: mark the PDF attachments pending now, verify them in the background.

        Returns the background work (the exchange awaits it in its own background task).
        """
        doc = accepted.document
        task = self._start(doc.sender, doc.id, _pdf_entries(accepted.meta))
        return task if task is not None else asyncio.sleep(0)

    @property
    def pending(self) -> set[str]:
        """Keys (attachment digests) of the attachments being verified now."""
        return set(self.running)

    def _start(
        self, sender: str, doc_id: str, entries: list[dict[str, Any]]
    ) -> asyncio.Task[None] | None:
        """Verify ``entries`` (PDF attachments) in the background unless already running."""
        keys = [
            k for k in dict.fromkeys(map(_attachment_key, entries)) if k and k not in self.running
        ]
        todo = [e for e in entries if _attachment_key(e) in keys]
        if not todo or self.exchange is None:
            return None
        task: asyncio.Task[None] = asyncio.ensure_future(
            self._verify_document(sender, doc_id, todo, keys)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        for key in keys:
            self.running[key] = task
        return task

    async def _verify_document(
        self, caller: str, doc_id: str, entries: list[dict[str, Any]], keys: list[str]
    ) -> None:
        exchange = self.exchange
        try:
            if exchange is None:
                return
            for entry in entries:
                index = int(entry["index"])
                try:
                    report = await self.attachment(exchange, caller, doc_id, index)
                except NotAPdf:
                    continue
                except Exception:  # background work: log it, carry on with the next one
                    log.exception("verification on arrival failed", extra={"id": doc_id})
                    continue
                log.info(
                    "attachment verified",
                    extra={"id": doc_id, "index": index, "indication": report.get("indication")},
                )
        finally:
            for key in keys:
                self.running.pop(key, None)

    async def drain(self) -> None:
        """Wait for background verifications (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    # -- for readers ----------------------------------------------------------------------

    async def annotate_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Add ``verification`` to each attachment of a document's ``meta`` and the document's
        one-word ``signatures`` verdict; schedule what was never verified. Returns ``meta``."""
        attachments = [a for a in meta.get("attachments") or [] if isinstance(a, dict)]
        doc_id = str(meta.get("id") or "")
        summaries = await asyncio.to_thread(self._summaries_blocking, attachments)
        missing = []
        for entry, summary in zip(attachments, summaries, strict=True):
            if summary is None:
                missing.append(entry)
                summary = _pending_summary()
            if summary["verdict"] not in (NOT_PDF,):
                index = entry.get("index")
                summary = {
                    **summary,
                    "report": f"/api/v1/documents/{doc_id}/attachments/{index}/verification",
                }
            entry["verification"] = summary
        meta["signatures"] = worst(a["verification"]["verdict"] for a in attachments)
        if missing and meta.get("sender"):
            self._start(str(meta["sender"]), doc_id, missing)
        return meta

    async def document_verdicts(self, docs: Sequence[Document]) -> dict[str, str]:
        """The one-word ``signatures`` verdict of each document (inbox items), by row id."""
        rows = [
            (d, [a for a in document_meta(d).get("attachments") or [] if isinstance(a, dict)])
            for d in docs
        ]
        summaries = await asyncio.to_thread(
            lambda: [self._summaries_blocking(atts) for _, atts in rows]
        )
        verdicts: dict[str, str] = {}
        for (doc, atts), sums in zip(rows, summaries, strict=True):
            missing = [a for a, s in zip(atts, sums, strict=True) if s is None]
            verdicts[doc.id] = worst("pending" if s is None else str(s["verdict"]) for s in sums)
            if missing and doc.kind == "document":
                self._start(doc.sender, doc.id, missing)
        return verdicts

    async def reports_of(self, doc: Document, *, wait: float = 0.0) -> list[dict[str, Any]]:
        """Each PDF attachment's stored report (the archive): index, name, sha256, verdict and
        the report made at arrival (None while pending).

        With ``wait`` > 0, attachments never verified are verified now, and verifications in
        progress are waited for up to ``wait`` seconds (an archival package should carry them).
        """
        entries = _pdf_entries(document_meta(doc))
        if wait > 0 and entries:
            missing = await asyncio.to_thread(
                lambda: [e for e in entries if self._summaries_blocking([e])[0] is None]
            )
            if missing and doc.kind == "document":
                self._start(doc.sender, doc.id, missing)
            keys = {_attachment_key(e) for e in entries}
            running = {t for k, t in self.running.items() if k in keys}
            if running:
                await asyncio.wait(running, timeout=wait)
        reports = await asyncio.to_thread(
            lambda: [self.stored(k) if k else None for k in map(_attachment_key, entries)]
        )
        out = []
        for entry, report in zip(entries, reports, strict=True):
            out.append(
                {
                    "index": entry.get("index"),
                    "name": entry.get("name"),
                    "sha256": entry.get("sha256"),
                    "verdict": "pending" if report is None else verdict_of(report),
                    "report": report,
                }
            )
        return out

    def _summaries_blocking(self, attachments: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Per attachment: its summary, ``not_pdf``, ``pending``, or None (never verified)."""
        out: list[dict[str, Any] | None] = []
        for entry in attachments:
            if not looks_pdf(entry.get("name"), entry.get("content_type")):
                out.append(_not_pdf_summary())
                continue
            key = _attachment_key(entry)
            summary = None if key is None else self._summary_blocking(key)
            if summary is None and key is not None and key in self.running:
                summary = _pending_summary()
            out.append(summary)
        return out


def _attachment_key(entry: dict[str, Any]) -> str | None:
    """The store key of an attachment: its edXML digest (SHA-256 of the decoded bytes)."""
    value = entry.get("sha256")
    return value if isinstance(value, str) and _KEY.match(value) else None


def _pdf_entries(meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        a
        for a in meta.get("attachments") or []
        if isinstance(a, dict) and looks_pdf(a.get("name"), a.get("content_type"))
    ]
