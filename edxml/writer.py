"""The strict, canonical edXML writer.

There is exactly one way :func:`serialize` spells a package, so that the same package read from
any of its real-world spellings (prefixes, default namespace, CRLF, BOM, minified, ``dd/MM/yyyy``
dates, shuffled elements) gives the same bytes:

- ``<?xml version="1.0" encoding="UTF-8"?>``, UTF-8 without BOM, ``\\n`` line endings;
- every edXML element is prefixed ``edXML:``; the namespace is declared once, on the root;
- elements in the fixed order of the corpus files, two-space indentation, absent optional
  elements omitted, an empty value written as an empty element (``<edXML:Fax/>``);
- dates ``yyyy/MM/dd``, timestamps ``yyyy/MM/dd HH:mm:ss`` in +07:00 (aware datetimes are
  converted, naive ones are taken as Vietnamese local time);
- ``AttachmentEncoded`` follows ``edXMLEnvelope`` inside the root, content ids are written
  ``cid:…`` and the content is base64 in lines of 76 characters;
- an XML-DSig ``Signature`` sits in ``edXMLHeader`` after ``TraceHeaderList``, in the xmldsig
  namespace (declared as the default namespace on the ``Signature`` element), with comments and
  whitespace-only text removed, serialised by exclusive C14N (see :func:`canonical_signature`).

The XML is written by hand so that attachments stream: :func:`write` reads each attachment from
:meth:`Attachment.open` in chunks and encodes it incrementally. Everything except attachment
content is rendered, and checked, before the first byte is written.
"""

from __future__ import annotations

import binascii
import io
import re
from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from importlib import resources
from typing import BinaryIO, TypeVar

from lxml import etree

from edxml.codes import BusinessDocType, Priority, StatusCode
from edxml.errors import InvalidValueError, UnsafeXmlError
from edxml.model import (
    DSIG_NAMESPACE,
    NAMESPACE,
    VN_TZ,
    Attachment,
    Business,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    ResponseFor,
    StaffInfo,
    StatusMessage,
    TraceHeader,
)
from edxml.safexml import has_doctype, xml_parser

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
BASE64_LINE = 76
# 57 input bytes make one 76-character line; a chunk is a whole number of lines (and so a
# multiple of 3 bytes), about 768 KiB, so that no line is split across chunks.
_LINE_BYTES = BASE64_LINE // 4 * 3
CHUNK_SIZE = _LINE_BYTES * 13797

_PREFIX = "edXML:"
_INDENT = "  "
# Characters XML 1.0 forbids (also as character references), and lone surrogates that UTF-8
# cannot carry.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&apos;",
        "\r": "&#13;",
        "\n": "&#10;",
        "\t": "&#9;",
    }
)
_E = TypeVar("_E", bound=Enum)
# Wrapper elements that are not worth naming in an error path.
_SILENT = frozenset({"edXML", "edXMLEnvelope", "edXMLHeader", "edXMLBody"})


def serialize(obj: Envelope | StatusMessage) -> bytes:
    """The canonical edXML bytes of a document package or status message.

    Raises :class:`InvalidValueError` for values that cannot be written as XML 1.0 (control
    characters, lone surrogates), for a document without recipients and for an attachment whose
    content is not available.
    """
    buffer = io.BytesIO()
    write(obj, buffer)
    return buffer.getvalue()


def write(obj: Envelope | StatusMessage, out: BinaryIO) -> None:
    """Write the canonical edXML of ``obj`` to ``out``, streaming attachment content.

    Each attachment is read from :meth:`Attachment.open` in chunks of about 768 KiB and
    base64-encoded as it goes, so memory stays flat whatever the attachment sizes. The errors
    :func:`serialize` lists are raised before anything is written; only an error of an
    attachment's own stream (an ``OSError`` from its opener) can stop the output half-way.
    """
    if isinstance(obj, Envelope):
        _write_envelope(obj, out)
    elif isinstance(obj, StatusMessage):
        out.write(_render_status(obj).encode("utf-8"))
    else:
        raise TypeError(f"cannot write {type(obj).__name__}: expected Envelope or StatusMessage")


