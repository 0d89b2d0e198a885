"""edxml.parse on the real corpus and on every quirk the lenient reader promises to accept."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import pytest

import edxml
from edxml import (
    BusinessDocType,
    Envelope,
    InvalidValueError,
    NotEdxmlError,
    NotWellFormedError,
    Priority,
    Problem,
    StatusCode,
    StatusMessage,
)
from edxml.attachments import unzip
from edxml.model import DSIG_NAMESPACE, NAMESPACE, VN_TZ
from edxml.reader import parse_date, parse_timestamp

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "edxml"
BROKEN = CORPUS / "sdk-samples" / "edoc.edxml"
WELL_FORMED = sorted(p for p in CORPUS.rglob("*.edxml") if p != BROKEN)


def corpus(name: str) -> Path:
    found = [p for p in CORPUS.rglob(name)]
    assert len(found) == 1, name
    return found[0]


# --- corpus ----------------------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    assert len(WELL_FORMED) == 23
    assert (CORPUS / "README.md").read_text(encoding="utf-8").count("commit") >= 2


@pytest.mark.parametrize("path", WELL_FORMED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_well_formed_corpus_file_parses(path: Path) -> None:
    warnings: list[Problem] = []
    result = edxml.parse(path, on_warning=warnings.append)
    assert warnings == []
    if path.name.startswith("status"):
        assert isinstance(result, StatusMessage)
        assert result.from_.organ_id
        assert result.response_for.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
        assert result.timestamp is not None and result.timestamp.tzinfo is not None
    else:
        assert isinstance(result, Envelope)
        assert result.header.from_.organ_id
        assert result.header.to and all(t.organ_id for t in result.header.to)
        assert result.header.subject
        assert result.attachments
        for att in result.attachments:
            assert att.data is not None and len(att.data) == att.size > 0
        # Every attachment is announced in the manifest (matched ignoring "cid:").
        listed = {m.content_id.removeprefix("cid:") for m in result.manifest}
        assert {a.content_id.removeprefix("cid:") for a in result.attachments} <= listed


def test_corpus_file_read_from_bytes_path_and_file_object_alike() -> None:
    path = corpus("edoc_update.edxml")
    from_path = edxml.parse(path)
    from_str = edxml.parse(str(path))
    from_bytes = edxml.parse(path.read_bytes())
    with path.open("rb") as handle:
        from_file = edxml.parse(handle)
    assert from_path == from_str == from_bytes == from_file


def test_broken_sdk_sample_is_refused_naming_line_74_and_from() -> None:
    with pytest.raises(NotWellFormedError) as caught:
        edxml.parse(BROKEN)
    err = caught.value
    assert err.line == 74
    assert "<From>" in str(err)
    assert "line 7 " in str(err)
    assert "</MessageHeader>" in str(err)
    assert "line 74" in str(err)


def test_new_document_sample() -> None:
    env = edxml.parse(corpus("edoc_new.edxml"))
    assert isinstance(env, Envelope)
    h = env.header
    assert h.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert h.from_.organ_id == "000.00.00.A80"
    assert h.from_.fax == "048989898789"
    assert [t.organ_id for t in h.to] == ["28.22.H17"]
    assert h.subject == "V/v kết nối, liên thông phần mềm quản lý văn bản"
    assert h.code is not None and str(h.code) == "74fass22/VPCP-TTĐT"
    assert h.promulgation_info is not None
    assert h.promulgation_info.place == "Hà Nội"
    assert h.promulgation_info.date == date(2019, 1, 16)
    assert h.document_type is not None
    assert (h.document_type.type, h.document_type.type_detail) == (1, 0)
    assert h.document_type.type_name == "Công văn"
    assert h.signer_info is not None and h.signer_info.full_name == "Nguyen Thanh Phuc"
    assert h.due_date == date(2018, 9, 28)
    assert h.to_places == ("Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP")
    assert h.other_info is not None
    assert h.other_info.priority is Priority.NORMAL
    assert h.other_info.direction is False
    assert h.other_info.page_amount == 22
    assert h.other_info.appendixes == (
        "Công văn về việc kết nối, liên thông phần mềm quản lý văn bản",
    )
    assert h.steering_type == 1
    assert h.response_for == ()
    assert env.trace_headers[0].organ_id == "000.00.00.G22"
    assert env.trace_headers[0].timestamp == datetime(2018, 9, 28, tzinfo=VN_TZ)
    assert env.business is not None
    assert env.business.doc_type is BusinessDocType.NEW
    assert env.business.reason == "Văn bản điện tử mới"
    assert env.business.staff_info is not None
    assert env.business.staff_info.staff == "Nguyễn Thị Ngọc Trâm"
    (ref,) = env.manifest
    assert ref.content_id == "cid:209"
    assert ref.content_type == "application/zip"
    (att,) = env.attachments
    assert att.content_id == "cid:209"
    assert att.name == "1896_QD-TTg_m_294779.doc"
    assert att.is_zipped
    inner = unzip(att)
    body = inner.stream.read()
    assert inner.name.endswith(".edxml")
    assert len(body) == inner.size == 388347
    assert body.startswith(b"<?xml")
    # Signature in the edXML namespace (default namespace in scope): kept as found.
    assert env.signature is not None
    assert env.signature.startswith(f'<Signature xmlns="{NAMESPACE}"'.encode())
    assert b"<DigestValue>FwgIqsSYJshUS2+wlOM61L+q7Aw=</DigestValue>" in env.signature


def test_update_revocation_replacement_business() -> None:
    update = edxml.parse(corpus("edoc_update.edxml"))
    assert isinstance(update, Envelope) and update.business is not None
    assert update.business.doc_type is BusinessDocType.UPDATE
    assert [t.organ_id for t in update.header.to] == [
        "000.00.00.H41",
        "000.00.00.H14",
        "000.00.00.G17",
    ]
    info = update.business.document_info
    assert info is not None
    assert (info.document_info, info.document_receiver) == (1, 1)
    assert [(r.organ_id, r.receiver_type) for r in info.receivers] == [
        ("000.00.00.H41", 0),
        ("000.00.00.H14", 1),
    ]

    revoke = edxml.parse(corpus("edoc_revocation.edxml"))
    assert isinstance(revoke, Envelope) and revoke.business is not None
    assert revoke.business.doc_type is BusinessDocType.REVOKE
    assert revoke.business.reason == "Thu hồi văn bản điện tử"
    (answered,) = revoke.header.response_for
    assert answered.document_id == "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"
    assert answered.code == "267/VPCP-TTĐT"
    assert answered.promulgation_date == date(2018, 9, 28)

    replace = edxml.parse(corpus("edoc_replacement.edxml"))
    assert isinstance(replace, Envelope) and replace.business is not None
    assert replace.business.doc_type is BusinessDocType.REPLACE
    assert len(replace.business.replacements) == 2
    first = replace.business.replacements[0]
    assert first.document_id == "000.00.00.G22,2014/01/30,7806/VPCP-TTĐT"
    assert first.organ_ids == ("000.00.00.H41", "000.00.00.H14")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("status.edxml", StatusCode.RECEIVED),
        ("status_inbox__01.edxml", StatusCode.RECEIVED),
        ("status_rejection_02.edxml", StatusCode.REJECTED),
        ("status_acceptance_03.edxml", StatusCode.ACCEPTED),
        ("status_assignment_04.edxml", StatusCode.ASSIGNED),
        ("status_processing_05.edxml", StatusCode.PROCESSING),
        ("status_finish_06.edxml", StatusCode.COMPLETED),
        ("status_cancellation_13.edxml", StatusCode.RECALL_REQUESTED),
        ("status_change-acceptance_15.edxml", StatusCode.RECALL_ACCEPTED),
        ("status_change-rejection_16.edxml", StatusCode.RECALL_REFUSED),
    ],
)
def test_status_messages(name: str, code: StatusCode) -> None:
    status = edxml.parse(corpus(name))
    assert isinstance(status, StatusMessage)
    assert status.status_code is code
    assert status.description


def test_status_message_details() -> None:
    status = edxml.parse(corpus("status_rejection_02.edxml"))
    assert isinstance(status, StatusMessage)
    assert status.from_.organ_id == "000.00.00.H41"
    assert status.from_.organ_name == "UBND Tỉnh Nghệ An"
    assert status.response_for.organ_id == "000.00.00.G22"
    assert status.response_for.code == "7816/VPCP-TTĐT"
    assert status.response_for.promulgation_date == date(2015, 9, 30)
    assert status.staff_info is not None and status.staff_info.department == "Phong hanh chinh"
    assert status.timestamp == datetime(2015, 9, 20, 11, 8, 36, tzinfo=VN_TZ)
    assert status.description == (
        "Văn thư - Phòng Văn thư - Lưu trữ: Từ chối không tiếp nhận văn bản điện tử"
    )
    recall = edxml.parse(corpus("status_cancellation_13.edxml"))
    assert isinstance(recall, StatusMessage)
    assert recall.from_.organ_id == "000.00.00.G22"  # sent by the original sender


def test_axis_returned_trace_headers_with_null_and_missing_organ_id() -> None:
    env = edxml.parse(corpus("2025_10_874e0f18-90dc-45fb-989a-65401470ba84.edxml"))
    assert isinstance(env, Envelope)
    assert [t.organ_id for t in env.trace_headers] == [None, None]
    assert [t.timestamp for t in env.trace_headers] == [
        datetime(2025, 10, 23, 16, 28, 42, tzinfo=VN_TZ),
        datetime(2025, 10, 23, 16, 28, 43, tzinfo=VN_TZ),
    ]
    assert env.header.from_.organ_id == "vxp.saas.03"
    assert env.header.document_id == "5e515fca-3627-4f2e-b517-7169acdc8bda"
    assert env.signature is None
    (att,) = env.attachments
    # Labelled application/pdf, but the SDK zipped it: unzip still finds the PDF.
    assert att.content_type == "application/pdf"
    assert edxml.attachments.looks_zipped(att)
    inner = unzip(att)
    assert inner.stream.read(5) == b"%PDF-"


def test_axis_returned_package_with_three_attachments() -> None:
    env = edxml.parse(corpus("upload_1da394ba-2117-4354-a23f-6ec3e47ba81b.edxml"))
    assert isinstance(env, Envelope)
    assert [t.organ_id for t in env.header.to] == ["vxp.saas.02"]
    assert [a.name for a in env.attachments] == ["localA.txt", "localB.txt", "localC.txt"]
    assert [unzip(a).stream.read() for a in env.attachments] == [
        b"LOCAL AGG A",
        b"LOCAL AGG B",
        b"LOCAL AGG C",
    ]
    assert env.business is not None and env.business.doc_type is BusinessDocType.NEW
    assert env.trace_headers[0].organ_id == "vxp.saas.03"


def test_axis_returned_priority_direction_type_detail() -> None:
    env = edxml.parse(corpus("2025_10_9e272474-0603-48a2-b525-9cd1af689612.edxml"))
    assert isinstance(env, Envelope)
    h = env.header
    assert h.other_info is not None
    assert h.other_info.priority is Priority.URGENT
    assert h.other_info.direction is True
    assert h.document_type is not None and h.document_type.type_detail == 1
    assert h.steering_type == 2
    (att,) = env.attachments
    assert att.data is not None and att.data.startswith(b"%PDF-1.3")  # not zipped
    assert not edxml.attachments.looks_zipped(att)


# --- quirks, on small synthetic packages ----------------------------------------------------

HEADER = """<edXML:MessageHeader>
<edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:From>
<edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To>
<edXML:DocumentId>doc-1</edXML:DocumentId>
<edXML:Subject>Thử</edXML:Subject>
</edXML:MessageHeader>"""


def package(
    header: str = HEADER,
    extra_header: str = "",
    body: str = "",
    attachments: str = "",
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<edXML:edXML xmlns:edXML="{NAMESPACE}"><edXML:edXMLEnvelope><edXML:edXMLHeader>'
        f"{header}{extra_header}</edXML:edXMLHeader>"
        f"<edXML:edXMLBody>{body}</edXML:edXMLBody></edXML:edXMLEnvelope>"
        f"{attachments}</edXML:edXML>"
    ).encode()


def test_minified_and_prefixed_equals_default_namespace_indented_with_bom_crlf() -> None:
    prefixed = package()
    other = (
        "\ufeff<?xml version='1.0' encoding='UTF-8'?>\r\n"
        f'<edXML xmlns="{NAMESPACE}">\r\n  <edXMLEnvelope>\r\n    <edXMLHeader>\r\n'
        "      <MessageHeader>\r\n"
        "        <DocumentId>doc-1</DocumentId>\r\n"  # order differs too
        "        <To>\r\n          <OrganId> 000.00.00.H41 </OrganId>\r\n        </To>\r\n"
        "        <Subject>\r\n          Thử\r\n        </Subject>\r\n"
        "        <From><OrganId>000.00.00.G22</OrganId></From>\r\n"
        "      </MessageHeader>\r\n    </edXMLHeader>\r\n  </edXMLEnvelope>\r\n</edXML>\r\n"
    ).encode()
    weird_prefix = prefixed.replace(b"edXML:", b"x:").replace(b"xmlns:edXML=", b"xmlns:x=")
    a, b, c = edxml.parse(prefixed), edxml.parse(other), edxml.parse(weird_prefix)
    assert a == b == c
    assert isinstance(a, Envelope) and a.header.to[0].organ_id == "000.00.00.H41"


def test_nested_from_reads_innermost_with_outer_fallback() -> None:
    header = HEADER.replace(
        "<edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:From>",
        "<edXML:From><edXML:Email>outer@gov.vn</edXML:Email>"
        "<edXML:From><edXML:OrganId>777.77.04.D77</edXML:OrganId>"
        "<edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:From></edXML:From>",
    )
    env = edxml.parse(package(header=header))
    assert isinstance(env, Envelope)
    assert env.header.from_.organ_id == "777.77.04.D77"
    assert env.header.from_.organ_name == "Văn phòng Chính phủ"
    assert env.header.from_.email == "outer@gov.vn"


def test_signature_in_xmldsig_namespace_is_kept_with_its_namespace() -> None:
    sig = (
        f'<Signature xmlns="{DSIG_NAMESPACE}"><SignedInfo><Reference URI="">'
        "<DigestValue>abc=</DigestValue></Reference></SignedInfo>"
        "<!-- a comment --><SignatureValue>xyz=</SignatureValue></Signature>"
    )
    env = edxml.parse(package(extra_header=sig))
    assert env.signature is not None
    # Serialised standalone: the in-scope namespace declarations travel with it.
    assert env.signature.startswith(b"<Signature ")
    assert f'xmlns="{DSIG_NAMESPACE}"'.encode() in env.signature
    assert b"<SignatureValue>xyz=</SignatureValue>" in env.signature
    assert b"<!-- a comment -->" in env.signature
    from lxml import etree

    parsed = etree.fromstring(env.signature)
    assert parsed.tag == f"{{{DSIG_NAMESPACE}}}Signature"


def test_signature_in_edxml_namespace_is_kept() -> None:
    sig = "<edXML:Signature><edXML:SignatureValue>q=</edXML:SignatureValue></edXML:Signature>"
    env = edxml.parse(package(extra_header=sig))
    assert env.signature is not None
    assert env.signature.startswith(b"<edXML:Signature")
    assert b"q=</edXML:SignatureValue>" in env.signature


def test_unknown_elements_and_foreign_namespaces_are_ignored() -> None:
    header = HEADER.replace(
        "<edXML:Subject>",
        '<edXML:Surprise a="1"><edXML:Deep>x</edXML:Deep></edXML:Surprise>'
        '<o:Subject xmlns:o="urn:other">not this one</o:Subject><edXML:Subject>',
    )
    env = edxml.parse(package(header=header, extra_header="<edXML:Later>1</edXML:Later>"))
    assert isinstance(env, Envelope)
    assert env.header.subject == "Thử"


def test_dates_in_every_style_and_timestamps_in_vn_time() -> None:
    assert parse_date("2019/01/17") == date(2019, 1, 17)
    assert parse_date("17/01/2019") == date(2019, 1, 17)
    assert parse_date("2019-01-17") == date(2019, 1, 17)
    assert parse_date("2019/01/17 08:00:00") == date(2019, 1, 17)
    assert parse_date("2019/13/01") is None
    assert parse_date("tomorrow") is None
    assert parse_timestamp("2018/09/28 17:25:11") == datetime(2018, 9, 28, 17, 25, 11, tzinfo=VN_TZ)
    assert parse_timestamp("28/09/2018 17:25:11") == datetime(2018, 9, 28, 17, 25, 11, tzinfo=VN_TZ)
    utc = parse_timestamp("2018-09-28T10:25:11Z")
    assert utc == datetime(2018, 9, 28, 17, 25, 11, tzinfo=VN_TZ)
    assert utc is not None and utc.utcoffset() == VN_TZ.utcoffset(None)
    assert parse_timestamp("2018/09/28") == datetime(2018, 9, 28, tzinfo=VN_TZ)
    assert parse_timestamp("28/09/2018 25:00:00") is None


def test_legacy_status_message_with_dd_mm_yyyy_dates() -> None:
    status = (
        f'<edXML xmlns="{NAMESPACE}"><edXMLEnvelope><edXMLHeader><MessageHeader>'
        "<From><OrganId>000.00.00.H41</OrganId></From>"
        "<ResponseFor><OrganId>000.00.00.G22</OrganId>"
        "<PromulgationDate>30/09/2015</PromulgationDate><DocumentId>d</DocumentId></ResponseFor>"
        "<StatusCode>3</StatusCode><Timestamp>20/09/2015 11:08:36</Timestamp>"
        "</MessageHeader></edXMLHeader></edXMLEnvelope></edXML>"
    ).encode()
    result = edxml.parse(status)
    assert isinstance(result, StatusMessage)
    assert result.status_code is StatusCode.ACCEPTED  # "3" read as "03"
    assert result.response_for.promulgation_date == date(2015, 9, 30)
    assert result.timestamp == datetime(2015, 9, 20, 11, 8, 36, tzinfo=VN_TZ)


def test_unreadable_non_essential_values_are_dropped_with_a_warning() -> None:
    header = HEADER.replace(
        "<edXML:Subject>",
        "<edXML:OtherInfo><edXML:Priority>abc</edXML:Priority>"
        "<edXML:PageAmount>two</edXML:PageAmount><edXML:Direction>maybe</edXML:Direction>"
        "<edXML:PromulgationAmount>3</edXML:PromulgationAmount></edXML:OtherInfo>"
        "<edXML:DueDate>someday</edXML:DueDate><edXML:Subject>",
    )
    warnings: list[Problem] = []
    env = edxml.parse(package(header=header), on_warning=warnings.append)
    assert isinstance(env, Envelope)
    assert env.header.other_info is not None
    assert env.header.other_info.priority is None
    assert env.header.other_info.page_amount is None
    assert env.header.other_info.direction is None
    assert env.header.other_info.promulgation_amount == 3
    assert env.header.due_date is None
    assert sorted(w.path for w in warnings) == [
        "MessageHeader/DueDate",
        "MessageHeader/OtherInfo/Direction",
        "MessageHeader/OtherInfo/PageAmount",
        "MessageHeader/OtherInfo/Priority",
    ]
    assert all(w.severity == "warning" and not w.is_error for w in warnings)
    out_of_range = header.replace(">abc<", ">9<")
    warnings.clear()
    env = edxml.parse(package(header=out_of_range), on_warning=warnings.append)
    assert isinstance(env, Envelope) and env.header.other_info is not None
    assert env.header.other_info.priority is None
    assert "MessageHeader/OtherInfo/Priority" in [w.path for w in warnings]


def test_missing_essential_values_raise_with_their_path() -> None:
    second_to_without_id = HEADER.replace(
        "</edXML:To>", "</edXML:To><edXML:To><edXML:OrganName>x</edXML:OrganName></edXML:To>"
    )
    with pytest.raises(InvalidValueError) as caught:
        edxml.parse(package(header=second_to_without_id))
    assert caught.value.path == "MessageHeader/To[2]/OrganId"

    no_from = HEADER.replace(
        "<edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:From>", ""
    )
    with pytest.raises(InvalidValueError) as caught:
        edxml.parse(package(header=no_from))
    assert caught.value.path == "MessageHeader/From"

    business = (
        "<edXML:TraceHeaderList><edXML:Bussiness><edXML:BussinessDocType>7"
        "</edXML:BussinessDocType></edXML:Bussiness></edXML:TraceHeaderList>"
    )
    with pytest.raises(InvalidValueError) as caught:
        edxml.parse(package(extra_header=business))
    assert caught.value.path == "TraceHeaderList/Bussiness/BussinessDocType"

    status = HEADER.replace(
        "<edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To>",
        "<edXML:StatusCode>99</edXML:StatusCode>",
    )
    with pytest.raises(InvalidValueError) as caught:
        edxml.parse(package(header=status))
    assert caught.value.path == "MessageHeader/StatusCode"
    assert "99" in str(caught.value)


def test_status_code_with_to_is_a_document_package() -> None:
    header = HEADER.replace(
        "<edXML:Subject>", "<edXML:StatusCode>01</edXML:StatusCode><edXML:Subject>"
    )
    assert isinstance(edxml.parse(package(header=header)), Envelope)


def test_not_edxml_root_and_missing_header() -> None:
    with pytest.raises(NotEdxmlError) as caught:
        edxml.parse(b"<html><body>hello</body></html>")
    assert "<html>" in str(caught.value)
    with pytest.raises(NotEdxmlError):
        edxml.parse(f'<edXML xmlns="{NAMESPACE}"><edXMLEnvelope/></edXML>'.encode())
    with pytest.raises(NotEdxmlError):
        edxml.parse(b'<edXML xmlns="urn:something-else"/>')


def test_attachment_children_in_no_namespace_and_cid_matching() -> None:
    body = (
        "<edXML:edXMLManifest version='1.0'><edXML:Reference>"
        "<edXML:ContentId>cid:abc</edXML:ContentId>"
        "<edXML:ContentType>application/pdf</edXML:ContentType>"
        "<edXML:AttachmentName>to-trinh.pdf</edXML:AttachmentName>"
        "<edXML:Description>Tờ trình</edXML:Description>"
        "</edXML:Reference></edXML:edXMLManifest>"
    )
    attachments = (
        '<AttachmentEncoded xmlns=""><Attachment>'
        "<ContentId>abc</ContentId>"  # no cid: here
        "<ContentTransferEncoded>\n  aGVs\n  bG8=\n</ContentTransferEncoded>"
        "</Attachment></AttachmentEncoded>"
    )
    env = edxml.parse(package(body=body, attachments=attachments))
    assert isinstance(env, Envelope)
    (att,) = env.attachments
    assert att.content_id == "abc"  # as the attachment said it
    assert env.manifest[0].content_id == "cid:abc"  # as the manifest said it
    assert att.data == b"hello"
    assert att.size == 5
    # Fields the attachment left out come from the matching manifest entry.
    assert att.name == "to-trinh.pdf"
    assert att.content_type == "application/pdf"
    assert att.description == "Tờ trình"


def test_str_that_looks_like_xml_is_not_taken_for_a_path() -> None:
    with pytest.raises(TypeError):
        edxml.parse(package().decode())


def test_file_object_is_read_from_its_position() -> None:
    stream = io.BytesIO(b"junk" + package())
    stream.seek(4)
    assert isinstance(edxml.parse(stream), Envelope)
