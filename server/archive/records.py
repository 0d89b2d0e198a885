"""The archive (lưu trữ): what was received, as received, with its history, for the parties.

An archive record gathers, for one document: the stored package and its attachments (links and
SHA-256), the verification reports stored with it, the status history, the related packages
(revoke/update/replace) and the document's entries in the audit log. It is shown to the sender,
the recipients and their archivists (tokens with the ``archivist`` role of those agencies) and
to no one else: for anybody else the document does not exist (404, like the rest of the API).

``bag`` writes the record as a BagIt archival package (RFC 8493, the ``bagit`` library):
``data/package.edxml`` (the package exactly as stored), ``data/attachments/`` (decoded),
``data/archive.json`` (the record) and ``data/verification/`` (each PDF attachment's report
made at arrival, ``NN-<attachment name>.json`` beside ``attachments/NN-<attachment name>``, and
any later re-verification as ``later/NN-<attachment name>.K.json``, K = 1, 2, ...), with
``manifest-sha256.txt`` and a ``bag-info.txt`` naming the organisations, number and notation and
dates. The bag is built in a temp directory and zipped to a temp file that the caller streams.

Renewed files and attachment versions. Each attachment lists its renewals (B-LTA document
timestamps added by server/signatures/renewal.py: sha256, created time, a download link) and the
versions
the caller's agency made of it (signed or sealed on the axis, server/signatures/sessions.py), each
with its own renewals. Renewals of the attachment as sent are shown to everybody who sees the
record; a version and its renewals only to the agency that made it (and its archivists), as
``.../versions`` does. In the bag they sit beside the attachment::

    attachments/NN-<stem>.pdf                       the attachment as received
    attachments/NN-<stem>.renewal-K.pdf             its K-th renewal (K = 1, 2, ...)
    attachments/NN-<stem>.version-J.pdf             the caller's J-th version of it
    attachments/NN-<stem>.version-J.renewal-K.pdf   the K-th renewal of that version

with one ``Lienthong-Renewal`` / ``Lienthong-Attachment-Version`` line each in bag-info.txt,
and, in the bag's ``archive.json``, ``file`` (and for a renewal ``renews_file``: the file it
extends) on each entry, which `lienthong archive verify` reads to check that every renewal
starts with the bytes of the file it renews (an incremental update never alters the original).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bagit

from server.exchange import DocumentNotFound, Exchange, document_meta, edxml_document_id
from server.runtime.config import Config
from server.runtime.problems import NOT_FOUND, DomainError
from storage.audit import AuditRepo
from storage.db import Database, Tx
from storage.objects.base import ObjectStore
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.renewals import Renewal, RenewalRepo
from storage.repos.signing_sessions import AttachmentVersion, AttachmentVersionRepo
from storage.repos.statuses import Status, StatusRepo
from storage.repos.tokens import Principal

if TYPE_CHECKING:
    from server.signatures.verification import Verifier

ARCHIVIST = "archivist"  # role of an agency's archive staff (văn thư lưu trữ): read-only
BAG_INFO_PREFIX = "Lienthong-"
BAG_REPORT_WAIT = 30.0  # seconds a bag waits for verification reports still being made


class ArchiveError(DomainError):
    """Base of the archive's refusals."""


class NotInArchive(ArchiveError):
    """No such document for this caller (absent, a status package, or not theirs)."""

    problem = NOT_FOUND


@dataclass(frozen=True)
class ArchiveRecord:
    """Everything the archive holds about one document (see the module docstring)."""

    document: Document
    meta: dict[str, Any]
    recipients: list[str]
    statuses: list[Status]
    related: list[Document]
    audit: list[dict[str, Any]]
    # One entry per PDF attachment: index, name, sha256, verdict, the report made at arrival
    # (lienthong.verification/1; None while still pending) and the later re-verifications,
    # read from the object store through the Verifier.
    reports: list[dict[str, Any]] = field(default_factory=list)
    # The versions of the attachments the caller's agency made (oldest first), and the
    # renewals the caller may see: of the attachments as sent, and of those versions.
    versions: list[AttachmentVersion] = field(default_factory=list)
    renewals: list[Renewal] = field(default_factory=list)

    @property
    def verification(self) -> list[dict[str, Any]]:
        """The verification reports stored with the document, one entry per PDF attachment."""
        return self.reports


