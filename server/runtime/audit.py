"""What the axis records in its audit log, how the chain is anchored, and how it is verified.

The chain itself lives in :mod:`storage.audit`. This module adds the domain's words (one small
``record_*`` function per kind of action, called inside the action's own transaction), the
RFC 3161 anchors (a timestamp token over the chain head, every ``audit.anchor_minutes`` and at
shutdown), and the full offline check behind ``lienthong audit verify``: the chain, each
anchor's certified head, and each token's signature against the TSA's trust roots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asn1crypto import cms, tsp, x509

from storage import audit as chain
from storage.audit import Anchor, AuditEntry, ChainProblem, ChainReport
from storage.db import Database, Tx
from storage.repos.deliveries import Delivery
from storage.repos.documents import Document
from storage.repos.signing_sessions import AttachmentVersion, SessionRow
from storage.repos.verification_reports import VerificationReportRow

log = logging.getLogger("lienthong.audit")

ADMIN = "admin"  # the actor of administration done on the server itself (CLI)
AXIS = "axis"  # the actor of what the axis does on its own (receipts, anchors)

_BUSINESS_ACTIONS = {0: "document.send", 1: "document.revoke", 2: "document.update"}


class AnchorError(Exception):
    """The chain head could not be timestamped (no TSA configured, TSA unreachable...)."""


# --- recording (each inside the transaction of the action it records) --------------------


async def record(
    tx: Tx,
    actor: str,
    action: str,
    objects: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in ``tx``: it commits or rolls back with the action."""
    return await chain.append(tx, actor, action, objects, details)


