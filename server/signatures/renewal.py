"""Long-term validation upkeep of the archive (gia hạn dấu thời gian — timestamp renewal).

A signed original stays verifiable for decades only if, before the certificates its newest
timestamp rests on expire, a new document timestamp is laid over it with current revocation
data (PAdES B-LTA renewal, :mod:`signing.ltv`). :meth:`Renewer.run` does that for the archive:

- it walks every stored document's PDF attachments (the attachment as sent) and every
  attachment version (signed or sealed on the axis, ``attachment_versions``): each is a
  *lineage* whose newest file is its last renewal, else the file itself;
- a lineage whose newest file's evidence expires within ``within_days`` (config
  ``[archive] renew_within_days``, CLI ``--within-days``) is renewed: the newest file plus a
  DSS update and a new document timestamp, written to a NEW object and recorded in
  ``attachment_renewals`` with an audit entry (``archive.renew``) in one transaction. The file
  it extends, like the package as received, is never altered (objects are content-addressed
  and, on S3, locked);
- idempotent: a lineage whose newest file is not due is left alone, and a renewal that would
  not push the expiry later (the TSA's own certificate expires no later than before) is not
  stored, so running twice adds nothing the second time.

What a file's evidence rests on is computed once per file (by its SHA-256, ``ltv_inspections``),
so a periodic scan fetches and parses only files it has not seen. :func:`renewal_context` runs
the scan every ``[archive] renew_interval_hours`` inside the server (0: off), in one process
only: the one holding the ``archive-renewal`` lease (server/runtime/leases.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from server.exchange import Exchange
from server.runtime import audit
from server.runtime.config import Config
from server.runtime.spool import temp_path
from server.signatures.verdicts import looks_pdf
from signing import SigningServices
from signing.errors import SigningError
from signing.ltv import Protection, async_renew_pdf, inspect_protection
from signing.trust import default_trust_store
from storage.db import Database
from storage.errors import StorageError
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.objects.local import fetch_to_file
from storage.repos.renewals import Renewal, RenewalRepo
from storage.repos.signing_sessions import AttachmentVersionRepo

log = logging.getLogger("lienthong.archive")

PAGE = 200  # documents read per database page of the scan


class RenewalError(Exception):
    """The renewal cannot run at all (no TSA or no trust roots configured)."""


@dataclass(frozen=True)
class Lineage:
    """One attachment (``version_id`` None: as sent) or one attachment version, whose newest
    file is ``current_sha256`` (its last renewal, else itself)."""

    document_id: str
    attachment_index: int
    version_id: str | None
    name: str | None
    current_sha256: str | None
    expires_at: datetime | None = None  # known from the last renewal
    sender: str = ""

    @property
    def label(self) -> str:
        """``DOCUMENT#INDEX`` or ``DOCUMENT#INDEX@VERSION``, for messages."""
        base = f"{self.document_id}#{self.attachment_index}"
        return base if self.version_id is None else f"{base}@{self.version_id}"