def _status_json(status: Status) -> dict[str, Any]:
    return {
        "code": status.code,
        "sender": status.sender,
        "recipient": status.recipient,
        "description": status.description,
        "staff": status.staff,
        "timestamp": None if status.timestamp is None else status.timestamp.isoformat(),
        "received_at": status.received_at.isoformat(),
        "package_id": status.package_id,
    }


def _renewal_json(renewal: Renewal, layout: BagLayout | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": renewal.id,
        "attachment": renewal.attachment_index,
        "version": renewal.version_id,
        "base_sha256": renewal.base_sha256,
        "sha256": renewal.sha256,
        "size": renewal.size,
        "created_at": renewal.created_at.isoformat(),
        "expires_at": renewal.expires_at.isoformat(),
        "previous_expires_at": None
        if renewal.previous_expires_at is None
        else renewal.previous_expires_at.isoformat(),
        "href": f"/api/v1/archive/{renewal.document_id}/renewals/{renewal.id}",
    }
    if layout is not None:
        entry["file"] = layout.files[renewal.id]
        entry["renews_file"] = layout.renews.get(renewal.id)
    return entry


def _version_json(
    version: AttachmentVersion, renewals: list[Renewal], layout: BagLayout | None
) -> dict[str, Any]:
    base = f"/api/v1/documents/{version.document_id}/attachments/{version.attachment_index}"
    entry: dict[str, Any] = {
        "version": version.id,
        "kind": version.kind,
        "organ_id": version.organ_id,
        "name": version.name,
        "base_sha256": version.base_sha256,
        "sha256": version.sha256,
        "size": version.size,
        "created_at": version.created_at.isoformat(),
        "href": f"{base}/versions/{version.id}",
    }
    if layout is not None:
        entry["file"] = layout.files[version.id]
    entry["renewals"] = [_renewal_json(r, layout) for r in renewals if r.version_id == version.id]
    return entry


def _attachments_json(record: ArchiveRecord, layout: BagLayout | None) -> list[dict[str, Any]]:
    base = f"/api/v1/documents/{record.document.id}"
    attachments = []
    for i, a in enumerate(record.meta.get("attachments") or []):
        index = a.get("index", i)
        entry: dict[str, Any] = {
            "index": index,
            "name": a.get("name"),
            "content_type": a.get("content_type"),
            "size": a.get("size"),
            "sha256": a.get("sha256"),
            "href": f"{base}/attachments/{index}",
        }
        if layout is not None:
            entry["file"] = layout.attachment_file(index, a.get("name"))
        entry["renewals"] = [
            _renewal_json(r, layout)
            for r in record.renewals
            if r.attachment_index == index and r.version_id is None
        ]
        entry["versions"] = [
            _version_json(v, record.renewals, layout)
            for v in record.versions
            if v.attachment_index == index
        ]
        attachments.append(entry)
    return attachments


def record_json(record: ArchiveRecord, layout: BagLayout | None = None) -> dict[str, Any]:
    """The record as the JSON of ``GET /api/v1/archive/{id}`` (also ``data/archive.json``,
    where ``layout`` adds each file's place in the bag)."""
    doc = record.document
    meta = record.meta
    base = f"/api/v1/documents/{doc.id}"
    attachments = _attachments_json(record, layout)
    return {
        "id": doc.id,
        "edxml_document_id": edxml_document_id(doc),
        "sender": doc.sender,
        "recipients": record.recipients,
        "subject": doc.subject,
        "code": meta.get("code"),
        "promulgation": meta.get("promulgation"),
        "business": meta.get("business"),
        "received_at": doc.received_at.isoformat(),
        "package": {
            "href": base,
            "sha256": doc.sha256,
            "size": doc.size,
            # The stored package carries the axis TraceHeader; these are the bytes as received.
            "received_sha256": meta.get("received_sha256"),
            "received_size": meta.get("received_size"),
        },
        "attachments": attachments,
        "verification": record.verification,
        "statuses": [_status_json(s) for s in record.statuses],
        "related": [
            {
                "id": d.id,
                "kind": d.kind,
                "edxml_document_id": edxml_document_id(d),
                "business_type": d.business_type,
                "sender": d.sender,
                "received_at": d.received_at.isoformat(),
                "sha256": d.sha256,
            }
            for d in record.related
        ],
        "audit": record.audit,
        "bag": f"/api/v1/archive/{doc.id}/package",
    }


