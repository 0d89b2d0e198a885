"""Business rules of edXML packages: :func:`validate` lists what is wrong, it never raises.

Errors make a package unacceptable (no sender, no recipient, malformed organisation ids, a date
in the future, a manifest that does not match the attachments...). Warnings point at things
third-party validators refuse or that look like mistakes but that real senders do (length
limits, TraceHeaders with OrganId ``null``, test organisation ids).

Paths name the element the way it is written, 1-based for repeated elements:
``MessageHeader/To[2]/OrganId``, ``TraceHeaderList/Bussiness/DocumentId``,
``AttachmentEncoded/Attachment[1]``. Messages are plain English sentences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

from edxml.codes import BusinessDocType
from edxml.errors import InvalidOrganIdError
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    Problem,
    ResponseFor,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from edxml.organid import OrganId

ERROR = "error"
WARNING = "warning"

# Length limits used by third-party validators (EDXML.md): reported as warnings.
ORGANIZATION_LIMITS = {
    "OrganizationInCharge": 200,
    "OrganName": 200,
    "OrganAdd": 250,
    "Email": 100,
    "Telephone": 20,
    "Fax": 20,
}
LIMITS = {
    "CodeNumber": 11,
    "CodeNotation": 30,
    "Place": 50,
    "TypeName": 100,
    "Subject": 500,
    "Content": 500,
    "Competence": 100,
    "Position": 100,
    "FullName": 50,
    "ToPlace": 150,
    "SphereOfPromulgation": 100,
    "TyperNotation": 10,
    "Appendix": 250,
}
# DocumentId by convention: OrganId,yyyy/MM/dd,Number/Notation (UUIDs are also seen).
_CONVENTIONAL_ID = re.compile(r"([^,]*),([0-9]{4})/([0-9]{2})/([0-9]{2}),(.*)")
# Placeholders some axes write instead of a TraceHeader's OrganId.
_PLACEHOLDER_IDS = frozenset({"null", "none", "undefined"})


def validate(obj: Envelope | StatusMessage, *, today: date | None = None) -> list[Problem]:
    """Every problem found in a package or status message, errors and warnings, in document order.

    ``today`` (default: today in Vietnam, +07:00) is the reference for "not in the future".
    An empty list means the package is fine; ``[p for p in problems if p.is_error]`` are the
    problems that make it unacceptable.
    """
    if today is None:
        today = datetime.now(VN_TZ).date()
    checker = _Checker(today)
    if isinstance(obj, Envelope):
        checker.envelope(obj)
    elif isinstance(obj, StatusMessage):
        checker.status(obj)
    else:
        raise TypeError(f"cannot validate {type(obj).__name__}: expected Envelope or StatusMessage")
    return checker.problems


def content_id_key(content_id: str) -> str:
    """The content id without ``cid:`` and surrounding spaces: how manifest and attachment match."""
    bare = content_id.strip()
    if bare[:4].lower() == "cid:":
        bare = bare[4:]
    return bare.strip().strip("<>").strip()


class _Checker:
    def __init__(self, today: date) -> None:
        self.today = today
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, ERROR))

    def warning(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, WARNING))

    # ---------------------------------------------------------------- small checks

    def required(self, path: str, value: str | None, what: str) -> bool:
        if value is None or not value.strip():
            self.error(path, f"{what} is missing")
            return False
        return True

    def length(self, path: str, value: str | None, limit: int) -> None:
        if value is not None and len(value) > limit:
            self.warning(
                path, f"is {len(value)} characters long; the usual limit is {limit} characters"
            )

    def organ_id(self, path: str, value: str | None, *, required: bool = True) -> None:
        if value is None or not value.strip():
            if required:
                self.error(path, "the organisation id (mã định danh) is missing")
            return
        try:
            parsed = OrganId.parse(value)
        except InvalidOrganIdError as exc:
            self.error(path, exc.message)
            return
        if parsed.is_test:
            self.warning(
                path,
                f"{value} is a test organisation id; it is accepted only when the directory "
                "knows it",
            )

    def document_id(self, path: str, value: str | None) -> None:
        """Warn about a DocumentId in the conventional form whose parts cannot be right."""
        match = _CONVENTIONAL_ID.fullmatch((value or "").strip())
        if match is None:
            return  # UUIDs and other forms are accepted as they are
        organ, year, month, day, _ = match.groups()
        try:
            OrganId.parse(organ)
        except InvalidOrganIdError:
            self.warning(path, f"the DocumentId starts with {organ!r}, not an organisation id")
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            self.warning(path, f"the date {year}/{month}/{day} in the DocumentId does not exist")

    def not_future(self, path: str, value: date | None, what: str) -> None:
        if value is not None and value > self.today:
            self.error(path, f"{what} {value.isoformat()} is in the future (today is {self.today})")

    def not_negative(self, path: str, value: int | None) -> None:
        if value is not None and value < 0:
            self.error(path, f"must not be negative (found {value})")

    def one_of(self, path: str, value: int | None, allowed: Iterable[int], what: str) -> None:
        allowed = tuple(allowed)
        if value is not None and int(value) not in allowed:
            choices = ", ".join(str(a) for a in allowed)
            self.warning(path, f"{what} {value} is not one of the known values {choices}")

    # ---------------------------------------------------------------- parts

    def organization(self, path: str, org: Organization) -> None:
        self.organ_id(f"{path}/OrganId", org.organ_id)
        for name, limit in ORGANIZATION_LIMITS.items():
            self.length(f"{path}/{name}", _organization_field(org, name), limit)

    def response_for(self, path: str, rf: ResponseFor, *, document_required: bool) -> None:
        if rf.organ_id is not None and rf.organ_id.strip():
            self.organ_id(f"{path}/OrganId", rf.organ_id)
        elif document_required:
            self.error(
                f"{path}/OrganId",
                "the organisation id of the document concerned is missing",
            )
        if rf.document_id is None or not rf.document_id.strip():
            if document_required:
                self.error(
                    f"{path}/DocumentId",
                    "the DocumentId of the document this status is about is missing",
                )
            else:
                self.warning(
                    f"{path}/DocumentId",
                    "a ResponseFor without DocumentId does not say which document is answered",
                )
        self.document_id(f"{path}/DocumentId", rf.document_id)
        self.not_future(f"{path}/PromulgationDate", rf.promulgation_date, "the date")

    def staff_info(self, path: str, staff: StaffInfo | None) -> None:
        if staff is None:
            return
        self.length(f"{path}/Email", staff.email, 100)

    def trace_headers(self, traces: tuple[TraceHeader, ...]) -> None:
        for i, trace in enumerate(traces, start=1):
            path = f"TraceHeaderList/TraceHeader[{i}]"
            value = trace.organ_id
            if value is None or not value.strip():
                self.warning(f"{path}/OrganId", "this trace entry does not say who added it")
            elif value.strip().lower() in _PLACEHOLDER_IDS:
                self.warning(
                    f"{path}/OrganId", f"this trace entry has the placeholder {value!r} as its id"
                )
            else:
                try:
                    OrganId.parse(value)
                except InvalidOrganIdError as exc:
                    # Trace entries are written by axes we do not control: note, do not refuse.
                    self.warning(f"{path}/OrganId", exc.message)
            if trace.timestamp is None:
                self.warning(f"{path}/Timestamp", "this trace entry has no time")

    def business(self, b: Business, header: MessageHeader | None) -> None:
        path = "TraceHeaderList/Bussiness"
        has_id = b.document_id is not None and bool(b.document_id.strip())
        kind = b.doc_type
        if kind is BusinessDocType.REVOKE:
            answered = header is not None and any(
                rf.document_id and rf.document_id.strip() for rf in header.response_for
            )
            if not (has_id or answered):
                self.error(
                    f"{path}/DocumentId",
                    "a revocation (thu hồi) must name the document it revokes, in "
                    "Bussiness/DocumentId or ResponseFor/DocumentId",
                )
        elif kind is BusinessDocType.UPDATE:
            if not has_id:
                self.error(
                    f"{path}/DocumentId",
                    "an update (cập nhật) must name the document it updates in "
                    "Bussiness/DocumentId",
                )
        elif kind is BusinessDocType.REPLACE:
            if not (has_id or b.replacements):
                self.error(
                    f"{path}/ReplacementInfoList",
                    "a replacement (thay thế) must name the document it replaces, in "
                    "ReplacementInfo/DocumentId or Bussiness/DocumentId",
                )
        if kind is not BusinessDocType.REPLACE and b.replacements:
            self.warning(
                f"{path}/ReplacementInfoList",
                f"replacement details in a package of type {int(kind)} ({kind.label}) are ignored",
            )
        self.document_id(f"{path}/DocumentId", b.document_id)
        self.one_of(f"{path}/Paper", b.paper, (0, 1), "Paper")
        if b.document_info is not None:
            info_path = f"{path}/BussinessDocumentInfo"
            self.one_of(
                f"{info_path}/DocumentInfo", b.document_info.document_info, (0, 1), "DocumentInfo"
            )
            self.one_of(
                f"{info_path}/DocumentReceiver",
                b.document_info.document_receiver,
                (0, 1),
                "DocumentReceiver",
            )
            for i, receiver in enumerate(b.document_info.receivers, start=1):
                self.organ_id(f"{info_path}/ReceiverList/Receiver[{i}]/OrganId", receiver.organ_id)
        for i, replacement in enumerate(b.replacements, start=1):
            rpath = f"{path}/ReplacementInfoList/ReplacementInfo[{i}]"
            if self.required(
                f"{rpath}/DocumentId", replacement.document_id, "the replaced document's id"
            ):
                self.document_id(f"{rpath}/DocumentId", replacement.document_id)
            if not replacement.organ_ids:
                self.warning(
                    f"{rpath}/OrganIdList", "no organisation is named as holding this document"
                )
            for j, organ in enumerate(replacement.organ_ids, start=1):
                self.organ_id(f"{rpath}/OrganIdList/OrganId[{j}]", organ)
        self.staff_info(f"{path}/StaffInfo", b.staff_info)

    def attachments(
        self, manifest: tuple[ManifestReference, ...], attachments: tuple[Attachment, ...]
    ) -> None:
        referenced: dict[str, int] = {}
        for i, ref in enumerate(manifest, start=1):
            path = f"edXMLManifest/Reference[{i}]"
            if not self.required(f"{path}/ContentId", ref.content_id, "the ContentId"):
                continue
            key = content_id_key(ref.content_id)
            if key in referenced:
                self.error(
                    f"{path}/ContentId",
                    f"the manifest lists {ref.content_id} twice "
                    f"(also Reference[{referenced[key]}])",
                )
            else:
                referenced[key] = i
        attached: dict[str, int] = {}
        for i, att in enumerate(attachments, start=1):
            path = f"AttachmentEncoded/Attachment[{i}]"
            if not self.required(f"{path}/ContentId", att.content_id, "the ContentId"):
                continue
            key = content_id_key(att.content_id)
            if key in attached:
                self.error(
                    f"{path}/ContentId",
                    f"two attachments have the ContentId {att.content_id} "
                    f"(also Attachment[{attached[key]}])",
                )
                continue
            attached[key] = i
            if key not in referenced:
                self.error(path, f"attachment {att.content_id} is not listed in the manifest")
            if att.name is None or not att.name.strip():
                self.warning(f"{path}/AttachmentName", "the attachment has no file name")
        for key, i in referenced.items():
            if key not in attached:
                self.error(
                    f"edXMLManifest/Reference[{i}]",
                    f"the manifest lists cid:{key} but no attachment has that ContentId",
                )

    # ---------------------------------------------------------------- packages

    def envelope(self, env: Envelope) -> None:
        h = env.header
        self.organization("MessageHeader/From", h.from_)
        if not h.to:
            self.error("MessageHeader/To", "the document has no recipient (To)")
        seen: dict[str, int] = {}
        for i, org in enumerate(h.to, start=1):
            path = f"MessageHeader/To[{i}]"
            self.organization(path, org)
            key = (org.organ_id or "").strip()
            if key and key in seen:
                self.error(f"{path}/OrganId", f"{key} is already a recipient (To[{seen[key]}])")
            elif key:
                seen[key] = i
        if self.required("MessageHeader/DocumentId", h.document_id, "the DocumentId"):
            self.document_id("MessageHeader/DocumentId", h.document_id)
        if h.code is not None:
            self.length("MessageHeader/Code/CodeNumber", h.code.number, LIMITS["CodeNumber"])
            self.length("MessageHeader/Code/CodeNotation", h.code.notation, LIMITS["CodeNotation"])
        if h.promulgation_info is not None:
            pi = h.promulgation_info
            self.length("MessageHeader/PromulgationInfo/Place", pi.place, LIMITS["Place"])
            self.not_future(
                "MessageHeader/PromulgationInfo/PromulgationDate", pi.date, "the promulgation date"
            )
        if h.document_type is not None:
            dt = h.document_type
            self.one_of("MessageHeader/DocumentType/Type", dt.type, (1, 2), "Type")
            self.length("MessageHeader/DocumentType/TypeName", dt.type_name, LIMITS["TypeName"])
        if self.required("MessageHeader/Subject", h.subject, "the subject (trích yếu)"):
            self.length("MessageHeader/Subject", h.subject, LIMITS["Subject"])
        self.length("MessageHeader/Content", h.content, LIMITS["Content"])
        if h.signer_info is not None:
            si = h.signer_info
            self.length("MessageHeader/SignerInfo/Competence", si.competence, LIMITS["Competence"])
            self.length("MessageHeader/SignerInfo/Position", si.position, LIMITS["Position"])
            self.length("MessageHeader/SignerInfo/FullName", si.full_name, LIMITS["FullName"])
        for i, place in enumerate(h.to_places, start=1):
            self.length(f"MessageHeader/ToPlaces/Place[{i}]", place, LIMITS["ToPlace"])
        if h.other_info is not None:
            self.other_info(h)
        for i, rf in enumerate(h.response_for, start=1):
            self.response_for(f"MessageHeader/ResponseFor[{i}]", rf, document_required=False)
        self.one_of("MessageHeader/SteeringType", h.steering_type, (0, 1, 2), "SteeringType")
        self.trace_headers(env.trace_headers)
        if env.business is not None:
            self.business(env.business, h)
        self.attachments(env.manifest, env.attachments)

    def other_info(self, h: MessageHeader) -> None:
        o = h.other_info
        assert o is not None
        path = "MessageHeader/OtherInfo"
        if o.priority is not None and int(o.priority) not in range(5):
            self.error(
                f"{path}/Priority",
                f"priority (độ khẩn) {int(o.priority)} is not between 0 (normal) and 4 "
                "(timed express)",
            )
        self.length(
            f"{path}/SphereOfPromulgation",
            o.sphere_of_promulgation,
            LIMITS["SphereOfPromulgation"],
        )
        self.length(f"{path}/TyperNotation", o.typer_notation, LIMITS["TyperNotation"])
        self.not_negative(f"{path}/PromulgationAmount", o.promulgation_amount)
        self.not_negative(f"{path}/PageAmount", o.page_amount)
        for i, appendix in enumerate(o.appendixes, start=1):
            self.length(f"{path}/Appendixes/Appendix[{i}]", appendix, LIMITS["Appendix"])

    def status(self, s: StatusMessage) -> None:
        self.organization("MessageHeader/From", s.from_)
        self.response_for("MessageHeader/ResponseFor", s.response_for, document_required=True)
        self.staff_info("MessageHeader/StaffInfo", s.staff_info)
        if s.timestamp is None:
            self.warning("MessageHeader/Timestamp", "the status has no time")
        self.trace_headers(s.trace_headers)
        if s.business is not None:
            self.business(s.business, None)


def _organization_field(org: Organization, name: str) -> str | None:
    return {
        "OrganizationInCharge": org.organization_in_charge,
        "OrganName": org.organ_name,
        "OrganAdd": org.organ_add,
        "Email": org.email,
        "Telephone": org.telephone,
        "Fax": org.fax,
    }[name]
