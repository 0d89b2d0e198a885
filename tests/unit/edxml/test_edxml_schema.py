"""Our XSD describes exactly what serialize writes: everything written validates, and it bites."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

import edxml
from edxml import (
    VN_TZ,
    Attachment,
    Business,
    BusinessDocType,
    BusinessDocumentInfo,
    Code,
    DocumentType,
    Envelope,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)
from edxml.model import DSIG_NAMESPACE

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "corpus" / "edxml"
if not CORPUS.is_dir():
    CORPUS = Path("/work/shared/corpus/edxml")
CORPUS_FILES = sorted(
    p.relative_to(CORPUS).as_posix()
    for p in CORPUS.rglob("*.edxml")
    if p.name != "edoc.edxml"  # not well-formed: refused by the reader
)

SCHEMA = edxml.schema()


def assert_valid(data: bytes) -> None:
    doc = etree.fromstring(data)
    if not SCHEMA.validate(doc):
        raise AssertionError("\n".join(str(e) for e in SCHEMA.error_log))


def test_the_schema_is_package_data() -> None:
    xsd = resources.files("edxml").joinpath("schema/edxml.xsd").read_bytes()
    assert b'targetNamespace="http://www.mic.gov.vn/TBT/QCVN_102_2016"' in xsd
    assert isinstance(SCHEMA, etree.XMLSchema)
    assert edxml.writer.xml_schema is edxml.schema


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_file_round_tripped_validates(name: str) -> None:
    assert_valid(edxml.serialize(edxml.parse((CORPUS / name).read_bytes())))


def test_the_corpus_files_as_found_do_not_validate() -> None:
    # The schema is about our canonical form, not a catch-all: the originals mix prefixes, put
    # the signature in the wrong namespace, and AttachmentEncoded children in no namespace.
    doc = etree.fromstring((CORPUS / "sdk-samples/edoc_update.edxml").read_bytes())
    assert not SCHEMA.validate(doc)


FROM = Organization(
    "000.00.00.G22",
    organization_in_charge="Văn phòng Chính phủ",
    organ_name="Văn phòng Chính phủ",
    organ_add="Số 1 Hoàng Hoa Thám, Ba Đình, Hà Nội",
    email="vpcp@gov.vn",
    telephone="8043100",
    fax="048989898",
    website="vpcp.vn",
)
TO = (Organization("000.00.00.H41", organ_name="UBND tỉnh Nghệ An"), Organization("000.00.14.H20"))
DOC_ID = "000.00.00.G22,2024/03/01,12/VPCP-TTĐT"
WHEN = dt.datetime(2024, 3, 1, 9, 30, tzinfo=VN_TZ)
STAFF = StaffInfo("Văn thư", "Nguyễn Thị A", "0912000001", "vanthu@gov.vn")


def full_header(**changes: object) -> MessageHeader:
    values: dict[str, object] = dict(
        from_=FROM,
        to=TO,
        document_id=DOC_ID,
        subject="V/v kết nối, liên thông",
        code=Code("12", "VPCP-TTĐT"),
        promulgation_info=PromulgationInfo("Hà Nội", dt.date(2024, 3, 1)),
        document_type=DocumentType(1, 0, "Công văn"),
        content="Nội dung",
        signer_info=SignerInfo("KT. BỘ TRƯỞNG", "Thứ trưởng", "Nguyễn Văn B"),
        due_date=dt.date(2024, 3, 15),
        to_places=("Các bộ", "UBND các tỉnh"),
        other_info=OtherInfo(
            Priority.TIMED_EXPRESS, "Toàn quốc", "TVC", 2, 22, True, ("Phụ lục 1", "Phụ lục 2")
        ),
        response_for=(
            ResponseFor("000.00.00.H41", "5/UBND", dt.date(2024, 2, 1), "000.00.00.H41,x"),
            ResponseFor(document_id="other"),
        ),
        steering_type=1,
        response_for_task="TASK-1",
        application_type="MCDT_DT",
    )
    values.update(changes)
    return MessageHeader(**values)  # type: ignore[arg-type]


def envelope(**changes: object) -> Envelope:
    values: dict[str, object] = dict(
        header=full_header(),
        trace_headers=(TraceHeader("000.00.00.G22", WHEN), TraceHeader(None, None)),
        manifest=(
            ManifestReference("cid:1", "application/pdf", "Văn bản", "vb.pdf"),
            ManifestReference("2", "application/zip", None, "pl.zip"),
        ),
        attachments=(
            Attachment("cid:1", "vb.pdf", "Văn bản", "application/pdf", data=b"%PDF" * 100),
            Attachment("2", "pl.zip", None, "application/zip", data=b""),
        ),
    )
    values.update(changes)
    return Envelope(**values)  # type: ignore[arg-type]


SIGNATURE = (
    f'<Signature xmlns="{DSIG_NAMESPACE}"><SignedInfo><Reference URI="">'
    "<DigestValue>AAAA</DigestValue></Reference></SignedInfo>"
    "<SignatureValue>AAAA</SignatureValue></Signature>"
).encode()

CONSTRUCTED: dict[str, Envelope | StatusMessage] = {
    "minimal": Envelope(header=MessageHeader(from_=Organization("000.00.00.G22"), to=TO[:1])),
    "full": envelope(),
    "signed": envelope(signature=SIGNATURE),
    "new": envelope(business=Business(BusinessDocType.NEW, "Văn bản mới", paper=0)),
    "revoke": envelope(
        business=Business(BusinessDocType.REVOKE, "Thu hồi", DOC_ID, paper=1, staff_info=STAFF),
    ),
    "update": envelope(
        business=Business(
            BusinessDocType.UPDATE,
            "Cập nhật",
            DOC_ID,
            0,
            STAFF,
            BusinessDocumentInfo(1, 1, (Receiver("000.00.00.H41", 0), Receiver("000.00.14.H20"))),
        )
    ),
    "replace": envelope(
        business=Business(
            BusinessDocType.REPLACE,
            "Thay thế",
            replacements=(
                ReplacementInfo(DOC_ID, ("000.00.00.H41", "000.00.14.H20")),
                ReplacementInfo("other-id"),
            ),
        )
    ),
    "business-without-trace": envelope(trace_headers=(), business=Business()),
    "no-attachments": envelope(manifest=(), attachments=()),
    "empty-values": envelope(header=full_header(subject="", content="", to_places=("",))),
}
for _code in StatusCode:
    CONSTRUCTED[f"status-{_code.value}"] = StatusMessage(
        from_=FROM,
        response_for=ResponseFor("000.00.00.H41", "5/UBND", dt.date(2024, 2, 1), DOC_ID),
        status_code=_code,
        staff_info=STAFF,
        description=_code.label,
        timestamp=WHEN,
    )
CONSTRUCTED["status-minimal"] = StatusMessage(
    from_=Organization("000.00.00.H41"), response_for=ResponseFor(), status_code=StatusCode.RECEIVED
)
CONSTRUCTED["status-traced-signed"] = StatusMessage(
    from_=FROM,
    response_for=ResponseFor(document_id=DOC_ID),
    status_code=StatusCode.RECALL_REQUESTED,
    trace_headers=(TraceHeader("000.00.00.G22", WHEN),),
    business=Business(BusinessDocType.REVOKE, document_id=DOC_ID),
    signature=SIGNATURE,
)


@pytest.mark.parametrize("name", sorted(CONSTRUCTED))
def test_constructed_packages_validate(name: str) -> None:
    assert_valid(edxml.serialize(CONSTRUCTED[name]))


@pytest.mark.parametrize("size", [1, 2, 3, 57, 58, 1000])
def test_every_base64_length_validates(size: int) -> None:
    assert_valid(
        edxml.serialize(
            envelope(
                manifest=(ManifestReference("1"),), attachments=(Attachment("1", data=b"x" * size),)
            )
        )
    )


def _mutate(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


FULL = edxml.serialize(envelope(signature=SIGNATURE))
STATUS = edxml.serialize(CONSTRUCTED["status-03"])
_SUBJECT = "<edXML:Subject>V/v kết nối, liên thông</edXML:Subject>".encode()
_CONTENT = "<edXML:Content>Nội dung</edXML:Content>".encode()
_GAP = b"\n        "
BROKEN = {
    "dd/MM/yyyy date": _mutate(
        FULL, b"2024/03/01</edXML:PromulgationDate>", b"01/03/2024</edXML:PromulgationDate>"
    ),
    "timestamp without seconds": _mutate(FULL, b"2024/03/01 09:30:00", b"2024/03/01 09:30"),
    "priority 5": _mutate(FULL, b"<edXML:Priority>4<", b"<edXML:Priority>5<"),
    "order swapped": _mutate(FULL, _SUBJECT + _GAP + _CONTENT, _CONTENT + _GAP + _SUBJECT),
    "content id without cid:": _mutate(FULL, b"<edXML:ContentId>cid:1<", b"<edXML:ContentId>1<"),
    "base64 line too long": _mutate(FULL, b"JVBERiVQREYl", b"JVBERiVQREYlJVBE"),
    "unknown element": _mutate(FULL, b"<edXML:Subject>", b"<edXML:Foo/><edXML:Subject>"),
    "no To": FULL.replace(b"<edXML:To>", b"<edXML:Bcc>").replace(b"</edXML:To>", b"</edXML:Bcc>"),
    "signature in edXML namespace": _mutate(
        FULL, f'<Signature xmlns="{DSIG_NAMESPACE}">'.encode(), b"<edXML:Signature>"
    ).replace(b"</Signature>", b"</edXML:Signature>"),
    "unknown status code": _mutate(STATUS, b"<edXML:StatusCode>03<", b"<edXML:StatusCode>07<"),
    "status without ResponseFor": _mutate(STATUS, b"<edXML:ResponseFor>", b"<edXML:X>").replace(
        b"</edXML:ResponseFor>", b"</edXML:X>"
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_schema_refuses_what_serialize_never_writes(name: str) -> None:
    doc = etree.fromstring(BROKEN[name])
    assert not SCHEMA.validate(doc)
