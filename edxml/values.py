"""Typed values: text of the small tree read into model values, by the reader's leniency.

Owns the date and time parsers (:func:`parse_date`, :func:`parse_timestamp`) and
:class:`_Builder`, which maps the small tree (:mod:`edxml.smalltree`) built by either way of
reading to the model: whole numbers, booleans, dates and times, codes (StatusCode, Priority,
BussinessDocType) and organisations with their OrganId. An essential value that cannot be read
raises :class:`InvalidValueError` with its path; any other is dropped (``None``) and reported
to ``on_warning`` (see :mod:`edxml.reader`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import TypeAlias

from edxml.codes import BusinessDocType, Priority, StatusCode
from edxml.errors import InvalidValueError, NotEdxmlError
from edxml.model import (
    VN_TZ,
    Attachment,
    Business,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Problem,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from edxml.smalltree import _cid_key, _find, _kid, _kid_text, _kids, _Node

WarningHandler: TypeAlias = Callable[[Problem], None]


_DATE_YMD = r"(?P<y>\d{4})[/.-](?P<m>\d{1,2})[/.-](?P<d>\d{1,2})"
_DATE_DMY = r"(?P<d2>\d{1,2})[/.-](?P<m2>\d{1,2})[/.-](?P<y2>\d{4})"
_TIME = r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d+)?)?)?"
_ZONE = r"\s*(?P<z>Z|[+-]\d{2}:?\d{2})?"
_WHEN = re.compile(rf"^(?:{_DATE_YMD}|{_DATE_DMY}){_TIME}{_ZONE}$")


def parse_date(text: str) -> date | None:
    """A date in ``yyyy/MM/dd``, ``dd/MM/yyyy`` or ``yyyy-MM-dd`` (time part ignored)."""
    parsed = _parse_when(text)
    return parsed[0] if parsed else None


def parse_timestamp(text: str) -> datetime | None:
    """A time ``yyyy/MM/dd HH:mm:ss`` or ``dd/MM/yyyy HH:mm:ss`` (or ISO) in +07:00.

    edXML times carry no offset and are Vietnamese local time; an explicit offset (ISO form)
    is honoured and converted to +07:00. A bare date means midnight.
    """
    parsed = _parse_when(text)
    if parsed is None:
        return None
    day, clock, zone = parsed
    moment = datetime.combine(day, clock or time(0, 0), tzinfo=zone or VN_TZ)
    return moment.astimezone(VN_TZ)


def _parse_when(text: str) -> tuple[date, time | None, tzinfo | None] | None:
    match = _WHEN.match(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    year, month, day = (
        (g["y"], g["m"], g["d"]) if g["y"] is not None else (g["y2"], g["m2"], g["d2"])
    )
    try:
        day_value = date(int(year), int(month), int(day))
        clock = None
        if g["H"] is not None:
            clock = time(int(g["H"]), int(g["M"]), int(g["S"] or 0))
    except ValueError:
        return None
    zone: tzinfo | None = None
    if g["z"]:
        z = g["z"]
        if z == "Z":
            zone = UTC
        else:
            sign = -1 if z[0] == "-" else 1
            digits = z[1:].replace(":", "")
            zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return day_value, clock, zone


_TRUE = {"true", "1", "yes", "có"}
# Empty values compared against, made once.
_BLANK_RESPONSEFOR = ResponseFor()
_BLANK_STAFFINFO = StaffInfo()
_BLANK_CODE = Code()
_BLANK_PROMULGATIONINFO = PromulgationInfo()
_BLANK_DOCUMENTTYPE = DocumentType()
_BLANK_SIGNERINFO = SignerInfo()
_BLANK_OTHERINFO = OtherInfo()
_FALSE = {"false", "0", "no", "không"}


class _Builder:
    """Maps the small tree to the model, applying the leniency policy of :mod:`edxml.reader`."""

    def __init__(self, on_warning: WarningHandler | None) -> None:
        self.on_warning = on_warning

    def warn(self, path: str, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(Problem(path=path, message=message, severity="warning"))

    # typed values

    def int_(self, node: _Node | None, name: str, path: str) -> int | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            self.warn(f"{path}/{name}", f"{text!r} is not a whole number; ignored")
            return None

    def bool_(self, node: _Node | None, name: str, path: str) -> bool | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        self.warn(f"{path}/{name}", f"{text!r} is not true/false; ignored")
        return None

    def date_(self, node: _Node | None, name: str, path: str) -> date | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        value = parse_date(text)
        if value is None:
            self.warn(f"{path}/{name}", f"{text!r} is not a date (yyyy/MM/dd); ignored")
        return value

    def timestamp(self, node: _Node | None, name: str, path: str) -> datetime | None:
        text = _kid_text(node, name)
        if text is None:
            return None
        value = parse_timestamp(text)
        if value is None:
            self.warn(f"{path}/{name}", f"{text!r} is not a time (yyyy/MM/dd HH:mm:ss); ignored")
        return value

    # the document

    def build(self, root: _Node, signature: bytes | None) -> Envelope | StatusMessage:
        """The model for the small tree whose root is ``root``."""
        envelope = _kid(root, "edXMLEnvelope") or _find(root, "edXMLEnvelope") or root
        header_block = _find(envelope, "edXMLHeader")
        header = _find(header_block or envelope, "MessageHeader")
        if header is None:
            raise NotEdxmlError("no MessageHeader: this is not an edXML package or status")
        trace_list = _find(header_block or envelope, "TraceHeaderList")
        traces = self.trace_headers(trace_list)
        business = self.business(
            _kid(trace_list, "Bussiness", "Business")
            or _kid(header_block, "Bussiness", "Business")
            or _kid(header, "Bussiness", "Business")
        )
        status_text = _kid_text(header, "StatusCode")
        if status_text is not None and not _kids(header, "To"):
            return StatusMessage(
                from_=self.organization(_kid(header, "From"), "MessageHeader/From"),
                response_for=self.response_for(_kid(header, "ResponseFor"), "ResponseFor")
                or ResponseFor(),
                status_code=self.status_code(status_text),
                staff_info=self.staff_info(_kid(header, "StaffInfo")),
                description=_kid_text(header, "Description"),
                timestamp=self.timestamp(header, "Timestamp", "MessageHeader"),
                trace_headers=traces,
                business=business,
                signature=signature,
            )
        manifest = self.manifest(_find(envelope, "edXMLManifest"))
        return Envelope(
            header=self.message_header(header),
            trace_headers=traces,
            business=business,
            manifest=manifest,
            attachments=self.attachments(root, manifest),
            signature=signature,
        )

    def status_code(self, text: str) -> StatusCode:
        value = text.zfill(2) if text.isdigit() else text
        try:
            return StatusCode(value)
        except ValueError:
            known = ", ".join(c.value for c in StatusCode)
            raise InvalidValueError(
                f"unknown status code {text!r} (known: {known})", path="MessageHeader/StatusCode"
            ) from None

    def organization(self, node: _Node | None, path: str) -> Organization:
        if node is None:
            raise InvalidValueError("missing", path=path)
        # Some senders wrap From in another From: read the innermost, fall back outward.
        chain = [node]
        while (inner := _kid(chain[-1], node.tag)) is not None:
            chain.append(inner)
        if len(chain) == 1:  # the usual case: one level, its texts in one dict
            field = node.first_texts().get
        else:
            merged: dict[str, str | None] = {}
            for level in chain:  # outermost first: inner levels override where they have text
                merged.update((k, v) for k, v in level.first_texts().items() if v is not None)
            field = merged.get
        organ_id = field("OrganId")
        if organ_id is None:
            raise InvalidValueError(
                "missing organisation id (mã định danh)", path=f"{path}/OrganId"
            )
        return Organization(
            organ_id=organ_id,
            organization_in_charge=field("OrganizationInCharge"),
            organ_name=field("OrganName"),
            organ_add=field("OrganAdd"),
            email=field("Email"),
            telephone=field("Telephone"),
            fax=field("Fax"),
            website=field("Website"),
        )

    def response_for(self, node: _Node | None, path: str) -> ResponseFor | None:
        if node is None:
            return None
        value = ResponseFor(
            organ_id=_kid_text(node, "OrganId"),
            code=_kid_text(node, "Code"),
            promulgation_date=self.date_(node, "PromulgationDate", path),
            document_id=_kid_text(node, "DocumentId"),
        )
        return None if value == _BLANK_RESPONSEFOR else value

    def staff_info(self, node: _Node | None) -> StaffInfo | None:
        if node is None:
            return None
        value = StaffInfo(
            department=_kid_text(node, "Department"),
            staff=_kid_text(node, "Staff"),
            mobile=_kid_text(node, "Mobile"),
            email=_kid_text(node, "Email"),
        )
        return None if value == _BLANK_STAFFINFO else value

    def message_header(self, node: _Node) -> MessageHeader:
        p = "MessageHeader"
        to_nodes = _kids(node, "To")
        to = tuple(
            self.organization(n, f"{p}/To[{i}]" if len(to_nodes) > 1 else f"{p}/To")
            for i, n in enumerate(to_nodes, 1)
        )
        code_node = _kid(node, "Code")
        code = None
        if code_node is not None:
            code = Code(_kid_text(code_node, "CodeNumber"), _kid_text(code_node, "CodeNotation"))
            if code == _BLANK_CODE:
                code = None
        prom_node = _kid(node, "PromulgationInfo")
        promulgation = None
        if prom_node is not None:
            promulgation = PromulgationInfo(
                place=_kid_text(prom_node, "Place"),
                date=self.date_(prom_node, "PromulgationDate", f"{p}/PromulgationInfo"),
            )
            if promulgation == _BLANK_PROMULGATIONINFO:
                promulgation = None
        type_node = _kid(node, "DocumentType")
        doc_type = None
        if type_node is not None:
            doc_type = DocumentType(
                type=self.int_(type_node, "Type", f"{p}/DocumentType"),
                type_detail=self.int_(type_node, "TypeDetail", f"{p}/DocumentType"),
                type_name=_kid_text(type_node, "TypeName"),
            )
            if doc_type == _BLANK_DOCUMENTTYPE:
                doc_type = None
        signer_node = _kid(node, "SignerInfo")
        signer = None
        if signer_node is not None:
            signer = SignerInfo(
                competence=_kid_text(signer_node, "Competence"),
                position=_kid_text(signer_node, "Position"),
                full_name=_kid_text(signer_node, "FullName"),
            )
            if signer == _BLANK_SIGNERINFO:
                signer = None
        responses = []
        for i, n in enumerate(_kids(node, "ResponseFor"), 1):
            value = self.response_for(n, f"{p}/ResponseFor[{i}]")
            if value is not None:
                responses.append(value)
        steering = self.int_(node, "SteeringType", p)
        task = _kid(node, "ResponseForTask")
        return MessageHeader(
            from_=self.organization(_kid(node, "From"), f"{p}/From"),
            to=to,
            document_id=_kid_text(node, "DocumentId"),
            subject=_kid_text(node, "Subject"),
            code=code,
            promulgation_info=promulgation,
            document_type=doc_type,
            content=_kid_text(node, "Content"),
            signer_info=signer,
            due_date=self.date_(node, "DueDate", p),
            to_places=tuple(
                t for n in _kids(_kid(node, "ToPlaces"), "Place") if (t := n.text()) is not None
            ),
            other_info=self.other_info(_kid(node, "OtherInfo"), f"{p}/OtherInfo"),
            response_for=tuple(responses),
            steering_type=steering,
            response_for_task=(_kid_text(task, "TaskCode") or task.text()) if task else None,
            application_type=_kid_text(node, "ApplicationType"),
        )

    def other_info(self, node: _Node | None, path: str) -> OtherInfo | None:
        if node is None:
            return None
        priority = None
        raw = self.int_(node, "Priority", path)
        if raw is not None:
            try:
                priority = Priority(raw)
            except ValueError:
                self.warn(f"{path}/Priority", f"{raw} is not a priority (0-4); ignored")
        value = OtherInfo(
            priority=priority,
            sphere_of_promulgation=_kid_text(node, "SphereOfPromulgation"),
            typer_notation=_kid_text(node, "TyperNotation"),
            promulgation_amount=self.int_(node, "PromulgationAmount", path),
            page_amount=self.int_(node, "PageAmount", path),
            direction=self.bool_(node, "Direction", path),
            appendixes=tuple(
                t
                for n in _kids(_kid(node, "Appendixes"), "Appendix")
                if (t := n.text()) is not None
            ),
        )
        return None if value == _BLANK_OTHERINFO else value

    def trace_headers(self, node: _Node | None) -> tuple[TraceHeader, ...]:
        traces = []
        for i, n in enumerate(_kids(node, "TraceHeader"), 1):
            organ_id = _kid_text(n, "OrganId")
            if organ_id is not None and organ_id.lower() == "null":
                organ_id = None  # written by an axis that had no id to put there
            traces.append(
                TraceHeader(
                    organ_id=organ_id,
                    timestamp=self.timestamp(n, "Timestamp", f"TraceHeaderList/TraceHeader[{i}]"),
                )
            )
        return tuple(traces)

    def business(self, node: _Node | None) -> Business | None:
        if node is None:
            return None
        path = "TraceHeaderList/Bussiness"
        raw = _kid_text(node, "BussinessDocType", "BusinessDocType")
        doc_type = BusinessDocType.NEW
        if raw is not None:
            try:
                doc_type = BusinessDocType(int(raw))
            except ValueError:
                raise InvalidValueError(
                    f"unknown business type {raw!r} (0 new, 1 revoke, 2 update, 3 replace)",
                    path=f"{path}/BussinessDocType",
                ) from None
        info_node = _kid(node, "BussinessDocumentInfo", "BusinessDocumentInfo")
        info = None
        if info_node is not None:
            ipath = f"{path}/BussinessDocumentInfo"
            receivers = []
            for i, r in enumerate(_kids(_kid(info_node, "ReceiverList"), "Receiver"), 1):
                organ_id = _kid_text(r, "OrganId")
                rpath = f"{ipath}/ReceiverList/Receiver[{i}]"
                if organ_id is None:
                    self.warn(f"{rpath}/OrganId", "receiver without OrganId; ignored")
                    continue
                receivers.append(Receiver(organ_id, self.int_(r, "ReceiverType", rpath)))
            info = BusinessDocumentInfo(
                document_info=self.int_(info_node, "DocumentInfo", ipath),
                document_receiver=self.int_(info_node, "DocumentReceiver", ipath),
                receivers=tuple(receivers),
            )
        replacements = []
        for i, r in enumerate(_kids(_kid(node, "ReplacementInfoList"), "ReplacementInfo"), 1):
            document_id = _kid_text(r, "DocumentId")
            if document_id is None:
                self.warn(
                    f"{path}/ReplacementInfoList/ReplacementInfo[{i}]/DocumentId",
                    "replacement without DocumentId; ignored",
                )
                continue
            organ_ids = tuple(
                t for o in _kids(_kid(r, "OrganIdList"), "OrganId") if (t := o.text()) is not None
            )
            replacements.append(ReplacementInfo(document_id, organ_ids))
        return Business(
            doc_type=doc_type,
            reason=_kid_text(node, "BussinessDocReason", "BusinessDocReason"),
            document_id=_kid_text(node, "DocumentId"),
            paper=self.int_(node, "Paper", path),
            staff_info=self.staff_info(_kid(node, "StaffInfo")),
            document_info=info,
            replacements=tuple(replacements),
        )

    def manifest(self, node: _Node | None) -> tuple[ManifestReference, ...]:
        refs = []
        for i, r in enumerate(_kids(node, "Reference"), 1):
            content_id = _kid_text(r, "ContentId")
            if content_id is None:
                self.warn(f"edXMLManifest/Reference[{i}]/ContentId", "reference without ContentId")
                content_id = ""
            refs.append(
                ManifestReference(
                    content_id=content_id,
                    content_type=_kid_text(r, "ContentType"),
                    description=_kid_text(r, "Description"),
                    attachment_name=_kid_text(r, "AttachmentName"),
                )
            )
        return tuple(refs)

    def attachments(
        self, root: _Node, manifest: tuple[ManifestReference, ...]
    ) -> tuple[Attachment, ...]:
        by_cid = {_cid_key(m.content_id): m for m in manifest if m.content_id}
        encoded = _kid(root, "AttachmentEncoded") or _find(root, "AttachmentEncoded")
        result = []
        for i, node in enumerate(_kids(encoded, "Attachment")):
            content_id = _kid_text(node, "ContentId")
            ref = by_cid.get(_cid_key(content_id)) if content_id else None
            if content_id is None:
                # Fall back on the manifest entry at the same position.
                ref = manifest[i] if i < len(manifest) else None
                content_id = ref.content_id if ref is not None else ""
                self.warn(
                    f"AttachmentEncoded/Attachment[{i + 1}]/ContentId",
                    "attachment without ContentId"
                    + ("; matched to the manifest by position" if ref else ""),
                )
            streamed = node.result
            result.append(
                Attachment(
                    content_id=content_id,
                    name=_kid_text(node, "AttachmentName")
                    or (ref.attachment_name if ref else None),
                    description=_kid_text(node, "Description")
                    or (ref.description if ref else None),
                    content_type=_kid_text(node, "ContentType")
                    or (ref.content_type if ref else None),
                    data=streamed.data if streamed else None,
                    size=streamed.size if streamed else None,
                    sha256=streamed.sha256 if streamed else None,
                    opener=streamed.opener if streamed else None,
                )
            )
        return tuple(result)
