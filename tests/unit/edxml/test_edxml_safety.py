"""edxml.parse refuses hostile input quickly, with an EdxmlError and a plain message.

No timing asserts: each case is built so that a reader that did the unsafe thing (expand
entities, fetch a URL, read 2 GB) would hang or blow up the test run instead of passing.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import edxml
from edxml import (
    EdxmlError,
    LimitExceededError,
    Limits,
    NotWellFormedError,
    UnsafeXmlError,
)
from edxml.model import NAMESPACE

GB = 1_000_000_000


def minimal(inner: str = "") -> bytes:
    return (
        f'<edXML xmlns="{NAMESPACE}"><edXMLEnvelope><edXMLHeader><MessageHeader>'
        "<From><OrganId>000.00.00.G22</OrganId></From>"
        "<To><OrganId>000.00.00.H41</OrganId></To>"
        f"<Subject>s{inner}</Subject></MessageHeader></edXMLHeader></edXMLEnvelope></edXML>"
    ).encode()


def test_minimal_package_parses() -> None:
    assert isinstance(edxml.parse(minimal()), edxml.Envelope)


def test_xxe_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        f'<edXML xmlns="{NAMESPACE}"><x>&xxe;</x></edXML>'
    ).encode()
    with pytest.raises(UnsafeXmlError) as caught:
        edxml.parse(doc)
    assert "DOCTYPE" in str(caught.value)
    assert "TOP SECRET" not in str(caught.value)


def test_network_dtd_is_refused() -> None:
    doc = b'<?xml version="1.0"?><!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/evil.dtd">' + minimal()
    with pytest.raises(UnsafeXmlError):
        edxml.parse(doc)


def test_billion_laughs_is_refused() -> None:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    doc = f"<!DOCTYPE edXML [{entities}]>".encode() + minimal("&lol9;")
    with pytest.raises(UnsafeXmlError):
        edxml.parse(doc)


def test_undeclared_entity_is_not_well_formed() -> None:
    with pytest.raises(NotWellFormedError) as caught:
        edxml.parse(minimal("&nope;"))
    assert "nope" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [b"", b"   \n", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", b"\x00\x01\x02\xff" * 100, b"{}"],
    ids=["empty", "blank", "pdf", "binary", "json"],
)
def test_non_xml_and_empty_input(data: bytes) -> None:
    with pytest.raises(NotWellFormedError) as caught:
        edxml.parse(data)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300


def test_empty_file_and_empty_stream(tmp_path: Path) -> None:
    empty = tmp_path / "empty.edxml"
    empty.write_bytes(b"")
    for source in (empty, io.BytesIO()):
        with pytest.raises(NotWellFormedError, match="empty"):
            edxml.parse(source)  # type: ignore[arg-type]


def test_truncated_package_names_the_open_element() -> None:
    data = minimal()
    with pytest.raises(NotWellFormedError) as caught:
        edxml.parse(data[: data.index(b"<Subject>")])
    assert "ends while element <To>" in str(caught.value) or "still open" in str(caught.value)


def test_depth_limit() -> None:
    deep = "<a>" * 200 + "</a>" * 200
    with pytest.raises(LimitExceededError, match="deeper than 64"):
        edxml.parse(minimal(deep))
    edxml.parse(minimal("<a>" * 20 + "</a>" * 20), limits=Limits(max_depth=64))


def test_element_count_limit() -> None:
    many = "<i/>" * 5_000
    with pytest.raises(LimitExceededError, match="more than 1000 elements"):
        edxml.parse(minimal(many), limits=Limits(max_elements=1000))


def test_text_length_limit() -> None:
    with pytest.raises(LimitExceededError) as caught:
        edxml.parse(minimal("x" * 5000), limits=Limits(max_text=1000))
    assert "Subject" in caught.value.path


def test_attachment_count_limit() -> None:
    atts = "<Attachment><ContentId>c</ContentId></Attachment>" * 5
    doc = minimal().replace(
        b"</edXML>", f"<AttachmentEncoded>{atts}</AttachmentEncoded></edXML>".encode()
    )
    with pytest.raises(LimitExceededError, match="more than 3 attachments"):
        edxml.parse(doc, limits=Limits(max_attachments=3))


class LazyStream(io.RawIOBase):
    """A stream of ``size`` bytes made on demand: an edXML start, then endless base64.

    ``seekable`` controls whether it can tell its size without being read. It counts the bytes
    handed out so the test can prove the reader stopped early.
    """

    def __init__(self, size: int, *, seekable: bool) -> None:
        self.size = size
        self._seekable = seekable
        self.pos = 0
        self.handed_out = 0
        self.head = minimal().replace(
            b"</edXML>",
            b"<AttachmentEncoded><Attachment><ContentId>c</ContentId><ContentTransferEncoded>",
        )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.size - self.pos)
        if n <= 0:
            return 0
        chunk = bytearray(b"QUFB" * (n // 4 + 1))[:n]
        if self.pos < len(self.head):
            part = self.head[self.pos : self.pos + n]
            chunk[: len(part)] = part
        buffer[:n] = chunk
        self.pos += n
        self.handed_out += n
        return n


def test_two_gb_body_refused_up_front_by_default_limit() -> None:
    stream = LazyStream(2 * GB, seekable=True)
    with pytest.raises(LimitExceededError, match="larger than the limit"):
        edxml.parse(stream, sink=edxml.DiscardSink())  # type: ignore[arg-type]
    assert stream.handed_out == 0


def test_two_gb_unseekable_body_stops_at_the_limit_while_streaming() -> None:
    stream = LazyStream(2 * GB, seekable=False)
    with pytest.raises(LimitExceededError):
        edxml.parse(
            stream,  # type: ignore[arg-type]
            sink=edxml.DiscardSink(),
            limits=Limits(max_size=8 * 1024 * 1024),
        )
    assert stream.handed_out <= 9 * 1024 * 1024


def test_two_gb_file_refused_before_reading(tmp_path: Path) -> None:
    sparse = tmp_path / "big.edxml"
    with sparse.open("wb") as handle:  # a sparse file: no 2 GB written to disk
        handle.write(minimal()[:50])
        handle.truncate(2 * GB)
    with pytest.raises(LimitExceededError):
        edxml.parse(sparse)


def test_two_gb_bytes_refused_before_parsing() -> None:
    data = minimal() + b" " * 2048
    with pytest.raises(LimitExceededError):
        edxml.parse(data, limits=Limits(max_size=1024))


def test_in_memory_attachment_limit_asks_for_a_sink() -> None:
    payload = "QUFB" * 3000  # 9000 decoded bytes
    doc = minimal().replace(
        b"</edXML>",
        (
            "<AttachmentEncoded><Attachment><ContentId>c</ContentId>"
            f"<ContentTransferEncoded>{payload}</ContentTransferEncoded>"
            "</Attachment></AttachmentEncoded></edXML>"
        ).encode(),
    )
    with pytest.raises(LimitExceededError, match="sink"):
        edxml.parse(doc, limits=Limits(max_inline_attachment=4096))
    env = edxml.parse(doc, sink=edxml.DiscardSink(), limits=Limits(max_inline_attachment=4096))
    assert isinstance(env, edxml.Envelope)
    assert env.attachments[0].size == 9000 and env.attachments[0].data is None


def test_every_refusal_is_an_edxml_error_with_a_one_line_message() -> None:
    cases = [
        b"",
        b"<!DOCTYPE x []><x/>",
        b"<x>",
        b"<a/>",
        minimal("<a>" * 100 + "</a>" * 100),
    ]
    for data in cases:
        with pytest.raises(EdxmlError) as caught:
            edxml.parse(data)
        assert "\n" not in str(caught.value)