def _safe_name(name: str | None, fallback: str) -> str:
    base = (name or fallback).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[\x00-\x1f<>:\"|?*]", "_", base).strip(" .")
    return cleaned or fallback


def _bag_name(index: int, name: str | None) -> str:
    """``NN-<name>``: an attachment's file name in the bag (its report adds ``.json``)."""
    return f"{index:02d}-{_safe_name(name, f'attachment-{index}')}"


def _stem(bag_name: str) -> str:
    return bag_name[:-4] if bag_name.lower().endswith(".pdf") else bag_name


@dataclass(frozen=True)
class BagLayout:
    """Where each renewal and version of a record goes in the bag (module docstring):
    ``files`` maps a renewal or version id to its path under ``data/``, ``renews`` a renewal id
    to the path of the file it extends (None when that file is not in the bag)."""

    files: dict[str, str]
    renews: dict[str, str | None]

    @staticmethod
    def attachment_file(index: int, name: str | None) -> str:
        """The attachment as received, under ``data/``."""
        return f"attachments/{_bag_name(index, name)}"

    @classmethod
    def of(cls, record: ArchiveRecord) -> BagLayout:
        """The layout of ``record``'s renewals and versions (numbered oldest first)."""
        names: dict[int, str | None] = {}
        files: dict[str, str] = {}
        by_sha: dict[str, str] = {}  # sha256 -> file, to find what a renewal extends
        roots: dict[tuple[int, str | None], str] = {}  # lineage -> its first file
        for i, entry in enumerate(record.meta.get("attachments") or []):
            index = int(entry.get("index", i))
            names[index] = entry.get("name")
            roots[(index, None)] = cls.attachment_file(index, entry.get("name"))
            if isinstance(entry.get("sha256"), str):
                by_sha.setdefault(entry["sha256"], roots[(index, None)])
        counts: dict[int, int] = {}
        for version in record.versions:
            j = counts[version.attachment_index] = counts.get(version.attachment_index, 0) + 1
            stem = _stem(_bag_name(version.attachment_index, names.get(version.attachment_index)))
            files[version.id] = f"attachments/{stem}.version-{j}.pdf"
            roots[(version.attachment_index, version.id)] = files[version.id]
            by_sha.setdefault(version.sha256, files[version.id])
        renews: dict[str, str | None] = {}
        lineage_counts: dict[tuple[int, str | None], int] = {}
        for renewal in record.renewals:
            key = (renewal.attachment_index, renewal.version_id)
            k = lineage_counts[key] = lineage_counts.get(key, 0) + 1
            # (a lineage always has its root: renewals are filtered to visible lineages)
            root = roots.get(key) or cls.attachment_file(renewal.attachment_index, renewal.name)
            files[renewal.id] = f"attachments/{_stem(root.split('/', 1)[1])}.renewal-{k}.pdf"
            renews[renewal.id] = by_sha.get(renewal.base_sha256)
            by_sha.setdefault(renewal.sha256, files[renewal.id])
        return cls(files, renews)