async def record_alone(
    database: Database,
    actor: str,
    action: str,
    objects: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in a transaction of its own: for an action that writes nothing else."""
    async with database.transaction() as tx:
        return await record(tx, actor, action, objects, details)


async def record_send(tx: Tx, doc: Document, recipients: Sequence[str]) -> AuditEntry:
    """A document (or a revoke/update/replace of one) was accepted and routed."""
    action = _BUSINESS_ACTIONS.get(doc.business_type, "document.replace")
    objects = [doc.id] if doc.related_id is None else [doc.id, doc.related_id]
    return await record(
        tx,
        doc.sender,
        action,
        objects,
        {"sha256": doc.sha256, "size": doc.size, "recipients": list(recipients)},
    )


async def record_status(
    tx: Tx, status_doc: Document, targets: Sequence[str], code: str
) -> AuditEntry:
    """A status message (mã trạng thái ``code``) about a document was accepted and routed."""
    objects = (
        [status_doc.id]
        if status_doc.related_id is None
        else [
            status_doc.id,
            status_doc.related_id,
        ]
    )
    return await record(
        tx,
        status_doc.sender,
        "status.send",
        objects,
        {"code": code, "recipients": list(targets), "sha256": status_doc.sha256},
    )


async def record_ack(tx: Tx, caller: str, delivery: Delivery | None) -> None:
    """A recipient acknowledged a delivery (nothing is recorded for a refused one)."""
    if delivery is not None:
        await record(
            tx, caller, "delivery.ack", [delivery.id, delivery.document_id], {"kind": delivery.kind}
        )


async def record_fetch(
    database: Database, caller: str, document_id: str, *, attachment: int | None = None
) -> None:
    """A party fetched a package (or one attachment): reads get a transaction of their own."""
    details: dict[str, Any] = {} if attachment is None else {"attachment": attachment}
    await record_alone(database, caller, "document.fetch", [document_id], details)


# Signing sessions and seals (issue 6). ``via`` is how a session was signed: "signature" (the
# two-step raw signature) or "upload" (the VGCA browser plugin's signed PDF).
_SIGNED_VIA = {"signature": "signature", "upload": "signature.upload"}


def _session_objects(row: SessionRow) -> list[str]:
    return [row.id] if row.document_id is None else [row.id, row.document_id]


async def record_session_created(tx: Tx, row: SessionRow) -> AuditEntry:
    """A signing session was prepared for an officer (in the transaction storing its row)."""
    details: dict[str, Any] = {
        "level": row.level,
        "profile": row.profile,
        "certificate_sha256": row.certificate_sha256,
        "subject": row.subject,
        "source_sha256": row.source_sha256,
        "expires_at": row.expires_at,
    }
    if row.attachment_index is not None:
        details["attachment"] = row.attachment_index
    return await record(
        tx, row.organ_id, "signature.session.create", _session_objects(row), details
    )


async def record_signature_accepted(tx: Tx, row: SessionRow, via: str) -> AuditEntry:
    """A session's signature (``via`` "signature" or "upload") was accepted and the signed PDF
    stored; ``row`` is the session as signed (in the transaction marking it signed)."""
    return await record(
        tx,
        row.organ_id,
        f"{_SIGNED_VIA[via]}.accept",
        _session_objects(row),
        {
            "certificate_sha256": row.certificate_sha256,
            "signed_sha256": row.signed_sha256,
            "signed_size": row.signed_size,
            "source_sha256": row.source_sha256,
        },
    )


async def record_signature_refused(
    database: Database, row: SessionRow, via: str, reason: str
) -> AuditEntry:
    """A session's signature or upload was refused: nothing else is written, so the entry gets
    a transaction of its own. Only refusals for a session the caller may use are recorded (an
    unknown session or a bad plugin JWT is not: anyone could fill the log with those)."""
    async with database.transaction() as tx:
        return await record(
            tx,
            row.organ_id,
            f"{_SIGNED_VIA[via]}.refuse",
            _session_objects(row),
            {"certificate_sha256": row.certificate_sha256, "reason": reason},
        )


async def record_seal(
    tx: Tx, version: AttachmentVersion, *, level: str, token_label: str
) -> AuditEntry:
    """The axis sealed an attachment with the agency's key (in the transaction storing the new
    attachment version)."""
    return await record(
        tx,
        version.organ_id,
        "signature.seal",
        [version.id, version.document_id],
        {
            "attachment": version.attachment_index,
            "sha256": version.sha256,
            "size": version.size,
            "base_sha256": version.base_sha256,
            "level": level,
            "token_label": token_label,
        },
    )


# Verification (issue 7). A report of a document's attachment is recorded with the transaction
# that names it (its ``verification_reports`` rows): "verification.arrival" for an attachment's
# first report (made by the axis, whoever's look triggered it), "verification.refresh" for a
# re-verification someone asked for that was stored. An upload verified for an agency writes
# no row, so its "verification.request" gets a transaction of its own. The public endpoint is
# not recorded: anyone could flood the chain through it.
VERIFICATION_ARRIVAL = "verification.arrival"
VERIFICATION_REFRESH = "verification.refresh"


async def record_verification_report(
    tx: Tx,
    actor: str,
    action: str,
    document_id: str,
    attachment: int,
    rows: Sequence[VerificationReportRow],
) -> AuditEntry:
    """A verification report of attachment ``attachment`` of a document was stored: ``rows``
    (the rows inserted, the verified bytes' digest first; all name the same report object).
    Objects: the document id, the attachment's SHA-256 and the report object's SHA-256."""
    first = rows[0]
    details: dict[str, Any] = {
        "attachment": attachment,
        "verdict": first.verdict,
        "report_size": first.report_size,
        "policy": first.policy,
    }
    if len(rows) > 1:  # also named under the edXML digest (an attachment the SDK zipped)
        details["keys"] = [r.attachment_sha256 for r in rows]
    return await record(
        tx, actor, action, [document_id, first.attachment_sha256, first.report_sha256], details
    )


async def record_verification_request(
    database: Database, actor: str, sha256: str, size: int, verdict: str
) -> AuditEntry:
    """An authenticated agency had an uploaded PDF verified (``POST /api/v1/verify``): only its
    digest, size and the verdict are recorded, never its content. Nothing else is written, so
    the entry gets a transaction of its own."""
    return await record_alone(
        database,
        actor,
        "verification.request",
        [sha256],
        {"sha256": sha256, "size": size, "verdict": verdict},
    )


async def record_object_alarm(
    database: Database, sha256: str, key: str, kind: str, ours: str | None, latest: str | None
) -> AuditEntry:
    """The latest S3 version of an object's key is not the axis's own (storage/objects/s3.py):
    recorded by the axis in a transaction of its own, once per key, kind and latest version
    in each process."""
    return await record_alone(
        database,
        AXIS,
        "object.integrity-alarm",
        [sha256],
        {"key": key, "kind": kind, "ours": ours, "latest": latest},
    )


# --- anchoring -----------------------------------------------------------------------------


def _tst_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    signed = token["content"]
    info = signed["encap_content_info"]["content"].parsed
    if not isinstance(info, tsp.TSTInfo):
        raise AnchorError("the TSA answered something that is not a timestamp token")
    return info


async def anchor_head(database: Database, timestamper: Any, tsa_url: str | None) -> Anchor | None:
    """Timestamp the current chain head with ``timestamper`` (a pyHanko ``TimeStamper``) and
    store the token; None when the log is empty or its head is anchored already.

    The TSA is asked outside any transaction (a network call must not hold the writer); an
    entry appended meanwhile is simply covered by the next anchor.
    """
    async with database.reader() as tx:
        repo = chain.AuditRepo(tx)
        head = await repo.head()
        latest = await repo.latest_anchor()
    if head is None or (latest is not None and latest.seq >= head[0]):
        return None
    seq, head_hash = head
    try:
        token = await timestamper.async_timestamp(bytes.fromhex(head_hash), "sha256")
    except Exception as exc:  # pyHanko raises assorted errors for an unreachable/bad TSA
        raise AnchorError(f"the TSA did not timestamp the audit head: {exc}") from exc
    info = _tst_info(token)
    if bytes(info["message_imprint"]["hashed_message"].native) != bytes.fromhex(head_hash):
        raise AnchorError("the TSA timestamped another value than the audit head")
    gen_time: datetime = info["gen_time"].native
    async with database.transaction() as tx:
        anchor = await chain.AuditRepo(tx).add_anchor(
            seq, head_hash, token.dump(), gen_time, tsa_url
        )
    log.info("audit head anchored", extra={"seq": seq, "gen_time": gen_time.isoformat()})
    return anchor


async def anchor_loop(
    database: Database, timestamper: Any, tsa_url: str | None, every_seconds: float
) -> None:
    """Anchor the head every ``every_seconds`` until cancelled; failures are logged, retried
    at the next tick (a TSA outage must not stop the axis)."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await anchor_head(database, timestamper, tsa_url)
        except AnchorError as exc:
            log.warning("audit anchor failed", extra={"error": str(exc)})


# --- verification --------------------------------------------------------------------------


@dataclass
class AuditVerdict:
    """The chain report plus the check of every anchor's timestamp token."""

    report: ChainReport
    anchors: list[Anchor] = field(default_factory=list)
    tokens_checked: int = 0
    last_anchor_time: datetime | None = None

    @property
    def ok(self) -> bool:
        """True when neither the chain nor any anchor shows a problem."""
        return self.report.ok

    def summary(self) -> str:
        """One line: the verdict with the head and the anchors."""
        r = self.report
        if not self.ok:
            return (
                f"audit log TAMPERED: {len(r.problems)} problem(s) in {r.entries} entries "
                f"(first: {r.problems[0]})"
            )
        head = "empty" if r.head_seq is None else f"head seq {r.head_seq}, hash {r.head_hash}"
        anchored = (
            f"{self.tokens_checked} anchor(s) verified, last timestamped "
            f"{self.last_anchor_time.isoformat()}"
            if self.last_anchor_time is not None
            else "no anchors yet"
        )
        return f"audit log OK: {r.entries} entries ({head}); {anchored}"


def offline_validation_context(
    trust_roots: Sequence[x509.Certificate], crls: Sequence[bytes] = ()
) -> Any:
    """An offline context: never fetches; hard-fail on revocation when CRLs are given."""
    from pyhanko_certvalidator import ValidationContext

    if crls:
        return ValidationContext(
            trust_roots=list(trust_roots),
            crls=list(crls),
            ocsps=[],
            allow_fetching=False,
            revocation_mode="hard-fail",
        )
    return ValidationContext(
        trust_roots=list(trust_roots), allow_fetching=False, revocation_mode="soft-fail"
    )


async def check_token(
    token_der: bytes, imprint: bytes, trust_roots: Sequence[x509.Certificate], context: Any = None
) -> tuple[str | None, datetime | None]:
    """Check an RFC 3161 token: its message imprint is ``imprint`` (SHA-256) and its signature
    is intact and chains to ``trust_roots``. Returns ``(problem or None, the TSA's time)``."""
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus

    try:
        token = cms.ContentInfo.load(token_der)
        info = _tst_info(token)
        gen_time: datetime = info["gen_time"].native
        algorithm = info["message_imprint"]["hash_algorithm"]["algorithm"].native
        signed = token["content"]
    except (ValueError, TypeError, KeyError, AnchorError) as exc:
        return f"the timestamp token cannot be read ({exc})", None
    if algorithm != "sha256":
        return f"the timestamp token imprint uses {algorithm}, not sha256", gen_time

    def expected(algo: str) -> bytes:
        return imprint

    try:
        kwargs = await validate_tst_signed_data(
            signed, context or offline_validation_context(trust_roots), expected
        )
    except (SignatureValidationError, ValueError) as exc:
        return f"the timestamp token does not validate ({exc})", gen_time
    status = TimestampSignatureStatus(**kwargs)
    if not status.intact:
        return "the timestamp token does not certify this value (message imprint differs)", gen_time
    if not status.valid:
        return "the timestamp token's signature is invalid", gen_time
    if not status.trusted:
        return "the TSA certificate does not chain to the given trust roots", gen_time
    return None, gen_time


async def verify_audit(
    database: Database,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[bytes] = (),
) -> AuditVerdict:
    """Check the chain, each anchor's head against the chain, and each anchor's token against
    ``trust_roots`` (offline; CRL files make revocation checks hard-fail)."""
    async with database.reader() as tx:
        report, anchors = await chain.verify_log(tx)
    verdict = AuditVerdict(report, anchors)
    context = offline_validation_context(trust_roots, crls)
    for anchor in anchors:
        if not trust_roots:
            report.problems.append(
                ChainProblem(anchor.seq, "anchor", "timestamp token not checked: no trust root")
            )
            continue
        problem, gen_time = await check_token(
            anchor.token_der, bytes.fromhex(anchor.head_hash), trust_roots, context
        )
        if problem is not None:
            report.problems.append(
                ChainProblem(anchor.seq, "anchor", f"anchor {anchor.id}: {problem}")
            )
            continue
        verdict.tokens_checked += 1
        verdict.last_anchor_time = gen_time
    report.problems.sort(key=lambda p: (p.seq, p.kind))
    return verdict
