"""The canonical writer: one spelling per package, streamed attachments, well-formed always."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

import edxml
from edxml import (
    NAMESPACE,
    VN_TZ,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    Envelope,
    InvalidValueError,
    ManifestReference,
    MessageHeader,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)
from edxml.errors import UnsafeXmlError
from edxml.model import DSIG_NAMESPACE
from edxml.writer import BASE64_LINE, CHUNK_SIZE, canonical_signature, format_timestamp

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "corpus" / "edxml"
if not CORPUS.is_dir():  # before the reader's copy lands, read the shared corpus directly
    CORPUS = Path("/work/shared/corpus/edxml")
NOT_WELL_FORMED = {"sdk-samples/edoc.edxml"}
CORPUS_FILES = sorted(
    p.relative_to(CORPUS).as_posix()
    for p in CORPUS.rglob("*.edxml")
    if p.relative_to(CORPUS).as_posix() not in NOT_WELL_FORMED
)


def corpus_bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def minimal_envelope(**changes: object) -> Envelope:
    header = MessageHeader(
        from_=Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
        to=(Organization("000.00.00.H41"),),
        document_id="000.00.00.G22,2024/03/01,12/VPCP-TTĐT",
        subject="V/v thử nghiệm",
    )
    return dataclasses.replace(Envelope(header=header), **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- corpus stability


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_serialize_is_stable_on_every_corpus_file(name: str) -> None:
    first = edxml.serialize(edxml.parse(corpus_bytes(name)))
    second = edxml.serialize(edxml.parse(first))
    assert first == second
    assert first.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<edXML:edXML ')


def test_the_corpus_is_all_there() -> None:
    # 24 files, one of which is not well-formed: guard against a silently empty parametrisation.
    assert len(CORPUS_FILES) == 23


# ---------------------------------------------------------------------------- spellings


def _rebuild(data: bytes, prefix: str | None) -> bytes:
    """The same document with every edXML element under one prefix (None: default namespace)."""
    source = etree.fromstring(data)

    def copy(el: etree._Element, parent: etree._Element | None) -> etree._Element:
        if parent is None:
            new = etree.Element(el.tag, nsmap={prefix: NAMESPACE})
        else:
            new = etree.SubElement(parent, el.tag)
        for key, value in el.attrib.items():
            new.set(key, value)
        new.text, new.tail = el.text, el.tail
        for child in el:
            if isinstance(child.tag, str):
                copy(child, new)
        return new

    return etree.tostring(copy(source, None), xml_declaration=True, encoding="UTF-8")


def _other_prefix(data: bytes) -> bytes:
    return _rebuild(data, "q")


def _default_namespace(data: bytes) -> bytes:
    return _rebuild(data, None)


def _crlf(data: bytes) -> bytes:
    """Swap line endings: most corpus files use CRLF, some LF."""
    if b"\r\n" in data:
        return data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n")


def _bom(data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data


def _minified(data: bytes) -> bytes:
    root = etree.fromstring(data)
    for el in root.iter():
        if el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    return etree.tostring(root, encoding="UTF-8")


def _vietnamese_dates(data: bytes) -> bytes:
    root = etree.fromstring(data)
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname in (
            "PromulgationDate",
            "DueDate",
            "Timestamp",
        ):
            el.text = re.sub(r"^(\d{4})/(\d{2})/(\d{2})", r"\3/\2/\1", el.text or "")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _shuffled(data: bytes) -> bytes:
    """Reverse the order of differently named siblings (same-named ones keep their order)."""
    root = etree.fromstring(data)
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or etree.QName(el).localname == "Signature":
            continue
        if any(etree.QName(a).localname == "Signature" for a in el.iterancestors()):
            continue
        children = [c for c in el if isinstance(c.tag, str)]
        names: list[str] = []
        for c in children:
            if etree.QName(c).localname not in names:
                names.append(etree.QName(c).localname)
        order = {name: i for i, name in enumerate(reversed(names))}
        for c in children:
            el.remove(c)
        for c in sorted(children, key=lambda c: order[etree.QName(c).localname]):
            el.append(c)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _rewrapped_base64(data: bytes) -> bytes:
    def wrap(match: re.Match[bytes]) -> bytes:
        text = re.sub(rb"\s+", b"", match.group(2))
        lines = [text[i : i + 64] for i in range(0, len(text), 64)]
        return match.group(1) + b"\r\n" + b"\r\n".join(lines) + b"\r\n" + match.group(3)

    return re.sub(
        rb"(<[^>]*ContentTransferEncoded[^>]*>)([^<]*)(</[^>]*ContentTransferEncoded>)", wrap, data
    )


def _signature_in_dsig_namespace(data: bytes) -> bytes:
    root = etree.fromstring(data)
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).localname == "Signature":
            for sub in el.iter():
                sub.tag = f"{{{DSIG_NAMESPACE}}}{etree.QName(sub).localname}"
    etree.cleanup_namespaces(root, top_nsmap={"ds": DSIG_NAMESPACE})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


SPELLINGS: dict[str, Callable[[bytes], bytes]] = {
    "other-prefix": _other_prefix,
    "default-namespace": _default_namespace,
    "line-endings": _crlf,
    "bom": _bom,
    "minified": _minified,
    "dd/MM/yyyy": _vietnamese_dates,
    "shuffled": _shuffled,
    "base64-64-columns": _rewrapped_base64,
    "signature-in-xmldsig": _signature_in_dsig_namespace,
    "all-at-once": lambda d: _bom(
        _crlf(_shuffled(_vietnamese_dates(_minified(_other_prefix(_rewrapped_base64(d))))))
    ),
}
SPELLED_DOCUMENTS = [
    "sdk-samples/edoc_update.edxml",
    "sdk-samples/edoc_replacement.edxml",
    "axis-returned/2025_10_9e272474-0603-48a2-b525-9cd1af689612.edxml",
    "axis-returned/upload_1f881896-6e3a-4a5f-87f1-c380878e148e.edxml",
]
SPELLED = [(name, spelling) for name in SPELLED_DOCUMENTS for spelling in sorted(SPELLINGS)] + [
    # A status message has no attachment to rewrap.
    ("sdk-samples/status_cancellation_13.edxml", spelling)
    for spelling in sorted(SPELLINGS)
    if spelling != "base64-64-columns"
]


@pytest.mark.parametrize(("name", "spelling"), SPELLED)
def test_the_same_package_spelled_differently_gives_the_same_bytes(
    name: str, spelling: str
) -> None:
    original = corpus_bytes(name)
    variant = SPELLINGS[spelling](original)
    assert variant != original
    assert edxml.serialize(edxml.parse(variant)) == edxml.serialize(edxml.parse(original))


# ---------------------------------------------------------------------------- the form


def _full_envelope(data: bytes = b"%PDF-1.7 hello") -> Envelope:
    return minimal_envelope(
        header=MessageHeader(
            from_=Organization("000.00.00.G22", organ_name="Văn phòng Chính phủ"),
            to=(Organization("000.00.00.H41"), Organization("000.00.14.H20")),
            document_id="000.00.00.G22,2024/03/01,12/VPCP-TTĐT",
            subject="V/v thử nghiệm",
            code=Code("12", "VPCP-TTĐT"),
            promulgation_info=PromulgationInfo("Hà Nội", dt.date(2024, 3, 1)),
            other_info=OtherInfo(priority=Priority.EXPRESS, direction=False),
            to_places=("Các bộ",),
        ),
        trace_headers=(TraceHeader("000.00.00.G22", dt.datetime(2024, 3, 1, 9, 30, 0)),),
        manifest=(ManifestReference("cid:1", "application/pdf", None, "a.pdf"),),
        attachments=(Attachment("1", "a.pdf", None, "application/pdf", data=data),),
    )


def test_canonical_form_details() -> None:
    out = edxml.serialize(_full_envelope())
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert not out.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in out
    assert out.endswith(b"</edXML:edXML>\n")
    assert out.count(b"xmlns") == 1  # the namespace is declared once, on the root
    root = etree.fromstring(out)
    for el in root.iter():
        assert etree.QName(el).namespace == NAMESPACE
        assert el.prefix == "edXML"
    # Two-space indentation, one element per line.
    assert b"\n    <edXML:edXMLHeader>\n      <edXML:MessageHeader>\n" in out
    assert b"<edXML:PromulgationDate>2024/03/01</edXML:PromulgationDate>" in out
    assert b"<edXML:Timestamp>2024/03/01 09:30:00</edXML:Timestamp>" in out
    assert b"<edXML:ContentId>cid:1</edXML:ContentId>" in out  # attachment and manifest
    assert out.count(b"cid:1<") == 2
    assert b"<edXML:Priority>3</edXML:Priority>" in out
    assert b"<edXML:Direction>false</edXML:Direction>" in out
    # Absent optional elements are not written at all.
    for absent in (b"DueDate", b"SignerInfo", b"Content>", b"Bussiness", b"Signature"):
        assert absent not in out
    # Order: MessageHeader, TraceHeaderList, then body, then AttachmentEncoded after the envelope.
    positions = [
        out.index(tag)
        for tag in (
            b"<edXML:From>",
            b"<edXML:To>",
            b"<edXML:DocumentId>",
            b"<edXML:Code>",
            b"<edXML:PromulgationInfo>",
            b"<edXML:Subject>",
            b"<edXML:OtherInfo>",
            b"<edXML:ToPlaces>",
            b"<edXML:TraceHeaderList>",
            b"<edXML:edXMLBody>",
            b"</edXML:edXMLEnvelope>",
            b"<edXML:AttachmentEncoded>",
        )
    ]
    assert positions == sorted(positions)


def test_write_streams_the_same_bytes_as_serialize() -> None:
    env = _full_envelope()
    out = io.BytesIO()
    edxml.write(env, out)
    assert out.getvalue() == edxml.serialize(env)


def test_status_message_form() -> None:
    status = StatusMessage(
        from_=Organization("000.00.00.H41"),
        response_for=ResponseFor(
            "000.00.00.G22", "12/VPCP-TTĐT", dt.date(2024, 3, 1), "000.00.00.G22,2024/03/01,12"
        ),
        status_code=StatusCode.ASSIGNED,
        staff_info=StaffInfo("Văn thư", "Nguyễn Thị A", "0912", "a@example.vn"),
        description="Phân công xử lý",
        timestamp=dt.datetime(2024, 3, 2, 8, 0, 5, tzinfo=dt.UTC),
    )
    out = edxml.serialize(status)
    assert b"<edXML:StatusCode>04</edXML:StatusCode>" in out
    assert b"<edXML:Timestamp>2024/03/02 15:00:05</edXML:Timestamp>" in out  # UTC -> +07:00
    assert b"edXMLBody" not in out and b"AttachmentEncoded" not in out
    staff = out[out.index(b"<edXML:StaffInfo>") : out.index(b"</edXML:StaffInfo>")]
    assert [m.decode() for m in re.findall(rb"<edXML:(\w+)>", staff)] == [
        "StaffInfo",
        "Department",
        "Staff",
        "Mobile",
        "Email",
    ]
    back = edxml.parse(out)
    assert back == status


def test_timestamps_are_written_in_vietnamese_time() -> None:
    utc = dt.datetime(2024, 12, 31, 20, 15, 0, tzinfo=dt.UTC)
    assert format_timestamp(utc) == "2025/01/01 03:15:00"
    paris = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert format_timestamp(paris) == "2024/06/01 17:00:00"
    assert format_timestamp(dt.datetime(2024, 6, 1, 12, 0, 0)) == "2024/06/01 12:00:00"
    assert format_timestamp(dt.datetime(999, 1, 2, 3, 4, 5)) == "0999/01/02 03:04:05"


def test_business_is_written_inside_trace_header_list_after_the_trace_headers() -> None:
    env = minimal_envelope(
        trace_headers=(TraceHeader("000.00.00.G22", dt.datetime(2024, 3, 1, 9, 0, tzinfo=VN_TZ)),),
        business=Business(BusinessDocType.UPDATE, "Cập nhật", "000.00.00.G22,2024/02/01,1/X"),
    )
    out = edxml.serialize(env)
    trace = out[out.index(b"<edXML:TraceHeaderList>") : out.index(b"</edXML:TraceHeaderList>")]
    assert trace.index(b"</edXML:TraceHeader>") < trace.index(b"<edXML:Bussiness>")
    assert b"<edXML:BussinessDocType>2</edXML:BussinessDocType>" in trace
    assert edxml.parse(out) == env


# ---------------------------------------------------------------------------- text


def test_text_is_escaped_and_reads_back_unchanged() -> None:
    nasty = "A & B <b>bold</b> \"quoted\" 'single' ]]> tab\there\r\nline2 — Việt"
    env = minimal_envelope(
        header=MessageHeader(
            from_=Organization("000.00.00.G22", organ_name=nasty),
            to=(Organization("000.00.00.H41"),),
            document_id="id",
            subject=nasty,
        )
    )
    out = edxml.serialize(env)
    etree.fromstring(out)  # well-formed
    assert b"A &amp; B &lt;b&gt;bold&lt;/b&gt;" in out
    assert b"]]&gt;" in out
    assert b"&#13;" in out  # a carriage return in a value survives XML line-end normalisation
    back = edxml.parse(out)
    assert isinstance(back, Envelope)
    assert back.header.subject == nasty
    assert back.header.from_.organ_name == nasty


@pytest.mark.parametrize(
    "bad", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\ufffe", "\uffff"]
)
def test_characters_xml_forbids_raise_instead_of_writing_broken_xml(bad: str) -> None:
    env = minimal_envelope(
        header=MessageHeader(
            from_=Organization("000.00.00.G22"),
            to=(Organization("000.00.00.H41"), Organization("000.00.00.H14", organ_name=bad)),
            document_id="id",
            subject="s",
        )
    )
    out = io.BytesIO()
    with pytest.raises(InvalidValueError) as info:
        edxml.write(env, out)
    assert info.value.path == "MessageHeader/To[2]/OrganName"
    assert "cannot be written" in str(info.value)
    assert out.getvalue() == b""  # nothing was written


def test_bad_characters_in_attachment_metadata_fail_before_any_output() -> None:
    env = _full_envelope()
    env = minimal_envelope(
        header=env.header,
        manifest=env.manifest,
        attachments=(Attachment("1", "a\x07.pdf", data=b"x"),),
    )
    out = io.BytesIO()
    with pytest.raises(InvalidValueError) as info:
        edxml.write(env, out)
    assert info.value.path == "AttachmentEncoded/Attachment[1]/AttachmentName"
    assert out.getvalue() == b""


def test_empty_values_are_written_as_empty_elements() -> None:
    env = minimal_envelope(
        header=MessageHeader(
            from_=Organization("000.00.00.G22", fax=""),
            to=(Organization("000.00.00.H41"),),
            document_id="id",
            subject="s",
        )
    )
    out = edxml.serialize(env)
    assert b"<edXML:Fax/>" in out


def test_a_document_without_recipient_is_refused() -> None:
    env = minimal_envelope(
        header=MessageHeader(from_=Organization("000.00.00.G22"), to=(), subject="s")
    )
    with pytest.raises(InvalidValueError, match="at least one recipient"):
        edxml.serialize(env)


def test_an_attachment_streamed_to_a_sink_cannot_be_written() -> None:
    env = minimal_envelope(
        manifest=(ManifestReference("cid:1"),),
        attachments=(Attachment("cid:1", "a.pdf", size=10, sha256="00"),),
    )
    out = io.BytesIO()
    with pytest.raises(InvalidValueError, match="not available") as info:
        edxml.write(env, out)
    assert info.value.path == "AttachmentEncoded/Attachment[1]"
    assert out.getvalue() == b""


def test_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError):
        edxml.serialize("not a package")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- attachments


def _base64_block(out: bytes) -> list[bytes]:
    start = out.index(b"<edXML:ContentTransferEncoded>\n") + len(
        b"<edXML:ContentTransferEncoded>\n"
    )
    end = out.index(b"</edXML:ContentTransferEncoded>")
    return out[start:end].split(b"\n")[:-1]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 56, 57, 58, 114, 1000, CHUNK_SIZE + 1])
def test_base64_lines_are_76_characters(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    out = edxml.serialize(_full_envelope(data))
    lines = _base64_block(out)
    assert all(len(line) == BASE64_LINE for line in lines[:-1])
    assert all(0 < len(line) <= BASE64_LINE for line in lines)
    assert base64.b64decode(b"".join(lines)) == data
    back = edxml.parse(out)
    assert isinstance(back, Envelope)
    assert back.attachments[0].data == data


_PATTERN = bytes(range(256))


class _MeteredStream(io.RawIOBase):
    """A large stream produced on demand; records every read and can give short reads."""

    def __init__(self, size: int, short: int | None = None) -> None:
        self.size, self.pos, self.short = size, 0, short
        self.reads: list[int] = []
        self.closed_by_writer = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        assert n > 0, "the writer must never read an attachment whole"
        self.reads.append(n)
        if self.short is not None:
            n = min(n, self.short)
        n = min(n, self.size - self.pos)
        start = self.pos % 256
        chunk = (_PATTERN * (n // 256 + 2))[start : start + n]
        self.pos += n
        return chunk

    def close(self) -> None:
        self.closed_by_writer = True
        super().close()


class _MeteredSink(io.RawIOBase):
    def __init__(self) -> None:
        self.total = 0
        self.largest = 0
        self.tail = b""

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.total += len(b)
        self.largest = max(self.largest, len(b))
        self.tail = (self.tail + bytes(b))[-200:]
        return len(b)


def test_large_attachments_stream_in_chunks() -> None:
    size = 20 * CHUNK_SIZE + 12345
    streams: list[_MeteredStream] = []

    def opener() -> _MeteredStream:
        streams.append(_MeteredStream(size))
        return streams[-1]

    env = minimal_envelope(
        manifest=(ManifestReference("cid:big"),),
        attachments=(Attachment("cid:big", "big.bin", opener=opener),),  # type: ignore[arg-type]
    )
    sink = _MeteredSink()
    edxml.write(env, sink)  # type: ignore[arg-type]
    (stream,) = streams
    assert stream.pos == size and stream.closed_by_writer
    assert set(stream.reads) == {CHUNK_SIZE} and CHUNK_SIZE % 3 == 0
    # No write holds more than about one encoded chunk, far less than the attachment.
    assert sink.largest <= CHUNK_SIZE * 4 // 3 + CHUNK_SIZE // 57 + 1
    assert sink.largest < size // 10
    assert sink.tail.endswith(b"</edXML:AttachmentEncoded>\n</edXML:edXML>\n")


def test_short_reads_give_the_same_bytes() -> None:
    size = 3 * 57 * 100 + 7
    whole = _MeteredStream(size).read(size)
    streamed = minimal_envelope(
        manifest=(ManifestReference("cid:1"),),
        attachments=(Attachment("1", opener=lambda: _MeteredStream(size, short=1000)),),  # type: ignore[arg-type,return-value]
    )
    in_memory = minimal_envelope(
        manifest=(ManifestReference("cid:1"),), attachments=(Attachment("1", data=whole),)
    )
    assert edxml.serialize(streamed) == edxml.serialize(in_memory)


# ---------------------------------------------------------------------------- signature


_EDXML_NS_SIGNATURE = f"""<Signature xmlns="{NAMESPACE}">
  <SignedInfo>
    <!-- a comment -->
    <CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315" />
    <Reference URI="">
      <DigestValue>FwgIqsSYJshUS2+wlOM61L+q7Aw=</DigestValue>
    </Reference>
  </SignedInfo>
  <SignatureValue>AAAA</SignatureValue>
