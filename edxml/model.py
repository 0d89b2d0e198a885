"""Frozen dataclasses for the whole edXML format (QCVN 102:2016, Thông tư 01/2022).

Field names are the English snake_case of the XML element names; the Vietnamese term sits in a
comment beside each class. Every optional element is ``None`` (or an empty tuple) when absent,
so that ``serialize`` can tell "absent" from "empty".

Times: edXML carries local Vietnamese time without an offset; the reader returns aware
datetimes in +07:00 (:data:`VN_TZ`) and the writer converts any aware datetime to +07:00.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import BinaryIO

from edxml.codes import BusinessDocType, Priority, StatusCode

NAMESPACE = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NAMESPACE = "http://www.w3.org/2000/09/xmldsig#"
VN_TZ = timezone(timedelta(hours=7), "ICT")


@dataclass(frozen=True, slots=True)
class Organization:
    """Cơ quan, tổ chức — a sender (From) or recipient (To)."""

    organ_id: str
    organization_in_charge: str | None = None
    organ_name: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class Code:
    """Số, ký hiệu văn bản — number and notation (e.g. 7816 / VPCP-TTĐT)."""

    number: str | None = None
    notation: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.number, self.notation) if p)


@dataclass(frozen=True, slots=True)
class PromulgationInfo:
    """Địa danh và ngày ban hành — place and date of promulgation."""

    place: str | None = None
    date: date | None = None


@dataclass(frozen=True, slots=True)
class DocumentType:
    """Loại văn bản — document type (Công văn, Quyết định...)."""

    type: int | None = None
    type_detail: int | None = None
    type_name: str | None = None


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """Người ký — the signer's competence (TM., KT....), position and full name."""

    competence: str | None = None
    position: str | None = None
    full_name: str | None = None


@dataclass(frozen=True, slots=True)
class OtherInfo:
    """Thông tin khác — priority, sphere, typist, copies, pages, appendixes."""

    priority: Priority | None = None
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseFor:
    """Văn bản được phúc đáp — the document this one answers (or a status concerns)."""

    organ_id: str | None = None
    code: str | None = None
    promulgation_date: date | None = None
    document_id: str | None = None


@dataclass(frozen=True, slots=True)
class StaffInfo:
    """Cán bộ xử lý — the clerk handling the package."""

    department: str | None = None
    staff: str | None = None
    mobile: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """Vết chuyển — one hop of the package (agency system, provincial or national axis)."""

    organ_id: str | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Receiver:
    """One receiver of an update (BussinessDocumentInfo/ReceiverList/Receiver)."""

    organ_id: str
    receiver_type: int | None = None


@dataclass(frozen=True, slots=True)
class BusinessDocumentInfo:
    """What an update (cập nhật) changes: the document info, its receivers, or both."""

    document_info: int | None = None
    document_receiver: int | None = None
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplacementInfo:
    """A document replaced (thay thế) and the organisations that had received it."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Business:
    """Nghiệp vụ (edXML 'Bussiness') — new, revoke, update or replace, with its reason."""

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str | None = None
    document_id: str | None = None
    paper: int | None = None
    staff_info: StaffInfo | None = None
    document_info: BusinessDocumentInfo | None = None
    replacements: tuple[ReplacementInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """Thông tin văn bản — the header of a document package."""

    from_: Organization
    to: tuple[Organization, ...]
    document_id: str | None = None
    subject: str | None = None  # trích yếu
    code: Code | None = None
    promulgation_info: PromulgationInfo | None = None
    document_type: DocumentType | None = None
    content: str | None = None
    signer_info: SignerInfo | None = None
    due_date: date | None = None  # hạn trả lời
    to_places: tuple[str, ...] = ()  # nơi nhận
    other_info: OtherInfo | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: int | None = None
    response_for_task: str | None = None  # extension: ResponseForTask/TaskCode
    application_type: str | None = None  # extension, e.g. MCDT_DT from one-stop-shop software


@dataclass(frozen=True, slots=True)
class ManifestReference:
    """One entry of edXMLManifest: what the envelope says about an attachment."""

    content_id: str
    content_type: str | None = None
    description: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Attachment:
    """Tệp đính kèm — one attachment.

    The decoded bytes are in ``data`` for packages parsed into memory. When the caller gave the
    reader a sink, ``data`` is ``None`` and ``size``/``sha256`` describe what went to the sink.
    To write a large attachment without holding it, give ``opener``: a callable that returns a
    fresh binary stream of the decoded content each time it is called.
    """

    content_id: str
    name: str | None = None
    description: str | None = None
    content_type: str | None = None
    data: bytes | None = None
    size: int | None = None
    sha256: str | None = None
    opener: Callable[[], BinaryIO] | None = field(default=None, repr=False)

    def open(self) -> BinaryIO:
        """A binary stream of the decoded content (still zipped if the sender zipped it)."""
        if self.opener is not None:
            return self.opener()
        if self.data is not None:
            return io.BytesIO(self.data)
        raise ValueError(
            f"attachment {self.content_id} was streamed to a sink; its bytes are there"
        )

    @property
    def is_zipped(self) -> bool:
        """True when the national SDK zipped the file before encoding it."""
        return (self.content_type or "").split(";")[0].strip().lower() in {
            "application/zip",
            "application/x-zip-compressed",
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attachment):
            return NotImplemented
        return (
            self.content_id,
            self.name,
            self.description,
            self.content_type,
            self.data,
        ) == (other.content_id, other.name, other.description, other.content_type, other.data)

    def __hash__(self) -> int:
        return hash((self.content_id, self.name, self.content_type))


@dataclass(frozen=True, slots=True)
class Envelope:
    """A document package (gói tin văn bản): header, trace, business, manifest and attachments.

    ``signature`` is the XML-DSig ``Signature`` element exactly as found (bytes), or ``None``.
    """

    header: MessageHeader
    trace_headers: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    manifest: tuple[ManifestReference, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """Thông điệp trạng thái — a status report about a document (see :class:`StatusCode`)."""

    from_: Organization
    response_for: ResponseFor
    status_code: StatusCode
    staff_info: StaffInfo | None = None
    description: str | None = None
    timestamp: datetime | None = None
    trace_headers: tuple[TraceHeader, ...] = ()
    business: Business | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of :func:`edxml.validate`: where, what, and whether it is an error."""

    path: str
    message: str
    severity: str = "error"  # "error" or "warning"

    @property
    def is_error(self) -> bool:
        """True for problems that make the package unacceptable."""
        return self.severity == "error"
