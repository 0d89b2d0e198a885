"""Signature verification as a service of the axis (issue 7): on arrival, for readers, for anyone.

* **On arrival**: :meth:`Verifier.on_accepted` is an :data:`server.exchange.ArrivalHook`. Once
  a document is committed it marks its PDF attachments *pending* (synchronously, so a reader
  who asks right after the 201 sees "pending", not "nothing"), then verifies them in the
  worker pool in the background. Each report (its canonical JSON bytes) is an object in the
  object store, kept and locked like the signed originals (S3 Object Lock on S3), named by a
  ``verification_reports`` row under the SHA-256 of the verified bytes and under the
  attachment's edXML digest when that differs (an attachment the national SDK zipped), so
  readers find it without decoding. Rows are only added: the first is the report *at
  arrival*; a re-verification (``?refresh=1``) adds a newer one and alters nothing.
* **For readers**: :meth:`Verifier.annotate_meta` adds a compact summary to each attachment of
  ``meta``; :meth:`Verifier.document_verdicts` gives inbox items their one-word ``signatures``
  verdict. A PDF attachment with no report and nothing running (the server stopped before it
  was verified) is scheduled again by whoever looks, and shown as ``pending`` meanwhile. One
  whose stored bytes cannot be decoded (a zip bomb) gets a final ``unreadable`` report saying
  why, stored once like any other, so it is never scheduled again.
* **For uploads** (``POST /api/v1/verify`` and the public ``/xac-minh`` page): :meth:`Verifier.
  upload_slot` bounds the uploads in progress on either route, :meth:`Verifier.public_slot` the
  public ones being verified once their body has arrived; past a bound the caller gets
  :class:`VerifierBusy` (503, Retry-After). An upload waits for a worker as a spooled file: its
  bytes are read only once a worker is free (:meth:`Verifier.verify` of a path).

Every verification runs in :class:`signing.isolation.VerifierPool` worker processes reached
through a thread; at most ``pool.size`` threads wait on workers at once (the rest wait on an
asyncio semaphore, not in the shared thread pool), so the event loop never waits on pyHanko.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edxml import EdxmlError
from server.exchange import AcceptedDocument, document_meta
from server.runtime import audit
from server.signatures.errors import NotAPdf, VerifierBusy
from server.signatures.verdicts import (
    NOT_PDF,
    _not_pdf_summary,
    _pending_summary,
    is_pdf,
    looks_pdf,
    policy_id,
    report_bytes,
    report_summary,
    verdict_of,
    worst,
)
from signing.report import ValidationReport
from storage.errors import NotFound, StorageError
from storage.ids import utcnow
from storage.repos.verification_reports import VerificationReportRepo, VerificationReportRow

if TYPE_CHECKING:
    from server.exchange import Exchange
    from server.runtime.metrics import Metrics
    from signing.isolation import VerifierPool
    from signing.verify import VerificationPolicy
    from storage.db import Database
    from storage.objects.base import ObjectStore
    from storage.repos.documents import Document

log = logging.getLogger("lienthong.verify")

_KEY = re.compile(r"^[0-9a-f]{64}$")
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class AuditedAs:
    """How storing a report of a document's attachment is recorded in the audit log."""

    actor: str
    action: str
    document_id: str
    index: int