</Signature>""".encode()

_DSIG_NS_SIGNATURE = (
    f'<ds:Signature xmlns:ds="{DSIG_NAMESPACE}" xmlns:unused="urn:x"><ds:SignedInfo>'
    '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315">'
    '</ds:CanonicalizationMethod><ds:Reference URI=""><ds:DigestValue>'
    "FwgIqsSYJshUS2+wlOM61L+q7Aw=</ds:DigestValue></ds:Reference></ds:SignedInfo>"
    "<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>"
).encode()


def test_signature_spellings_canonicalise_to_the_same_bytes() -> None:
    a = canonical_signature(_EDXML_NS_SIGNATURE)
    b = canonical_signature(_DSIG_NS_SIGNATURE)
    assert a == b
    assert a.startswith(f'<Signature xmlns="{DSIG_NAMESPACE}"><SignedInfo>'.encode())
    assert b"comment" not in a and b"urn:x" not in a
    root = etree.fromstring(a)
    assert all(etree.QName(el).namespace == DSIG_NAMESPACE for el in root.iter())


def test_signature_is_written_after_trace_header_list_in_the_xmldsig_namespace() -> None:
    env = minimal_envelope(
        trace_headers=(TraceHeader("000.00.00.G22", dt.datetime(2024, 3, 1, 9, 0, 0)),),
        signature=_EDXML_NS_SIGNATURE,
    )
    out = edxml.serialize(env)
    assert out.index(b"</edXML:TraceHeaderList>") < out.index(b"<Signature ")
    assert out.index(b"</Signature>") < out.index(b"</edXML:edXMLHeader>")
    header = etree.fromstring(out).find(f"{{{NAMESPACE}}}edXMLEnvelope/{{{NAMESPACE}}}edXMLHeader")
    assert header is not None
    assert etree.QName(header[-1]).text == f"{{{DSIG_NAMESPACE}}}Signature"
    assert edxml.serialize(dataclasses.replace(env, signature=_DSIG_NS_SIGNATURE)) == out


@pytest.mark.parametrize(
    "bad",
    [b"<Signature", b"<Other xmlns='urn:x'/>", b"<x:Signature xmlns:x='urn:other'/>"],
)
def test_a_signature_that_is_not_one_is_refused(bad: bytes) -> None:
    with pytest.raises(InvalidValueError) as info:
        edxml.serialize(minimal_envelope(signature=bad))
    assert info.value.path == "Signature"


def test_a_signature_made_on_canonical_bytes_survives_a_round_trip() -> None:
    dsig = pytest.importorskip("edxml.dsig")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edxml writer test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    signed = dsig.sign_envelope(edxml.serialize(_full_envelope()), key, cert)
    assert dsig.verify_signature(signed).result == "valid"
    rewritten = edxml.serialize(edxml.parse(signed))
    assert dsig.verify_signature(rewritten).result == "valid"
    assert edxml.serialize(edxml.parse(rewritten)) == rewritten


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (
            minimal_envelope(
                header=dataclasses.replace(
                    minimal_envelope().header,
                    other_info=OtherInfo(priority=7),  # type: ignore[arg-type]
                )
            ),
            "MessageHeader/OtherInfo/Priority",
        ),
        (
            minimal_envelope(business=Business(doc_type=9)),  # type: ignore[arg-type]
            "TraceHeaderList/Bussiness/BussinessDocType",
        ),
        (
            StatusMessage(
                from_=Organization("000.00.00.H41"),
                response_for=ResponseFor(document_id="x"),
                status_code="07",  # type: ignore[arg-type]
            ),
            "MessageHeader/StatusCode",
        ),
    ],
)
def test_values_outside_the_code_tables_are_refused(
    obj: Envelope | StatusMessage, path: str
) -> None:
    # The schema allows only the code tables' values: the writer never writes anything else.
    with pytest.raises(InvalidValueError) as info:
        edxml.serialize(obj)
    assert info.value.path == path


def test_signature_with_a_doctype_is_refused() -> None:
    data = b'<!DOCTYPE Signature [<!ENTITY e "x">]>' + _DSIG_NS_SIGNATURE
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        canonical_signature(data)