@dataclass
class RenewalRun:
    """What one run did: lineages looked at, renewed (the new rows), skipped with reasons."""

    within_days: int
    checked: int = 0
    unsigned: int = 0
    not_due: int = 0
    renewed: list[Renewal] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (lineage label, why)
    not_extended: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line with the counts."""
        return (
            f"{self.checked} signed-PDF lineage(s) checked: {len(self.renewed)} renewed, "
            f"{self.not_due} not due within {self.within_days} days, {self.unsigned} without "
            f"signature, {len(self.not_extended)} not extendable, {len(self.failed)} failed"
        )


class Renewer:
    """Finds signed originals whose evidence expires soon and renews them (module docstring)."""

    def __init__(
        self,
        config: Config,
        database: Database,
        objects: ObjectStore,
        exchange: Exchange,
        services: SigningServices | None = None,
    ) -> None:
        self.config = config
        self.database = database
        self.objects = objects
        self.exchange = exchange
        if services is None:
            store = default_trust_store(config.signing.trust_dir)
            services = SigningServices(
                trust_roots=tuple(store.roots), tsa_url=config.tsa.url,
                timeout=float(config.tsa.timeout),
            )  # fmt: skip
        self.services = services
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the TSA/OCSP HTTP sessions and the signing worker loop."""
        await self.services.aclose()
        await asyncio.to_thread(self.services.close)

    def _require_services(self) -> None:
        if not self.services.tsa_url:
            raise RenewalError("no time-stamping authority is configured ([tsa] url)")
        if not self.services.trust_roots:
            raise RenewalError(
                "no trust roots are configured (certs/trust or signing.trust_dir): the axis "
                "cannot collect revocation data for the renewal"
            )

    async def lineages(self) -> AsyncIterator[Lineage]:
        """Every PDF attachment of a stored document and every attachment version, with the
        newest file of each (its last renewal, else itself)."""
        after: str | None = None
        while True:
            async with self.database.reader() as tx:
                repo = RenewalRepo(tx)
                docs = await repo.documents_after(after, PAGE)
                found: list[Lineage] = []
                for doc in docs:
                    meta = json.loads(doc.meta_json or "{}")
                    for index, entry in enumerate(meta.get("attachments") or []):
                        if not looks_pdf(entry.get("name"), entry.get("content_type")):
                            continue
                        last = await repo.latest(doc.id, index, None)
                        found.append(_lineage(doc.id, index, None, entry, last, doc.sender))
                    versions = AttachmentVersionRepo(tx)
                    for version_id in await repo.newest_version_ids(doc.id):
                        version = await versions.get(version_id)
                        if version is None:  # pragma: no cover - rows are never deleted
                            continue
                        last = await repo.latest(doc.id, version.attachment_index, version.id)
                        found.append(
                            Lineage(
                                doc.id, version.attachment_index, version.id, version.name,
                                last.sha256 if last else version.sha256,
                                last.expires_at if last else None, doc.sender,
                            )
                        )  # fmt: skip
            for lineage in found:
                yield lineage
            if len(docs) < PAGE:
                return
            after = docs[-1].id

    async def _fetch(self, lineage: Lineage) -> Path:
        """The newest file of ``lineage`` in a spool file the caller removes."""
        if lineage.version_id is None and lineage.expires_at is None:
            # Not renewed yet: the attachment as sent, decoded from the stored package.
            decoded = await self.exchange.decode_attachment(
                lineage.sender, lineage.document_id, lineage.attachment_index
            )
            return decoded.path
        assert lineage.current_sha256 is not None
        return await fetch_to_file(self.objects, lineage.current_sha256, self.config.spool_dir)

    async def _inspect(self, lineage: Lineage, path: Path) -> Protection | None:
        """What the file's evidence rests on; remembered under its digest."""
        try:
            found = await asyncio.to_thread(inspect_protection, path, self.services.trust_roots)
        except SigningError as exc:
            found, note = None, f"unreadable: {exc}"
        else:
            note = "no signature" if found is None else found.cause
        if lineage.current_sha256 is not None:
            async with self.database.transaction() as tx:
                await RenewalRepo(tx).remember(
                    lineage.current_sha256, None if found is None else found.expires_at, note
                )
        return found

    async def run(self, within_days: int, *, now: datetime | None = None) -> RenewalRun:
        """Renew every lineage whose newest file's evidence expires within ``within_days`` of
        ``now`` (see the module docstring); one run at a time per Renewer. Failures of one
        lineage (TSA down, a revoked certificate) are reported in the result and logged; the
        others go on. Raises :class:`RenewalError` when nothing can be renewed at all."""
        self._require_services()
        deadline = (now or utcnow()) + timedelta(days=within_days)
        result = RenewalRun(within_days)
        async with self._lock:
            async for lineage in self.lineages():
                await self._one(lineage, deadline, result)
        log.info(
            "archive renewal",
            extra={
                "renewed": len(result.renewed),
                "failed": len(result.failed),
                "within_days": within_days,
            },
        )
        return result

    async def _one(self, lineage: Lineage, deadline: datetime, result: RenewalRun) -> None:
        expires_at = lineage.expires_at
        path: Path | None = None
        try:
            if expires_at is None and lineage.current_sha256 is not None:
                async with self.database.reader() as tx:
                    known = await RenewalRepo(tx).inspection(lineage.current_sha256)
                if known is not None:
                    if known.expires_at is None:
                        result.unsigned += 1
                        return
                    expires_at = known.expires_at
            if expires_at is None:
                path = await self._fetch(lineage)
                found = await self._inspect(lineage, path)
                if found is None:
                    result.unsigned += 1
                    return
                expires_at = found.expires_at
            result.checked += 1
            if expires_at > deadline:
                result.not_due += 1
                return
            if path is None:
                path = await self._fetch(lineage)
            await self._renew(lineage, path, expires_at, result)
        except (SigningError, StorageError, OSError) as exc:
            log.warning("renewal failed", extra={"lineage": lineage.label, "error": str(exc)})
            result.failed.append((lineage.label, str(exc)))
        finally:
            if path is not None:
                path.unlink(missing_ok=True)

    async def _renew(
        self, lineage: Lineage, path: Path, expires_at: datetime, result: RenewalRun
    ) -> None:
        base_sha = await asyncio.to_thread(_sha256_file, path)
        out = temp_path(self.config.spool_dir, ".pdf")
        try:
            # pyHanko on the signing worker loop: parsing and hashing never block this loop.
            renewed = await self.services.offload(async_renew_pdf(path, out, self.services))
            if renewed.expires_at <= expires_at:
                why = (
                    f"a renewal now would not extend the evidence past {expires_at:%Y-%m-%d} "
                    f"({renewed.cause}): the TSA needs a newer certificate"
                )
                log.warning("renewal not stored", extra={"lineage": lineage.label, "why": why})
                result.not_extended.append((lineage.label, why))
                return
            ref = await self.objects.put_file(out)
        finally:
            out.unlink(missing_ok=True)
        async with self.database.transaction() as tx:
            repo = RenewalRepo(tx)
            renewal = await repo.add(
                lineage.document_id, lineage.attachment_index, lineage.version_id, base_sha,
                ref.sha256, ref.size, lineage.name, renewed.expires_at, expires_at,
            )  # fmt: skip
            await repo.remember(ref.sha256, renewed.expires_at, renewed.cause)
            await record_renewal(tx, renewal, renewed)
        log.info("attachment renewed", extra={"lineage": lineage.label, "sha256": ref.sha256})
        result.renewed.append(renewal)


