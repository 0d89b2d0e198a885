"""edxml: the QCVN 102:2016 edXML format, pure and synchronous.

Public surface: :func:`parse`, :func:`serialize`, :func:`validate`, :class:`OrganId`, the model
dataclasses and the :class:`EdxmlError` hierarchy.
"""

from edxml.attachments import AttachmentMeta, AttachmentSink, DirectorySink, DiscardSink
from edxml.codes import BusinessDocType, Priority, StatusCode, SteeringType
from edxml.dsig import SignatureCheck, sign_envelope, verify_signature
from edxml.errors import (
    EdxmlError,
    InvalidOrganIdError,
    InvalidValueError,
    LimitExceededError,
    NotEdxmlError,
    NotWellFormedError,
    SignatureError,
    UnsafeXmlError,
)
from edxml.limits import Limits
from edxml.model import (
    NAMESPACE,
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
from edxml.organid import OrganId
from edxml.reader import parse
from edxml.rules import validate
from edxml.writer import serialize, write
from edxml.writer import xml_schema as schema

__all__ = [
    "NAMESPACE",
    "VN_TZ",
    "Attachment",
    "AttachmentMeta",
    "AttachmentSink",
    "Business",
    "BusinessDocType",
    "BusinessDocumentInfo",
    "Code",
    "DirectorySink",
    "DiscardSink",
    "DocumentType",
    "EdxmlError",
    "Envelope",
    "InvalidOrganIdError",
    "InvalidValueError",
    "LimitExceededError",
    "Limits",
    "ManifestReference",
    "MessageHeader",
    "NotEdxmlError",
    "NotWellFormedError",
    "OrganId",
    "Organization",
    "OtherInfo",
    "Priority",
    "Problem",
    "PromulgationInfo",
    "Receiver",
    "ReplacementInfo",
    "ResponseFor",
    "SignatureCheck",
    "SignatureError",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusMessage",
    "SteeringType",
    "TraceHeader",
    "UnsafeXmlError",
    "parse",
    "schema",
    "serialize",
    "sign_envelope",
    "validate",
    "verify_signature",
    "write",
]