def xml_schema() -> etree.XMLSchema:
    """The project's XSD for what :func:`serialize` writes, loaded from the package data."""
    source = resources.files("edxml").joinpath("schema/edxml.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(source, xml_parser()))


def content_id_reference(content_id: str) -> str:
    """The ``cid:`` spelling of an attachment's content id (``209`` and ``cid:209`` are equal)."""
    bare = content_id.strip()
    if bare[:4].lower() == "cid:":
        bare = bare[4:]
    # MIME spells Content-IDs in angle brackets (cid:<209>); the id is what is inside.
    return "cid:" + bare.strip().strip("<>").strip()


def format_date(value: date) -> str:
    """``yyyy/MM/dd``."""
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def format_timestamp(value: datetime) -> str:
    """``yyyy/MM/dd HH:mm:ss`` in Vietnamese time (aware datetimes are converted to +07:00)."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(VN_TZ)
    return f"{format_date(value)} {value.hour:02d}:{value.minute:02d}:{value.second:02d}"


def canonical_signature(data: bytes) -> bytes:
    """The canonical bytes of an XML-DSig ``Signature`` element as found in a package.

    A ``Signature`` found in the edXML namespace (a common mistake) is moved, with its
    descendants of that namespace, into the xmldsig namespace. Comments, processing
    instructions and whitespace-only text are dropped, the xmldsig namespace becomes the default
    namespace of the element, and the result is serialised by exclusive C14N. Whoever signs a
    package must therefore compute the signature over this form (as :func:`serialize` writes
    it) for the signature to survive a parse/serialize round.
    """
    try:
        source = etree.fromstring(data, xml_parser(remove_comments=True, remove_pis=True))
    except etree.XMLSyntaxError as exc:
        raise InvalidValueError(
            f"the XML-DSig Signature is not well-formed XML: {exc}", path="Signature"
        ) from exc
    if has_doctype(source.getroottree()):
        raise UnsafeXmlError(
            "the XML-DSig Signature declares a DOCTYPE (DTD), refused for safety", path="Signature"
        )
    qname = etree.QName(source)
    if qname.localname != "Signature" or qname.namespace not in (DSIG_NAMESPACE, NAMESPACE, None):
        raise InvalidValueError(
            f"expected an XML-DSig Signature element, found {qname.text}", path="Signature"
        )
    misplaced = None if qname.namespace == DSIG_NAMESPACE else qname.namespace
    # The xmldsig namespace as the element's default namespace (built from text: the lxml
    # stubs do not accept a None key in nsmap).
    root = etree.fromstring(f'<Signature xmlns="{DSIG_NAMESPACE}"/>')
    _copy_signature_node(source, root, misplaced)
    return etree.tostring(root, method="c14n", exclusive=True, with_comments=False)


def _copy_signature_node(
    source: etree._Element, target: etree._Element, misplaced: str | None
) -> None:
    for name, value in source.attrib.items():
        target.set(name, value)
    if source.text is not None and source.text.strip():
        target.text = source.text
    for child in source:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        namespace = qname.namespace
        if namespace == misplaced:
            namespace = DSIG_NAMESPACE
        tag = f"{{{namespace}}}{qname.localname}" if namespace else qname.localname
        copy = etree.SubElement(target, tag)
        _copy_signature_node(child, copy, misplaced)
        if child.tail is not None and child.tail.strip():
            copy.tail = child.tail


class _Markup:
    """Accumulates indented, escaped edXML markup and knows where it is (for error paths)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.stack: list[str] = []

    def path(self, name: str | None = None) -> str:
        names = [n for n in self.stack if n.split("[")[0] not in _SILENT]
        if name is not None:
            names.append(name)
        return "/".join(names)

    def start(self, name: str, index: int | None = None, attrs: str = "") -> None:
        self.parts.append(f"{_INDENT * len(self.stack)}<{_PREFIX}{name}{attrs}>\n")
        self.stack.append(name if index is None else f"{name}[{index}]")

    def end(self, name: str) -> None:
        self.stack.pop()
        self.parts.append(f"{_INDENT * len(self.stack)}</{_PREFIX}{name}>\n")

    def leaf(self, name: str, value: str | int | bool | None) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(int(value))
        else:
            text = self.text(value, name)
        indent = _INDENT * len(self.stack)
        if text:
            self.parts.append(f"{indent}<{_PREFIX}{name}>{text}</{_PREFIX}{name}>\n")
        else:
            self.parts.append(f"{indent}<{_PREFIX}{name}/>\n")

    def leaves(self, name: str, values: Iterable[str]) -> None:
        for value in values:
            self.leaf(name, value)

    def text(self, value: str, name: str) -> str:
        if not isinstance(value, str):
            raise InvalidValueError(
                f"expected text, found {type(value).__name__}", path=self.path(name)
            )
        bad = _FORBIDDEN.search(value)
        if bad is not None:
            raise InvalidValueError(
                f"character U+{ord(bad.group()):04X} cannot be written in XML 1.0",
                path=self.path(name),
            )
        return value.translate(_TEXT_ESCAPES)

    def raw(self, markup: str) -> None:
        self.parts.append(markup)

    def render(self) -> str:
        return "".join(self.parts)


def _coded(m: _Markup, name: str, table: type[_E], value: object) -> _E:
    """``value`` as a member of a code table; the schema allows nothing else."""
    try:
        return table(value)
    except ValueError:
        raise InvalidValueError(
            f"{value!r} is not a valid {table.__name__}", path=m.path(name)
        ) from None


def _attribute(name: str, value: str) -> str:
    return f' {name}="{value.translate(_ATTR_ESCAPES)}"'


def _organization(m: _Markup, name: str, org: Organization, index: int | None = None) -> None:
    m.start(name, index)
    m.leaf("OrganId", org.organ_id)
    m.leaf("OrganizationInCharge", org.organization_in_charge)
    m.leaf("OrganName", org.organ_name)
    m.leaf("OrganAdd", org.organ_add)
    m.leaf("Email", org.email)
    m.leaf("Telephone", org.telephone)
    m.leaf("Fax", org.fax)
    m.leaf("Website", org.website)
    m.end(name)


def _response_for(m: _Markup, rf: ResponseFor, index: int | None = None) -> None:
    m.start("ResponseFor", index)
    m.leaf("OrganId", rf.organ_id)
    m.leaf("Code", rf.code)
    m.leaf("PromulgationDate", _date(rf.promulgation_date))
    m.leaf("DocumentId", rf.document_id)
    m.end("ResponseFor")


def _staff_info(m: _Markup, staff: StaffInfo | None) -> None:
    if staff is None:
        return
    m.start("StaffInfo")
    m.leaf("Department", staff.department)
    m.leaf("Staff", staff.staff)
    m.leaf("Mobile", staff.mobile)
    m.leaf("Email", staff.email)
    m.end("StaffInfo")


def _date(value: date | None) -> str | None:
    return None if value is None else format_date(value)


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _message_header(m: _Markup, h: MessageHeader) -> None:
    if not h.to:
        raise InvalidValueError(
            "a document needs at least one recipient (To)", path="MessageHeader/To"
        )
    m.start("MessageHeader")
    _organization(m, "From", h.from_)
    for i, org in enumerate(h.to, start=1):
        _organization(m, "To", org, i)
    m.leaf("DocumentId", h.document_id)
    if h.code is not None:
        m.start("Code")
        m.leaf("CodeNumber", h.code.number)
        m.leaf("CodeNotation", h.code.notation)
        m.end("Code")
    if h.promulgation_info is not None:
        m.start("PromulgationInfo")
        m.leaf("Place", h.promulgation_info.place)
        m.leaf("PromulgationDate", _date(h.promulgation_info.date))
        m.end("PromulgationInfo")
    if h.document_type is not None:
        m.start("DocumentType")
        m.leaf("Type", h.document_type.type)
        m.leaf("TypeDetail", h.document_type.type_detail)
        m.leaf("TypeName", h.document_type.type_name)
        m.end("DocumentType")
    m.leaf("Subject", h.subject)
    m.leaf("Content", h.content)
    if h.signer_info is not None:
        m.start("SignerInfo")
        m.leaf("Competence", h.signer_info.competence)
        m.leaf("Position", h.signer_info.position)
        m.leaf("FullName", h.signer_info.full_name)
        m.end("SignerInfo")
    m.leaf("DueDate", _date(h.due_date))
    if h.other_info is not None:
        o = h.other_info
        m.start("OtherInfo")
        priority = None if o.priority is None else _coded(m, "Priority", Priority, o.priority)
        m.leaf("Priority", None if priority is None else priority.value)
        m.leaf("SphereOfPromulgation", o.sphere_of_promulgation)
        m.leaf("TyperNotation", o.typer_notation)
        m.leaf("PromulgationAmount", o.promulgation_amount)
        m.leaf("PageAmount", o.page_amount)
        m.leaf("Direction", o.direction)
        if o.appendixes:
            m.start("Appendixes")
            m.leaves("Appendix", o.appendixes)
            m.end("Appendixes")
        m.end("OtherInfo")
    for i, rf in enumerate(h.response_for, start=1):
        _response_for(m, rf, i)
    m.leaf("SteeringType", None if h.steering_type is None else int(h.steering_type))
    if h.to_places:
        m.start("ToPlaces")
        m.leaves("Place", h.to_places)
        m.end("ToPlaces")
    if h.response_for_task is not None:
        m.start("ResponseForTask")
        m.leaf("TaskCode", h.response_for_task)
        m.end("ResponseForTask")
    m.leaf("ApplicationType", h.application_type)
    m.end("MessageHeader")


def _business(m: _Markup, b: Business) -> None:
    m.start("Bussiness")
    m.leaf("DocumentId", b.document_id)
    m.leaf("BussinessDocType", _coded(m, "BussinessDocType", BusinessDocType, b.doc_type).value)
    m.leaf("BussinessDocReason", b.reason)
    m.leaf("Paper", b.paper)
    if b.document_info is not None:
        info = b.document_info
        m.start("BussinessDocumentInfo")
        m.leaf("DocumentInfo", info.document_info)
        m.leaf("DocumentReceiver", info.document_receiver)
        if info.receivers:
            m.start("ReceiverList")
            for i, receiver in enumerate(info.receivers, start=1):
                m.start("Receiver", i)
                m.leaf("OrganId", receiver.organ_id)
                m.leaf("ReceiverType", receiver.receiver_type)
                m.end("Receiver")
            m.end("ReceiverList")
        m.end("BussinessDocumentInfo")
    if b.replacements:
        m.start("ReplacementInfoList")
        for i, replacement in enumerate(b.replacements, start=1):
            m.start("ReplacementInfo", i)
            m.leaf("DocumentId", replacement.document_id)
            if replacement.organ_ids:
                m.start("OrganIdList")
                m.leaves("OrganId", replacement.organ_ids)
                m.end("OrganIdList")
            m.end("ReplacementInfo")
        m.end("ReplacementInfoList")
    _staff_info(m, b.staff_info)
    m.end("Bussiness")


def _trace_and_signature(
    m: _Markup,
    trace_headers: tuple[TraceHeader, ...],
    business: Business | None,
    signature: bytes | None,
) -> None:
    if trace_headers or business is not None:
        m.start("TraceHeaderList")
        for i, trace in enumerate(trace_headers, start=1):
            m.start("TraceHeader", i)
            m.leaf("OrganId", trace.organ_id)
            m.leaf("Timestamp", _timestamp(trace.timestamp))
            m.end("TraceHeader")
        if business is not None:
            _business(m, business)
        m.end("TraceHeaderList")
    if signature is not None:
        canonical = canonical_signature(signature).decode("utf-8")
        m.raw(f"{_INDENT * len(m.stack)}{canonical}\n")


def _open_root(m: _Markup) -> None:
    m.raw(XML_DECLARATION.decode("ascii"))
    m.start("edXML", attrs=_attribute("xmlns:edXML", NAMESPACE))
    m.start("edXMLEnvelope")
    m.start("edXMLHeader")


def _render_status(s: StatusMessage) -> str:
    m = _Markup()
    _open_root(m)
    m.start("MessageHeader")
    _organization(m, "From", s.from_)
    _response_for(m, s.response_for)
    _staff_info(m, s.staff_info)
    m.leaf("StatusCode", _coded(m, "StatusCode", StatusCode, s.status_code).value)
    m.leaf("Description", s.description)
    m.leaf("Timestamp", _timestamp(s.timestamp))
    m.end("MessageHeader")
    _trace_and_signature(m, s.trace_headers, s.business, s.signature)
    m.end("edXMLHeader")
    m.end("edXMLEnvelope")
    m.end("edXML")
    return m.render()


def _content_id(m: _Markup, content_id: str) -> str:
    m.text(content_id, "ContentId")  # type and character check; leaf() escapes
    return content_id_reference(content_id)


def _manifest_reference(m: _Markup, ref: ManifestReference, index: int) -> None:
    m.start("Reference", index)
    m.leaf("ContentId", _content_id(m, ref.content_id))
    m.leaf("ContentType", ref.content_type)
    m.leaf("Description", ref.description)
    m.leaf("AttachmentName", ref.attachment_name)
    m.end("Reference")


def _attachment_markup(att: Attachment, index: int) -> tuple[str, str]:
    """The markup before and after the base64 content of one attachment."""
    path = f"AttachmentEncoded/Attachment[{index}]"
    if att.data is None and att.opener is None:
        raise InvalidValueError(
            f"the content of attachment {att.content_id!r} is not available: it was streamed "
            "to a sink; give the Attachment an opener to write it",
            path=path,
        )
    m = _Markup()
    m.stack = ["edXML", "AttachmentEncoded"]
    m.start("Attachment", index)
    m.leaf("ContentId", _content_id(m, att.content_id))
    m.leaf("AttachmentName", att.name)
    m.leaf("Description", att.description)
    m.leaf("ContentType", att.content_type)
    m.start("ContentTransferEncoded")
    before = m.render()
    m.parts = []
    m.stack.pop()
    m.raw(f"{_INDENT * len(m.stack)}</{_PREFIX}ContentTransferEncoded>\n")
    m.end("Attachment")
    return before, m.render()


def _write_envelope(env: Envelope, out: BinaryIO) -> None:
    m = _Markup()
    _open_root(m)
    _message_header(m, env.header)
    _trace_and_signature(m, env.trace_headers, env.business, env.signature)
    m.end("edXMLHeader")
    m.start("edXMLBody")
    m.start("edXMLManifest", attrs=_attribute("version", "1.0"))
    for i, ref in enumerate(env.manifest, start=1):
        _manifest_reference(m, ref, i)
    m.end("edXMLManifest")
    m.end("edXMLBody")
    m.end("edXMLEnvelope")
    head = m.render()

    # Render every attachment's markup first, so that bad metadata fails before any output.
    pieces = [_attachment_markup(att, i) for i, att in enumerate(env.attachments, start=1)]

    out.write(head.encode("utf-8"))
    if pieces:
        out.write(f"{_INDENT}<{_PREFIX}AttachmentEncoded>\n".encode())
        for att, (before, after) in zip(env.attachments, pieces, strict=True):
            out.write(before.encode("utf-8"))
            with att.open() as stream:
                _write_base64(stream, out)
            out.write(after.encode("utf-8"))
        out.write(f"{_INDENT}</{_PREFIX}AttachmentEncoded>\n".encode())
    out.write(f"</{_PREFIX}edXML>\n".encode())


def _write_base64(stream: BinaryIO, out: BinaryIO) -> None:
    """Encode ``stream`` to ``out`` as base64 lines of 76 characters, one chunk at a time."""
    carry = b""
    while True:
        block = stream.read(CHUNK_SIZE)
        if not block:
            break
        if carry:
            block = carry + block
        whole = len(block) - len(block) % _LINE_BYTES
        carry = block[whole:]
        if whole:
            out.write(_base64_lines(memoryview(block)[:whole]))
    if carry:
        out.write(_base64_lines(carry))


def _base64_lines(data: bytes | memoryview) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    lines = [encoded[i : i + BASE64_LINE] for i in range(0, len(encoded), BASE64_LINE)]
    lines.append(b"")
    return b"\n".join(lines)