def _lineage(
    document_id: str,
    index: int,
    version_id: str | None,
    entry: dict[str, Any],
    last: Renewal | None,
    sender: str,
) -> Lineage:
    key = entry.get("sha256")
    current = last.sha256 if last else (key if isinstance(key, str) else None)
    return Lineage(
        document_id, index, version_id, entry.get("name"), current,
        last.expires_at if last else None, sender,
    )  # fmt: skip


def _sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def record_renewal(tx: Any, renewal: Renewal, renewed: Protection) -> None:
    """The axis renewed an attachment's evidence (in the transaction storing the renewal)."""
    await audit.record(
        tx,
        audit.AXIS,
        "archive.renew",
        [renewal.id, renewal.document_id],
        {
            "attachment": renewal.attachment_index,
            "version": renewal.version_id,
            "base_sha256": renewal.base_sha256,
            "sha256": renewal.sha256,
            "size": renewal.size,
            "previous_expires_at": None
            if renewal.previous_expires_at is None
            else renewal.previous_expires_at.isoformat(),
            "expires_at": renewal.expires_at.isoformat(),
            "document_timestamps": renewed.document_timestamps,
        },
    )


async def renew_loop(renewer: Renewer, within_days: int, every_seconds: float) -> None:
    """Run the renewal every ``every_seconds`` until cancelled (first run after one interval);
    a failed run is logged and retried at the next tick."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await renewer.run(within_days)
        except (RenewalError, StorageError) as exc:
            log.warning("archive renewal did not run", extra={"error": str(exc)})


__all__ = [
    "Lineage",
    "RenewalError",
    "RenewalRun",
    "Renewer",
    "record_renewal",
]