def bag_info(record: ArchiveRecord) -> dict[str, Any]:
    """The bag-info.txt fields: organisation ids, number and notation, dates."""
    doc = record.document
    meta = record.meta
    code = meta.get("code") or {}
    sender_name = (meta.get("from") or {}).get("name")
    info: dict[str, Any] = {
        "Source-Organization": sender_name or doc.sender,
        "External-Identifier": edxml_document_id(doc),
        "External-Description": doc.subject or "",
        "Internal-Sender-Identifier": doc.id,
        BAG_INFO_PREFIX + "Sender-Organ-Id": doc.sender,
        BAG_INFO_PREFIX + "Recipient-Organ-Id": list(record.recipients),
        BAG_INFO_PREFIX + "Number": code.get("number") or "",
        BAG_INFO_PREFIX + "Notation": code.get("notation") or "",
        BAG_INFO_PREFIX + "Promulgation-Date": (meta.get("promulgation") or {}).get("date") or "",
        BAG_INFO_PREFIX + "Received-At": doc.received_at.isoformat(),
        BAG_INFO_PREFIX + "Package-Sha256": doc.sha256,
        BAG_INFO_PREFIX + "Status-Count": str(len(record.statuses)),
        BAG_INFO_PREFIX + "Audit-Entries": str(len(record.audit)),
    }
    layout = BagLayout.of(record)
    if record.renewals:
        info[BAG_INFO_PREFIX + "Renewal-Count"] = str(len(record.renewals))
        info[BAG_INFO_PREFIX + "Renewal"] = [
            f"{layout.files[r.id]} sha256={r.sha256} created={r.created_at.isoformat()} "
            f"renews={layout.renews.get(r.id) or '?'}"
            for r in record.renewals
        ]
    if record.versions:
        info[BAG_INFO_PREFIX + "Version-Count"] = str(len(record.versions))
        info[BAG_INFO_PREFIX + "Attachment-Version"] = [
            f"{layout.files[v.id]} kind={v.kind} organ={v.organ_id} sha256={v.sha256} "
            f"created={v.created_at.isoformat()}"
            for v in record.versions
        ]
    return {k: v for k, v in info.items() if v not in ("", [])}


