"""Demo traffic of ``lienthong demo`` (``make run``), for the dashboard (issue 19): a few months
of documents exchanged between the demo agencies with their acknowledgements and statuses 03,
dossiers received and moved, feedback answered and rated, so that the figures and charts look
real on first start.

Deterministic (one seeded random generator) and idempotent: the documents are skipped when the
first of them is already stored, and the dossiers and feedback carry ``Idempotency-Key`` s and
are moved only when received by this run.

How each kind gets its past:

- documents: the packages are real edXML (built, spooled with the axis TraceHeader at their
  back-dated moment, parsed and summarised as the exchange does, stored in the object store),
  but the rows go in through the repositories with their back-dated times, because the
  exchange's accept stamps ``now`` (an axis never back-dates what it receives). Some carry a
  paper copy (edXML ``Paper`` = 1), some the demo PDF (server/demo/content.py ``demo_pdf``) with
  a stored verification report: passed for most, failed for a few;
- dossiers and feedback: through their domains' intake and moves, which accept times up to 30
  days back (``received_at``, a move's ``at``); so these span the last four weeks.

Lives in ``cli/`` beside demo_dossiers.py because it uses the exchange, dossiers and feedback
domains, which ``server/demo/`` may not import (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import edxml
from edxml import (
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DiscardSink,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    TraceHeader,
)
from edxml.model import VN_TZ
from server.calendar.hours import WorkingHours
from server.calendar.store import CalendarSource
from server.cli.demo_dossiers import _staged
from server.demo import content as demo
from server.dossiers.intake import Intake, read_request, receive
from server.dossiers.moves import Move, advance
from server.exchange.meta import summarize
from server.feedback.intake import FeedbackServices, read_submission, submit
from server.feedback.moves import FeedbackMove, apply_move, feedback_of, rate
from server.runtime.config import Config
from server.runtime.objectstore import close_object_store, open_object_store
from server.runtime.spool import receive as spool_receive
from server.runtime.spool import spool_file
from server.signatures.verdicts import verdict_of
from storage.db import Database, Tx
from storage.ids import new_id, utcnow
from storage.objects.base import ObjectStore
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.statuses import Status, StatusRepo
from storage.repos.verification_reports import VerificationReportRepo, VerificationReportRow

SEED = 19
DOCUMENT_DAYS = 120  # documents span about four months back
DOCUMENTS = 90
DOSSIER_DAYS = 27  # the domains accept at most 30 days back
DOSSIERS = 24
FEEDBACK = 14
KEY_PREFIX = "demo-traffic"

# Who writes to whom (sender, recipient) within the province. Văn phòng Chính phủ neither sends
# nor receives: its inbox and sent list stay the guide's and the README's (tests read them whole).
PAIRS = (
    ("000.00.00.H41", "000.00.12.H41"),
    ("000.00.00.H41", "000.00.31.H41"),
    ("000.00.12.H41", "000.00.00.H41"),
    ("000.00.31.H41", "000.00.00.H41"),
    ("000.00.31.H41", "000.05.31.H41"),
    ("000.05.31.H41", "000.00.31.H41"),
)
SUBJECTS = (
    "V/v báo cáo tình hình kinh tế - xã hội tháng",
    "V/v triển khai dịch vụ công trực tuyến toàn trình",
    "V/v rà soát thủ tục hành chính",
    "V/v tổ chức hội nghị sơ kết",
    "V/v phòng, chống thiên tai",
    "V/v chuyển đổi số cấp xã",
)
# The demo procedures (server/demo/procedures.json): (code, unit, components to file)
PROCEDURES = (
    ("1.001193", "000.05.31.H41", ("TK", "GCS")),
    ("2.000806", "000.00.31.H41", ("TK", "XNHN", "SK", "HC")),
)
NAMES = ("Nguyễn Văn Hùng", "Trần Thị Lan", "Lê Văn Minh", "Phạm Thị Hoa", "Hồ Văn Nam")
CATEGORIES = ("duong-hu-hong", "chieu-sang", "ve-sinh-moi-truong", "thu-tuc-hanh-chinh")
FEEDBACK_OFFICE = "000.00.00.H41"  # [feedback] receiving_unit of the demo config
# The agencies the traffic is between: connected to the axis since it began (below).
TRAFFIC_AGENCIES = sorted(
    {organ for pair in PAIRS for organ in pair}
    | {unit for _, unit, _ in PROCEDURES}
    | {FEEDBACK_OFFICE}
)


@dataclass(frozen=True)
class TrafficReport:
    """What one run added (zero everywhere on a second run)."""

    documents: int
    dossiers: int
    feedback: int

    def summary(self) -> str:
        return (
            f"{self.documents} documents, {self.dossiers} dossiers, "
            f"{self.feedback} feedback items added"
        )


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _doc_id(sender: str, n: int, day: datetime) -> str:
    return f"{sender},{day:%Y/%m/%d},{1000 + n}/DEMO-{KEY_PREFIX}"


def _pdf_report(verdict_passed: bool, at: datetime) -> dict[str, object]:
    """The verification report kept for the demo PDF (shape of ``lienthong.verification/1``)."""
    return {
        "format": "lienthong.verification/1",
        "demo": True,
        "status": "signed",
        "indication": "TOTAL_PASSED" if verdict_passed else "TOTAL_FAILED",
        "all_passed": verdict_passed,
        "verified_at": at.isoformat(),
        "signatures": [],
    }


@dataclass(frozen=True)
class _Row:
    """One demo document's rows: the package, its recipient, when it was acknowledged and
    answered with status 03 (None: not yet), the digests of its PDFs."""

    document: Document
    recipient: str
    acked: datetime
    status_at: datetime | None
    pdfs: list[str]


class _Documents:
    """Documents exchanged over the last months, through the repositories (see the docstring)."""

    def __init__(self, config: Config, database: Database, objects: ObjectStore) -> None:
        self.config = config
        self.database = database
        self.objects = objects
        self.rng = random.Random(SEED)
        self.pdfs = (b"", b"")  # made by seed() when there is something to seed
        self.reported: set[str] = set()

    def envelope(self, n: int, sender: str, recipient: str, at: datetime) -> Envelope:
        rng = self.rng
        names = {a.organ_id: a.name for a in demo.DEMO_AGENCIES}
        paper = 1 if rng.random() < 0.2 else 0
        content_id = f"vb-{n}"
        if rng.random() < 0.45:
            data = self.pdfs[0 if rng.random() < 0.85 else 1]
            name, ctype = f"cong-van-{n}.pdf", "application/pdf"
        else:
            data = f"Công văn số {1000 + n}, gửi {names[recipient]}.\n".encode()
            name, ctype = f"cong-van-{n}.txt", "text/plain"
        local = at.astimezone(VN_TZ)
        return Envelope(
            header=MessageHeader(
                from_=Organization(sender, organ_name=names[sender]),
                to=(Organization(recipient, organ_name=names[recipient]),),
                document_id=_doc_id(sender, n, local),
                subject=f"{rng.choice(SUBJECTS)} {local:%m/%Y}",
                code=Code(str(1000 + n), "DEMO"),
            ),
            trace_headers=(TraceHeader(sender, local - timedelta(minutes=2)),),
            business=Business(doc_type=BusinessDocType.NEW, paper=paper),
            manifest=(ManifestReference(content_id=content_id, content_type=ctype),),
            attachments=(
                Attachment(content_id=content_id, name=name, content_type=ctype, data=data),
            ),
        )

    async def store(self, n: int, sender: str, recipient: str, at: datetime, now: datetime) -> _Row:
        """The package spooled, summarised and stored; its rows, to insert."""
        envelope = self.envelope(n, sender, recipient, at)
        package = await spool_receive(
            _one(edxml.serialize(envelope)),
            self.config.spool_dir,
            limit=self.config.server.max_body_bytes,
            organ_id=self.config.server.axis_id,
            moment=at,
        )
        with spool_file(package):
            parsed = edxml.parse(package.path, sink=DiscardSink())
            assert isinstance(parsed, Envelope)
            meta = summarize(parsed, package, [])
            ref = await self.objects.put_file(package.path, sha256=package.sha256)
        pdfs = [a for a in meta["attachments"] if a["content_type"] == "application/pdf"]
        doc = Document(
            id=new_id(),
            sender=sender,
            document_id=envelope.header.document_id or "",
            kind="document",
            sha256=ref.sha256,
            size=ref.size,
            subject=parsed.header.subject,
            code=str(parsed.header.code),
            business_type=0,
            received_at=at,
            meta_json=json.dumps(meta, ensure_ascii=False),
        )
        rng = self.rng
        # Every one acknowledged (the guide's inbox?state=new then shows the demo package
        # alone), before now; most answered with a status 03 some hours later.
        acked = min(at + timedelta(minutes=rng.randint(5, 60 * 30)), now - timedelta(minutes=30))
        acked = max(acked, at + timedelta(minutes=1))
        status_at = None
        if rng.random() < 0.8:
            status_at = acked + timedelta(minutes=rng.randint(10, 60 * 48))
        return _Row(doc, recipient, acked, status_at, [a["sha256"] for a in pdfs])

    async def insert(self, tx: Tx, row: _Row, now: datetime) -> None:
        doc = row.document
        await DocumentRepo(tx).insert(doc)
        deliveries = DeliveryRepo(tx)
        delivery = await deliveries.insert(doc.id, row.recipient, "document", at=doc.received_at)
        if row.acked < now:
            await deliveries.ack(delivery.id, row.recipient, at=row.acked)
        if row.status_at is not None and row.status_at < now:
            await StatusRepo(tx).insert(
                Status(
                    id=new_id(),
                    document_id=doc.id,
                    sender=row.recipient,
                    recipient=doc.sender,
                    code="03",
                    description="Đã tiếp nhận",
                    staff="Văn thư",
                    timestamp=row.status_at,
                    received_at=row.status_at,
                )
            )
        for sha256 in row.pdfs:
            await self._report(tx, sha256, doc.received_at)

    async def _report(self, tx: Tx, sha256: str, at: datetime) -> None:
        if sha256 in self.reported:
            return
        self.reported.add(sha256)
        passed = hashlib.sha256(self.pdfs[0]).hexdigest() == sha256
        report = _pdf_report(passed, at)
        data = json.dumps(report, ensure_ascii=False, sort_keys=True).encode()
        ref = await self.objects.put(_one(data))
        row = VerificationReportRow(
            attachment_sha256=sha256,
            report_sha256=ref.sha256,
            report_size=ref.size,
            verified_at=at,
            policy="demo",
            verdict=verdict_of(report),
        )
        await VerificationReportRepo(tx).add(row, only_first=True)

    async def seed(self, now: datetime) -> int:
        first_sender = PAIRS[0][0]
        start = now - timedelta(days=DOCUMENT_DAYS)
        times = sorted(
            start + timedelta(seconds=self.rng.randint(0, DOCUMENT_DAYS * 86400 - 3600))
            for _ in range(DOCUMENTS)
        )
        first_id = _doc_id(first_sender, 0, times[0].astimezone(VN_TZ))
        async with self.database.reader() as tx:
            if await DocumentRepo(tx).find_by_sender_docid(first_sender, first_id) is not None:
                return 0
        pdf = demo.demo_pdf()
        # Two PDFs: the demo công văn whose signature check passed, and one whose check failed
        # (its bytes differ by a trailing comment, as an altered file would).
        self.pdfs = (pdf, pdf + b"\n% altered after signing\n")
        rows = []
        for n, at in enumerate(times):
            sender, recipient = PAIRS[0] if n == 0 else self.rng.choice(PAIRS)
            rows.append(await self.store(n, sender, recipient, at, now))
        async with self.database.transaction() as tx:  # one commit for them all
            # Agencies exchanging documents months ago were connected to the axis then: the
            # figure "agencies connected" counts an agency from its registration, which the
            # demo made today. Registered as of the traffic's start, they count in its months.
            for organ in TRAFFIC_AGENCIES:
                await AgencyRepo(tx).registered_by(organ, start)
            for row in rows:
                await self.insert(tx, row, now)
        return len(rows)


async def _seed_dossiers(
    config: Config, database: Database, objects: ObjectStore, source: CalendarSource, now: datetime
) -> int:
    zone = ZoneInfo(config.dossiers.timezone)
    rng = random.Random(SEED + 1)
    added = 0
    for n in range(DOSSIERS):
        code, unit, components = PROCEDURES[n % len(PROCEDURES)]
        received_at = (
            now - timedelta(days=DOSSIER_DAYS) + timedelta(hours=n * 24 + rng.randint(1, 8))
        )
        applicant = {
            "name": rng.choice(NAMES),
            "id_number": f"0402030{n:05d}",
            "phone": f"0912{n:06d}",
        }
        request = read_request(
            {
                "procedure": code,
                "applicant": applicant,
                "channel": 2 if rng.random() < 0.5 else 1,
                "received_at": received_at.isoformat(),
            },
            now,
        )
        with tempfile.TemporaryDirectory() as tmp:
            files = [_staged(Path(tmp), c) for c in components]
            received = await receive(
                database,
                objects,
                source.clock,
                zone,
                Intake(unit, request, files, f"{KEY_PREFIX}-hs-{n}"),
            )
        if not received.created:
            continue
        added += 1
        # The path: processing; for some a supplement request; done (some after the due date)
        # and returned; the most recent stay open.
        steps: list[tuple[int, float]] = [(4, rng.uniform(0.5, 4))]
        if received.dossier.status == 1:  # online: registered, then received by the unit
            steps.insert(0, (2, rng.uniform(0.5, 6)))
        if rng.random() < 0.25:
            steps += [(5, rng.uniform(2, 24)), (4, rng.uniform(24, 72))]
        age_hours = (now - received_at).total_seconds() / 3600
        if age_hours > 24 * 6:
            late = rng.random() < 0.2  # done well after its due date
            steps += [(9, rng.uniform(30, 120) if late else rng.uniform(1, 5)), (10, 20)]
        at = received_at
        for status, hours in steps:
            at = at + timedelta(hours=hours)
            if at >= now:
                break
            await advance(
                database, objects, source.clock, Move(unit, received.dossier.code, status, at=at)
            )
    return added


async def _seed_feedback(
    config: Config, database: Database, objects: ObjectStore, source: CalendarSource, now: datetime
) -> int:
    services = FeedbackServices(
        database,
        objects,
        source.clock,
        ZoneInfo(config.dossiers.timezone),
        replace(config.feedback, receiving_unit=FEEDBACK_OFFICE),
        config.spool_dir,
    )
    rng = random.Random(SEED + 2)
    added = 0
    for n in range(FEEDBACK):
        category = CATEGORIES[n % len(CATEGORIES)]
        received_at = (
            now - timedelta(days=DOSSIER_DAYS) + timedelta(hours=n * 44 + rng.randint(1, 6))
        )
        submission = read_submission(
            {
                "category": category,
                "title": f"Phản ánh số {n + 1} về {category.replace('-', ' ')}",
                "content": "Đề nghị cơ quan có thẩm quyền kiểm tra, xử lý.",
                "address": "Xã Kim Liên, huyện Nam Đàn, tỉnh Nghệ An",
                "name": rng.choice(NAMES),
                "phone": f"0987{n:06d}",
                "received_at": received_at.isoformat(),
            },
            channel="phone",
            now=now,
        )
        received = await submit(
            services, submission, officer=FEEDBACK_OFFICE, idempotency_key=f"{KEY_PREFIX}-pa-{n}"
        )
        if not received.created:
            continue
        added += 1
        code = received.feedback.code
        agency = received.feedback.agency
        plan = [
            (FEEDBACK_OFFICE, "classified", "", rng.uniform(2, 30)),
            (agency, "processing", "", rng.uniform(4, 48)),
            (agency, "answered", "Đã kiểm tra, xử lý xong.", rng.uniform(24, 24 * 18)),
        ]
        at = received_at
        answered = False
        for actor, status, note, hours in plan:
            at = at + timedelta(hours=hours)
            if at >= now:
                break
            async with database.transaction() as tx:
                current = await feedback_of(tx, code, actor)
                await apply_move(
                    tx, source.clock, current, FeedbackMove(actor, code, status, note), at
                )
            answered = status == "answered"
        if answered and rng.random() < 0.7:
            rating = "hai-long" if rng.random() < 0.8 else "khong-hai-long"
            await rate(database, code, received.token, rating)
    return added


async def seed_demo_traffic(config: Config, database: Database) -> TrafficReport:
    """Seed (or find again) the demo traffic; what this run added."""
    now = utcnow()
    source = await CalendarSource.load(database, WorkingHours.from_settings(config.dossiers))
    objects = await open_object_store(config, database=database)
    try:
        documents = await _Documents(config, database, objects).seed(now)
        dossiers = await _seed_dossiers(config, database, objects, source, now)
        feedback = await _seed_feedback(config, database, objects, source, now)
    finally:
        await close_object_store(objects)
    return TrafficReport(documents, dossiers, feedback)