def _verified_at(report: dict[str, Any]) -> datetime:
    try:
        value = datetime.fromisoformat(str(report["verified_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return utcnow()
    return value if value.tzinfo is not None else utcnow()


def _remove_if_empty(folder: Path) -> None:
    # several server processes may import at once: another may have removed it already
    with contextlib.suppress(OSError):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


async def _one(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


@dataclass
class Verifier:
    """The axis's verification service: a worker pool, a policy, and where reports are kept.

    Reports are objects of ``objects`` named by ``verification_reports`` rows of ``database``.
    ``upload_slots`` bounds the verify uploads of either route in progress (received to the
    spool, then verified); ``public_slots`` the public ones being verified at once;
    ``exchange`` is what arrival verification reads
    attachments from; ``refresh_min_interval``: see :meth:`attachment`.
    """

    pool: VerifierPool
    policy: VerificationPolicy
    database: Database
    objects: ObjectStore
    exchange: Exchange | None = None
    public_slots: int = 4
    upload_slots: int = 16
    retry_after: int = 5
    public_max_bytes: int = 50 * 1024 * 1024
    upload_max_bytes: int = 50 * 1024 * 1024
    refresh_min_interval: float = 3600.0
    # Records each run's latency (server/runtime/metrics.py); None: [metrics] enabled = false.
    metrics: Metrics | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # attachment key -> the background task verifying it (arrival or catch-up)
    running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # One slot per worker process: one waiting thread per worker at most; more would only
    # block inside the pool, holding threads of the loop's shared executor that file I/O needs.
    workers: asyncio.Semaphore = field(init=False)
    # "public", "upload" -> how many of those slots are held
    in_use: Counter[str] = field(default_factory=Counter)
    # report object digest -> its summary (objects never change, so entries never go stale)
    _cache: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    policy_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.workers = asyncio.Semaphore(max(1, int(getattr(self.pool, "size", 2))))
        self.policy_name = policy_id(self.policy)

    # -- verifying ------------------------------------------------------------------------------

    async def verify(self, data: bytes | Path, name: str | None) -> ValidationReport:
        """The report on ``data`` (a verdict even for hostile input; never raises for it).

        ``data`` may be a file (a spooled upload): it is read only once a worker is free, so
        uploads waiting for one cost disk, not memory."""
        async with self.workers:
            if isinstance(data, Path):
                data = await asyncio.to_thread(data.read_bytes)
            timed = self.metrics.time_verification() if self.metrics else contextlib.nullcontext()
            with timed:
                return await self.pool.averify(data, self.policy, file_name=name)

    @property
    def public_in_use(self) -> int:
        """Public uploads being verified now."""
        return self.in_use["public"]

    def public_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the ``public_slots`` for an anonymous upload, or raise VerifierBusy.

        Taken once the body has arrived (server/http/verify.py): a client that stalls its
        upload holds an upload slot only, never one of the few public verifications."""
        return self._slot("public", self.public_slots)

    def upload_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the ``upload_slots`` for a verify upload of either route, from its
        first byte to its answer, or raise VerifierBusy."""
        return self._slot("upload", self.upload_slots)

    @asynccontextmanager
    async def _slot(self, kind: str, size: int) -> AsyncIterator[None]:
        if self.in_use[kind] >= size:
            raise VerifierBusy(
                f"{self.in_use[kind]} verifications are in progress; retry in a few seconds.",
                self.retry_after,
            )
        self.in_use[kind] += 1
        try:
            yield
        finally:
            self.in_use[kind] -= 1

    # -- the store --------------------------------------------------------------------------------

    async def _load(self, row: VerificationReportRow) -> dict[str, Any] | None:
        """The report a row names, read back (hash-checked) from the object store; None when
        the object is missing or not a report (logged: it cannot happen unless someone removed
        it). StorageError (store unreachable) propagates."""
        try:
            data = b"".join([chunk async for chunk in self.objects.open(row.report_sha256)])
            report = json.loads(data)
        except NotFound:
            log.error("verification report object missing", extra={"sha256": row.report_sha256})
            return None
        except ValueError:
            log.error("verification report object unreadable", extra={"sha256": row.report_sha256})
            return None
        return report if isinstance(report, dict) else None

    async def latest_row(self, sha256: str) -> VerificationReportRow | None:
        """The newest report row of attachment bytes (or an attachment digest), or None."""
        if not _KEY.match(sha256):
            return None
        async with self.database.reader() as tx:
            return await VerificationReportRepo(tx).latest(sha256)

    async def history(self, sha256: str) -> list[VerificationReportRow]:
        """Every report row of an attachment, the report at arrival first."""
        if not _KEY.match(sha256):
            return []
        async with self.database.reader() as tx:
            return await VerificationReportRepo(tx).history(sha256)

    async def stored(self, sha256: str) -> dict[str, Any] | None:
        """The latest report kept for attachment bytes (or an attachment digest), or None."""
        row = await self.latest_row(sha256)
        return None if row is None else await self._load(row)

    async def keep(
        self,
        keys: Sequence[str],
        report: dict[str, Any],
        *,
        only_first: bool = False,
        audited: AuditedAs | None = None,
    ) -> dict[str, Any]:
        """Store ``report`` as an object and name it under each key (attachment digests).

        Nothing is overwritten: each key gets a new row. With ``only_first`` a key that has a
        report already keeps it (arrival: two verifications racing keep the first); the report
        returned is then the stored one. The object is durable before any row names it. With
        ``audited``, an audit entry is appended in the transaction inserting the rows (none
        when no row was inserted).
        """
        keys = [k for k in dict.fromkeys(keys) if _KEY.match(k)]
        if not keys:
            return report
        data = report_bytes(report)
        ref = await self.objects.put(_one(data))
        verdict = verdict_of(report)
        verified_at = _verified_at(report)
        first: VerificationReportRow | None = None  # what the first key names, if not this
        async with self.database.transaction() as tx:
            repo = VerificationReportRepo(tx)
            inserted: list[VerificationReportRow] = []
            for key in keys:
                row = VerificationReportRow(
                    attachment_sha256=key,
                    report_sha256=ref.sha256,
                    report_size=ref.size,
                    verified_at=verified_at,
                    policy=self.policy_name,
                    verdict=verdict,
                )
                if await repo.add(row, only_first=only_first):
                    inserted.append(row)
                elif key == keys[0]:
                    first = await repo.latest(key)
            if audited is not None and inserted:
                await audit.record_verification_report(
                    tx, audited.actor, audited.action, audited.document_id, audited.index, inserted
                )
        if first is not None and first.report_sha256 != ref.sha256:
            loaded = await self._load(first)
            return loaded if loaded is not None else report
        return report

    async def import_legacy(self, folder: Path) -> int:
        """Move reports kept as files (``<data_dir>/verification/<sha256>.json``, before they
        lived in the object store) into the store, one row each; each file is removed once its
        object and row are durable, then the folder when empty. Idempotent and resumable (a
        report already named is not named twice). Returns how many files were imported."""
        files = await asyncio.to_thread(
            lambda: (
                sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
                if folder.is_dir()
                else []
            )
        )
        done = 0
        for path in files:
            if not _KEY.match(path.stem):
                continue
            try:
                report = json.loads(await asyncio.to_thread(path.read_bytes))
            except FileNotFoundError:  # imported by another server process meanwhile
                continue
            except (OSError, ValueError):
                log.warning("unreadable verification report file left", extra={"path": str(path)})
                continue
            if not isinstance(report, dict):
                continue
            await self.keep([path.stem], report, only_first=True)
            await asyncio.to_thread(path.unlink, True)
            done += 1
        await asyncio.to_thread(_remove_if_empty, folder)
        if done:
            log.info("verification report files moved to the object store", extra={"count": done})
        return done

    async def _summaries_of(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Summaries of the latest report of each key that has one (cached by report object)."""
        wanted = [k for k in dict.fromkeys(keys) if k]
        if not wanted:
            return {}
        async with self.database.reader() as tx:
            rows = await VerificationReportRepo(tx).latest_many(wanted)
        out: dict[str, dict[str, Any]] = {}
        for key, row in rows.items():
            cached = self._cache.get(row.report_sha256)
            if cached is not None:
                self._cache.move_to_end(row.report_sha256)
                out[key] = cached
                continue
            try:
                report = await self._load(row)
            except StorageError:  # the store is away: known but unreadable now
                out[key] = _pending_summary()
                continue
            if report is None:
                continue
            summary = report_summary(report)
            self._cache[row.report_sha256] = summary
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
            out[key] = summary
        return out

    # -- attachments of documents --------------------------------------------------------------

    async def attachment(
        self, exchange: Exchange, caller: str, doc_id: str, index: int, *, refresh: bool = False
    ) -> dict[str, Any]:
        """The report of attachment ``index`` of a document visible to ``caller``.

        The latest stored report when there is one (the one made at arrival until someone
        re-verifies); NotAPdf when the attachment is not a PDF. ``refresh`` verifies again now
        and stores the new report beside the old ones (nothing is replaced), unless the latest
        stored report is younger than ``refresh_min_interval`` seconds: then the new report is
        answered but not stored (stored reports are kept for years).
        """
        entry = await self._entry(exchange, caller, doc_id, index)
        alias = _attachment_key(entry)
        # An attachment's first report is its report at arrival, made by the axis whichever
        # look (the arrival hook, or a reader finding none) caused it.
        arrival = AuditedAs(audit.AXIS, audit.VERIFICATION_ARRIVAL, doc_id, index)
        if not refresh and alias is not None:
            known = await self.stored(alias)
            if known is not None:
                return known
        try:
            decoded = await exchange.decode_attachment(caller, doc_id, index)
        except EdxmlError as exc:
            # The stored bytes never decode (a zip bomb, a broken zip): a final verdict, kept
            # under the attachment's digest like any report, so no reader tries again.
            if alias is None or not looks_pdf(entry.get("name"), entry.get("content_type")):
                raise
            report = _undecodable(entry, exc)
            keys = [alias]
        else:
            try:
                data = await asyncio.to_thread(decoded.path.read_bytes)
            finally:
                decoded.path.unlink(missing_ok=True)
            digest = hashlib.sha256(data).hexdigest()
            if not refresh:
                row = await self.latest_row(digest)
                known = None if row is None else await self._load(row)
                if known is not None:
                    if alias is not None:
                        await self.keep([alias], known, only_first=True, audited=arrival)
                    return known
            if not is_pdf(decoded.name, decoded.content_type, data):
                raise NotAPdf(f"Attachment {index} is not a PDF: nothing to verify.")
            report = (await self.verify(data, decoded.name)).to_json()
            keys = [digest] if alias is None else [digest, alias]
        if refresh:
            latest = await self.latest_row(digest)
            interval = timedelta(seconds=self.refresh_min_interval)
            if latest is not None and utcnow() - latest.stored_at < interval:
                return report
            refreshed = AuditedAs(caller, audit.VERIFICATION_REFRESH, doc_id, index)
            await self.keep(keys, report, audited=refreshed)
            return report
        return await self.keep(keys, report, only_first=True, audited=arrival)

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
                if report.get("status") == "unreadable":
                    errors = report.get("errors") or []
                    log.warning(
                        "attachment could not be verified",
                        extra={"id": doc_id, "index": index, "reason": "; ".join(errors)},
                    )
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
        summaries = await self._summaries(attachments)
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
        known = await self._summaries_of(
            [k for _, atts in rows for k in map(_attachment_key, atts) if k]
        )
        summaries = [self._summaries_known(atts, known) for _, atts in rows]
        verdicts: dict[str, str] = {}
        for (doc, atts), sums in zip(rows, summaries, strict=True):
            missing = [a for a, s in zip(atts, sums, strict=True) if s is None]
            verdicts[doc.id] = worst("pending" if s is None else str(s["verdict"]) for s in sums)
            if missing and doc.kind == "document":
                self._start(doc.sender, doc.id, missing)
        return verdicts

    async def reports_of(self, doc: Document, *, wait: float = 0.0) -> list[dict[str, Any]]:
        """Each PDF attachment's stored reports (the archive): index, name, sha256, verdict,
        the ``report`` made at arrival (None while pending) and the ``later`` re-verifications
        (oldest first; usually none).

        With ``wait`` > 0, attachments never verified are verified now, and verifications in
        progress are waited for up to ``wait`` seconds (an archival package should carry them).
        """
        entries = _pdf_entries(document_meta(doc))
        if wait > 0 and entries:
            summaries = await self._summaries(entries)
            missing = [e for e, s in zip(entries, summaries, strict=True) if s is None]
            if missing and doc.kind == "document":
                self._start(doc.sender, doc.id, missing)
            keys = {_attachment_key(e) for e in entries}
            running = {t for k, t in self.running.items() if k in keys}
            if running:
                await asyncio.wait(running, timeout=wait)
        out = []
        for entry in entries:
            key = _attachment_key(entry)
            reports = []
            for row in await self.history(key) if key else []:
                report = await self._load(row)
                if report is not None:
                    reports.append(report)
            arrival = reports[0] if reports else None
            out.append(
                {
                    "index": entry.get("index"),
                    "name": entry.get("name"),
                    "sha256": entry.get("sha256"),
                    "verdict": "pending" if arrival is None else verdict_of(reports[-1]),
                    "report": arrival,
                    "later": reports[1:],
                }
            )
        return out

    async def _summaries(self, attachments: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Per attachment: its summary, ``not_pdf``, ``pending``, or None (never verified)."""
        known = await self._summaries_of(
            [
                k
                for a in attachments
                if looks_pdf(a.get("name"), a.get("content_type"))
                for k in [_attachment_key(a)]
                if k
            ]
        )
        return self._summaries_known(attachments, known)

    def _summaries_known(
        self, attachments: list[dict[str, Any]], known: dict[str, dict[str, Any]]
    ) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for entry in attachments:
            if not looks_pdf(entry.get("name"), entry.get("content_type")):
                out.append(_not_pdf_summary())
                continue
            key = _attachment_key(entry)
            summary = None if key is None else known.get(key)
            if summary is None and key is not None and key in self.running:
                summary = _pending_summary()
            out.append(summary)
        return out


def _undecodable(entry: dict[str, Any], exc: EdxmlError) -> dict[str, Any]:
    """The final report on a PDF attachment whose stored bytes cannot be decoded: unreadable,
    about the bytes the package carries (its edXML digest and size), saying why."""
    size = entry.get("size")
    return ValidationReport.unreadable(
        None,
        entry.get("name"),
        f"the attachment cannot be decoded: {exc}",
        sha256=str(entry.get("sha256") or ""),
        size=size if isinstance(size, int) else 0,
    ).to_json()


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