class Archive:
    """The archive bound to one axis's database, object store and exchange rules."""

    def __init__(
        self,
        config: Config,
        database: Database,
        objects: ObjectStore,
        exchange: Exchange,
        verifier: Verifier | None = None,
    ) -> None:
        self.config = config
        self.database = database
        self.objects = objects
        self.exchange = exchange
        self.verifier = verifier  # where the verification reports made at arrival are kept

    async def record(
        self, principal: Principal, document_id: str, *, wait_reports: float = 0.0
    ) -> ArchiveRecord:
        """The archive record of a document the caller's agency sent or received.

        Agency systems and archivists of that agency alike; NotInArchive otherwise.
        ``wait_reports``: seconds to wait for verification reports still being made.
        """
        async with self.database.reader() as tx:
            doc = await self._visible(tx, principal, document_id)
            recipients = await DeliveryRepo(tx).recipients(doc.id)
            statuses = await StatusRepo(tx).history(doc.id)
            related = await DocumentRepo(tx).related(doc.id)
            entries = await AuditRepo(tx).for_object(doc.id)
            meta = document_meta(doc)
            versions, renewals = await _visible_files(tx, principal, doc.id, meta)
        reports = (
            [] if self.verifier is None else await self.verifier.reports_of(doc, wait=wait_reports)
        )
        return ArchiveRecord(
            document=doc,
            meta=meta,
            recipients=recipients,
            statuses=statuses,
            related=[d for d in related if d.kind == "document"],
            audit=[e.as_json() for e in entries],
            reports=reports,
            versions=versions,
            renewals=renewals,
        )

    async def renewal(self, principal: Principal, document_id: str, renewal_id: str) -> Renewal:
        """One renewal the caller may see (module docstring), else NotInArchive."""
        async with self.database.reader() as tx:
            doc = await self._visible(tx, principal, document_id)
            _, renewals = await _visible_files(tx, principal, doc.id, document_meta(doc))
        for renewal in renewals:
            if renewal.id == renewal_id:
                return renewal
        raise NotInArchive(f"No renewal {renewal_id} of document {document_id} for the caller.")

    async def _visible(self, tx: Tx, principal: Principal, document_id: str) -> Document:
        """The document if the caller's agency sent or received it (the exchange's own rule,
        :meth:`Exchange.visible`) and it is a document, not a status package."""
        try:
            doc = await self.exchange.visible(tx, principal.organ_id, document_id)
        except DocumentNotFound:
            doc = None
        if doc is None or doc.kind != "document":
            raise NotInArchive(f"No document {document_id} in the archive of the caller.")
        return doc

    async def bag(self, principal: Principal, document_id: str) -> Path:
        """Build the BagIt package of a document and zip it; return the zip (a temp file the
        caller streams and removes)."""
        # the bag is evidence: it should carry every attachment's report made at arrival
        record = await self.record(principal, document_id, wait_reports=BAG_REPORT_WAIT)
        doc = record.document
        self.config.spool_dir.mkdir(parents=True, exist_ok=True)
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self.config.spool_dir))
        try:
            root = work / f"lienthong-{doc.id}"
            await asyncio.to_thread((root / "attachments").mkdir, parents=True)
            await self._write_object(doc.sha256, root / "package.edxml")
            for entry in record_json(record)["attachments"]:
                index = int(entry["index"])
                decoded = await self.exchange.decode_attachment(principal.organ_id, doc.id, index)
                name = _bag_name(index, decoded.name)
                await asyncio.to_thread(shutil.move, decoded.path, root / "attachments" / name)
            layout = BagLayout.of(record)
            for file_id, sha in [(v.id, v.sha256) for v in record.versions] + [
                (r.id, r.sha256) for r in record.renewals
            ]:
                await self._write_object(sha, root / layout.files[file_id])
            await asyncio.to_thread(self._finish_bag, root, record, work)
            return work.with_suffix(".zip")
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _write_object(self, sha256: str, target: Path) -> None:
        out = await asyncio.to_thread(target.open, "wb")
        try:
            async for chunk in self.objects.open(sha256):  # hash-checked whole read
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)

    def _finish_bag(self, root: Path, record: ArchiveRecord, work: Path) -> None:
        """Blocking: write the JSON files, make the bag (sha256 manifests), zip it."""
        (root / "archive.json").write_text(
            json.dumps(record_json(record, BagLayout.of(record)), ensure_ascii=False, indent=2),
            encoding="utf-8",
        )
        written = [r for r in record.verification if isinstance(r.get("report"), dict)]
        if written:
            (root / "verification").mkdir()
            for entry in written:
                # named after the attachment file it is about, so `archive verify` pairs them
                name = _bag_name(int(entry["index"]), entry.get("name"))
                (root / "verification" / f"{name}.json").write_text(
                    json.dumps(entry["report"], ensure_ascii=False, indent=2), encoding="utf-8"
                )
                for k, later in enumerate(entry.get("later") or [], start=1):
                    # a subfolder: `archive verify` compares with the report at arrival only
                    (root / "verification" / "later").mkdir(exist_ok=True)
                    (root / "verification" / "later" / f"{name}.{k}.json").write_text(
                        json.dumps(later, ensure_ascii=False, indent=2), encoding="utf-8"
                    )
        bagit.make_bag(str(root), bag_info(record), checksums=["sha256"])
        zip_path = work.with_suffix(".zip")
        try:
            with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                for path in sorted(root.rglob("*")):
                    if path.is_file():
                        zf.write(path, path.relative_to(work).as_posix())
        except BaseException:
            zip_path.unlink(missing_ok=True)
            raise


async def _visible_files(
    tx: Tx, principal: Principal, document_id: str, meta: dict[str, Any]
) -> tuple[list[AttachmentVersion], list[Renewal]]:
    """The attachment versions the caller's agency made, and the renewals it may see: those of
    the attachments as sent and those of its own versions (oldest first)."""
    versions: list[AttachmentVersion] = []
    repo = AttachmentVersionRepo(tx)
    for i, entry in enumerate(meta.get("attachments") or []):
        versions += await repo.list(document_id, int(entry.get("index", i)), principal.organ_id)
    versions.sort(key=lambda v: v.id)  # ids sort in creation order
    own = {v.id for v in versions}
    renewals = [
        r
        for r in await RenewalRepo(tx).of_document(document_id)
        if r.version_id is None or r.version_id in own
    ]
    return versions, renewals
