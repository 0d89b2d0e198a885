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

from server.config import Config
from server.exchange import Exchange, document_meta, edxml_document_id
from storage.audit import AuditRepo
from storage.db import Database
from storage.objects.base import ObjectStore
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.statuses import Status, StatusRepo
from storage.repos.tokens import Principal

if TYPE_CHECKING:
    from server.verification import Verifier

ARCHIVIST = "archivist"  # role of an agency's archive staff (văn thư lưu trữ): read-only
BAG_INFO_PREFIX = "Lienthong-"
BAG_REPORT_WAIT = 30.0  # seconds a bag waits for verification reports still being made


class ArchiveError(Exception):
    """Base of the archive's refusals."""


class NotInArchive(ArchiveError):
    """No such document for this caller (absent, a status package, or not theirs)."""


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


def record_json(record: ArchiveRecord) -> dict[str, Any]:
    """The record as the JSON of ``GET /api/v1/archive/{id}`` (also ``data/archive.json``)."""
    doc = record.document
    meta = record.meta
    base = f"/api/v1/documents/{doc.id}"
    attachments = [
        {
            "index": a.get("index", i),
            "name": a.get("name"),
            "content_type": a.get("content_type"),
            "size": a.get("size"),
            "sha256": a.get("sha256"),
            "href": f"{base}/attachments/{a.get('index', i)}",
        }
        for i, a in enumerate(meta.get("attachments") or [])
    ]
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
            doc = await DocumentRepo(tx).get(document_id)
            if doc is None or doc.kind != "document":
                raise NotInArchive(f"No document {document_id} in the archive of the caller.")
            recipients = await DeliveryRepo(tx).recipients(doc.id)
            if principal.organ_id != doc.sender and principal.organ_id not in recipients:
                raise NotInArchive(f"No document {document_id} in the archive of the caller.")
            statuses = await StatusRepo(tx).history(doc.id)
            related = await DocumentRepo(tx).related(doc.id)
            entries = await AuditRepo(tx).for_object(doc.id)
        meta = document_meta(doc)
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
        )

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
            json.dumps(record_json(record), ensure_ascii=False, indent=2), encoding="utf-8"
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
