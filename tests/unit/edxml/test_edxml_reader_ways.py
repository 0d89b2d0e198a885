"""The two ways edxml.parse reads: the tree way (small inputs) and the streaming way.

Small inputs are parsed by libxml2 into a tree and read from it; larger ones stream through a
parser target. Both must give the same envelope, the same warnings, the same sink calls and the
same errors, on the whole corpus and on every quirk; the tree way must be as safe. Each case
runs both ways (``tree_max_size=0`` forces streaming, ``tree_max_size=max_size`` the tree way
whatever the size) and compares everything.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edxml
from edxml import EdxmlError, Limits, Problem, UnsafeXmlError
from edxml import reader as reader_module
from edxml.attachments import AttachmentMeta, Opener, Writable
from edxml.model import DSIG_NAMESPACE, NAMESPACE, Attachment

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "edxml"
CORPUS_FILES = sorted(CORPUS.rglob("*.edxml"))
BROKEN = CORPUS / "sdk-samples" / "edoc.edxml"

STREAM = Limits(tree_max_size=0)
TREE = Limits(tree_max_size=Limits().max_size)


class LogSink:
    """Records every sink call, keeps the bytes, returns an opener."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.buffers: dict[int, io.BytesIO] = {}

    def open(self, meta: AttachmentMeta) -> Writable:
        self.log.append(("open", meta))
        buffer = self.buffers[meta.index] = io.BytesIO()
        return buffer

    def close(
        self, meta: AttachmentMeta, writer: Writable, *, size: int, sha256: str
    ) -> Opener | None:
        value = self.buffers[meta.index].getvalue()
        self.log.append(("close", meta, size, sha256, value))
        return lambda: io.BytesIO(value)

    def abort(self, meta: AttachmentMeta, writer: Writable) -> None:
        self.log.append(("abort", meta))


def snapshot(value: object) -> object:
    """A comparable picture of a parse result (an Attachment's opener replaced by its bytes)."""
    if isinstance(value, Attachment):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        opener = fields.pop("opener")
        fields["opened"] = opener().read() if opener is not None else None
        return ("Attachment", fields)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            {f.name: snapshot(getattr(value, f.name)) for f in dataclasses.fields(value)},
        )
    if isinstance(value, tuple):
        return tuple(snapshot(v) for v in value)
    return value


def outcome(data: bytes, limits: Limits, *, with_sink: bool) -> tuple[Any, ...]:
    """Everything a caller can observe of one parse."""
    warnings: list[Problem] = []
    sink = LogSink() if with_sink else None
    try:
        result = edxml.parse(data, sink=sink, limits=limits, on_warning=warnings.append)
    except EdxmlError as exc:
        return (
            "error",
            type(exc).__name__,
            str(exc),
            exc.path,
            exc.line,
            warnings,
            sink.log if sink else None,
        )
    return ("ok", snapshot(result), warnings, sink.log if sink else None)


def tree_way(data: bytes, limits: Limits = TREE) -> str:
    """Which way a small input takes: 'tree', 'fallback' or the error the tree way raised."""
    try:
        reader_module._parse_tree(data, limits, None, None)
    except reader_module._Fallback:
        return "fallback"
    except EdxmlError as exc:
        return type(exc).__name__
    return "tree"


def assert_same(data: bytes, limits: Limits = TREE) -> tuple[Any, ...]:
    streaming = dataclasses.replace(limits, tree_max_size=0)
    tree = dataclasses.replace(limits, tree_max_size=limits.max_size)
    for with_sink in (False, True):
        by_tree = outcome(data, tree, with_sink=with_sink)
        by_stream = outcome(data, streaming, with_sink=with_sink)
        assert by_tree == by_stream
    return by_tree


# --- corpus -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_reads_the_same_both_ways(path: Path) -> None:
    data = path.read_bytes()
    result = assert_same(data)
    if path == BROKEN:
        assert result[0] == "error" and result[1] == "NotWellFormedError"
        assert tree_way(data) == "fallback"  # the streaming way words the error
    else:
        assert result[0] == "ok"
        assert tree_way(data) == "tree"  # the fast way really is taken


def test_small_inputs_of_every_kind_take_the_tree_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (CORPUS / "sdk-samples" / "edoc_new.edxml").read_bytes()
    path = tmp_path / "p.edxml"
    path.write_bytes(data)
    seen: list[int] = []
    real = reader_module._parse_tree

    def spy(raw: bytes, *args: Any) -> Any:
        seen.append(len(raw))
        return real(raw, *args)

    monkeypatch.setattr(reader_module, "_parse_tree", spy)
    expected = snapshot(edxml.parse(data))
    handle = io.BytesIO(b"junk" + data)
    handle.seek(4)  # read from the current position
    for source in (data, bytearray(data), memoryview(data), path, str(path), handle):
        assert snapshot(edxml.parse(source)) == expected  # type: ignore[arg-type]
    assert seen == [len(data)] * 7
    # Larger than tree_max_size, or of unknown size: streamed.
    seen.clear()
    assert snapshot(edxml.parse(data, limits=Limits(tree_max_size=len(data) - 1))) == expected
    assert seen == []


def test_unseekable_stream_is_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    data = (CORPUS / "sdk-samples" / "edoc_new.edxml").read_bytes()

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    def never(*args: Any) -> Any:
        raise AssertionError("an unseekable stream has no known size")

    monkeypatch.setattr(reader_module, "_parse_tree", never)
    assert snapshot(edxml.parse(Pipe())) == snapshot(edxml.parse(data, limits=STREAM))  # type: ignore[arg-type]


# --- quirks and odd structures ------------------------------------------------------------

FROM_TO = (
    "<From><OrganId>000.00.00.G22</OrganId><OrganName>VPCP</OrganName></From>"
    "<To><OrganId>000.00.00.H41</OrganId></To>"
)


def doc(
    header: str = FROM_TO + "<Subject>s</Subject>",
    *,
    extra_header: str = "",
    manifest: str = "",
    attachments: str = "",
    after: str = "",
) -> bytes:
    return (
        f'<edXML xmlns="{NAMESPACE}"><edXMLEnvelope><edXMLHeader><MessageHeader>{header}'
        f"</MessageHeader>{extra_header}</edXMLHeader>"
        f"<edXMLBody><edXMLManifest>{manifest}</edXMLManifest></edXMLBody></edXMLEnvelope>"
        f"<AttachmentEncoded>{attachments}</AttachmentEncoded>{after}</edXML>"
    ).encode()


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode()


def att(cid: str | None, body: str, *, before: str = "", after: str = "") -> str:
    own = f"<ContentId>{cid}</ContentId>" if cid is not None else ""
    return (
        f"<Attachment>{own}{before}<ContentTransferEncoded>{body}</ContentTransferEncoded>"
        f"{after}</Attachment>"
    )


def ref(cid: str, name: str, ctype: str = "application/pdf", desc: str = "") -> str:
    return (
        f"<Reference><ContentId>{cid}</ContentId><AttachmentName>{name}</AttachmentName>"
        f"<ContentType>{ctype}</ContentType>"
        + (f"<Description>{desc}</Description>" if desc else "")
        + "</Reference>"
    )


SIGNATURE = (
    f'<ds:Signature xmlns:ds="{DSIG_NAMESPACE}" Id="sig-1"><!-- a comment -->'
    "<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="
    '"http://www.w3.org/2001/10/xml-exc-c14n#"/><?keep me?></ds:SignedInfo>'
    "\n  <ds:SignatureValue>QUJD\nREVG</ds:SignatureValue></ds:Signature>"
)

PDF = b"%PDF-1.7 " + bytes(range(256)) * 4

QUIRKS: dict[str, tuple[bytes, str]] = {
    # name: (document, the way the tree reader takes)
    "plain": (doc(), "tree"),
    "mixed prefixes and BOM, CRLF": (
        (
            "\ufeff<?xml version='1.0' encoding='UTF-8'?>\r\n"
            f'<a:edXML xmlns:a="{NAMESPACE}" xmlns:b="{NAMESPACE}">\r\n <a:edXMLEnvelope>'
            "<b:edXMLHeader><a:MessageHeader>\r\n  <b:From><a:OrganId> 000.00.00.G22 "
            "</a:OrganId></b:From><To><OrganId>000.00.00.H41</OrganId></To>"
            "<b:Subject>\r\n Thử \r\n</b:Subject></a:MessageHeader></b:edXMLHeader>"
            "</a:edXMLEnvelope></a:edXML>\r\n"
        ).encode(),
        "tree",
    ),
    "utf-16": (
        ('<?xml version="1.0" encoding="UTF-16"?>' + doc().decode()).encode("utf-16"),
        "tree",
    ),
    "latin-1 declared": (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>'
        + doc(FROM_TO + "<Subject>caf\xe9</Subject>".encode("latin-1").decode("latin-1"))
        .decode()
        .encode("latin-1"),
        "tree",
    ),
    "nested From": (
        doc(
            "<From><OrganName>outer</OrganName><Email>e@x</Email><From>"
            "<OrganId>000.00.00.G22</OrganId><OrganName>inner</OrganName></From></From>"
            "<To><OrganId>000.00.00.H41</OrganId></To>"
        ),
        "tree",
    ),
    "text around children, comments, PI, CDATA": (
        doc(
            FROM_TO + "<Subject>  a<!-- c -->b<?pi x?><![CDATA[<c>]]>&amp;&#x41;  </Subject>"
            "<Content><x>ignored child</x>tail text</Content>"
        ),
        "tree",
    ),
    "dd/MM/yyyy dates, bad numbers, priority, unknown elements": (
        doc(
            FROM_TO + "<PromulgationInfo><PromulgationDate>02/05/2024</PromulgationDate>"
            "</PromulgationInfo><DueDate>not a date</DueDate><SteeringType>x</SteeringType>"
            "<OtherInfo><Priority>9</Priority><Direction>maybe</Direction></OtherInfo>"
            "<Unknown><Deep>1</Deep></Unknown>",
            extra_header="<TraceHeaderList><TraceHeader><OrganId>null</OrganId>"
            "<Timestamp>2024-05-02T08:00:00+00:00</Timestamp></TraceHeader>"
            "<TraceHeader><Timestamp>02/05/2024 08:00</Timestamp></TraceHeader>"
            "<Bussiness><BussinessDocType>1</BussinessDocType></Bussiness></TraceHeaderList>",
        ),
        "tree",
    ),
    "status message": (
        doc(
            "<From><OrganId>000.00.00.H41</OrganId></From><StatusCode>3</StatusCode>"
            "<ResponseFor><DocumentId>d</DocumentId></ResponseFor>"
        ),
        "tree",
    ),
    "signature in xmldsig namespace": (doc(extra_header=SIGNATURE), "tree"),
    "signature in edXML namespace, second one kept as a node": (
        doc(
            extra_header=SIGNATURE.replace(DSIG_NAMESPACE, NAMESPACE)
            + SIGNATURE.replace("sig-1", "sig-2")
        ),
        "tree",
    ),
    "signature unqualified with default namespace undeclared": (
        doc(
            extra_header='<Signature xmlns="" Id="x"><SignatureValue>QQ==</SignatureValue>'
            "</Signature>"
        ),
        "tree",
    ),
    "signature inside AttachmentEncoded is not the signature": (
        doc(attachments=SIGNATURE + att("cid:a", b64(PDF))),
        "tree",
    ),
    "attachments with manifest, sink meta from manifest": (
        doc(
            manifest=ref("cid:a", "a.pdf", desc="first")
            + ref("&lt;b&gt;", "b.zip", "application/zip"),
            attachments=att("cid:a", b64(PDF)) + att("b", b64(b"PK\x05\x06" + bytes(18))),
        ),
        "tree",
    ),
    "attachment fields after the content, manifest after attachments": (
        doc(
            attachments=att("cid:a", b64(PDF), after="<AttachmentName>late.pdf</AttachmentName>"),
            after=f'<edXMLManifest xmlns="{NAMESPACE}">{ref("cid:a", "m.pdf")}</edXMLManifest>',
        ),
        "tree",
    ),
    "attachment without ContentId matched by position": (
        doc(manifest=ref("cid:a", "a.pdf"), attachments=att(None, b64(PDF))),
        "tree",
    ),
    "unqualified attachments, one-line base64, missing padding": (
        doc(attachments="").replace(
            b"<AttachmentEncoded></AttachmentEncoded>",
            b'<AttachmentEncoded xmlns=""><Attachment><ContentId>c</ContentId>'
            b"<ContentTransferEncoded>"
            + base64.b64encode(PDF).rstrip(b"=")
            + b"</ContentTransferEncoded></Attachment></AttachmentEncoded>",
        ),
        "tree",
    ),
    "second content in one attachment is plain text": (
        doc(
            attachments="<Attachment><ContentId>c</ContentId><ContentTransferEncoded>QUJD"
            "</ContentTransferEncoded><ContentTransferEncoded>REVG</ContentTransferEncoded>"
            "</Attachment>"
        ),
        "tree",
    ),
    "content outside AttachmentEncoded still streams": (
        doc(extra_header=att("x", "QUJD")),
        "tree",
    ),
    "empty attachment": (doc(attachments=att("c", "")), "tree"),
    "markup inside base64 content": (
        doc(attachments=att("c", "QU<x>JD</x>REVG<!-- c -->")),
        "fallback",
    ),
    # errors: same class, same message, same path, same sink calls
    "bad base64 after a good attachment": (
        doc(attachments=att("a", b64(PDF)) + att("b", "QUJ*REVG")),
        "InvalidValueError",
    ),
    "truncated base64": (doc(attachments=att("a", "QUJDR")), "InvalidValueError"),
    "missing From OrganId after attachments": (
        doc(
            "<From><OrganName>x</OrganName></From><To><OrganId>1</OrganId></To>",
            attachments=att("a", b64(PDF)),
        ),
        "InvalidValueError",
    ),
    "unknown status code": (
        doc("<From><OrganId>1</OrganId></From><StatusCode>77</StatusCode>"),
        "InvalidValueError",
    ),
    "not edXML": (b"<html><body>hello</body></html>", "fallback"),
    "not edXML and broken": (b"<html><body>hello</html>", "fallback"),
    "no MessageHeader": (f'<edXML xmlns="{NAMESPACE}"><x/></edXML>'.encode(), "NotEdxmlError"),
    "broken after an attachment": (
        doc(attachments=att("a", b64(PDF)))[:-12] + b"</Attachment>",
        "fallback",
    ),
    "empty": (b"", "fallback"),
    "not XML": (b"%PDF-1.7 \x00\x01", "fallback"),
    "undeclared entity": (doc(FROM_TO + "<Subject>&nope;</Subject>"), "fallback"),
}


@pytest.mark.parametrize("name", list(QUIRKS))
def test_quirk_reads_the_same_both_ways(name: str) -> None:
    data, way = QUIRKS[name]
    assert tree_way(data) == way
    assert_same(data)


LIMIT_CASES: dict[str, tuple[bytes, Limits]] = {
    "depth": (doc(FROM_TO + "<Subject>" + "<a>" * 70 + "</a>" * 70 + "</Subject>"), Limits()),
    "depth inside the signature": (
        doc(extra_header=SIGNATURE.replace("QUJD", "<a>" * 60 + "</a>" * 60)),
        Limits(),
    ),
    "depth just allowed": (
        doc(FROM_TO + "<Subject>" + "<a>" * 10 + "</a>" * 10 + "</Subject>"),
        Limits(max_depth=16),
    ),
    "elements": (doc(FROM_TO + "<i/>" * 500), Limits(max_elements=100)),
    "text": (doc(FROM_TO + "<Subject>" + "x" * 2000 + "</Subject>"), Limits(max_text=1000)),
    "text in pieces under the limit": (
        doc(FROM_TO + "<Subject>" + ("x" * 400 + "<b/>") * 4 + "</Subject>"),
        Limits(max_text=1000),
    ),
    "signature text": (doc(extra_header=SIGNATURE.replace("QUJD", "Q" * 3000)), Limits()),
    "attachments": (
        doc(attachments=att("a", "QUJD") * 4),
        Limits(max_attachments=3),
    ),
    "inline attachment": (
        doc(attachments=att("a", b64(PDF)) + att("b", b64(PDF))),
        Limits(max_inline_attachment=len(PDF) - 1),
    ),
    "inline total": (
        doc(attachments=att("a", b64(PDF)) + att("b", b64(PDF))),
        Limits(max_inline_total=len(PDF) + 10),
    ),
    "size": (doc(), Limits(max_size=100)),
}


@pytest.mark.parametrize("name", list(LIMIT_CASES))
def test_limit_holds_the_same_both_ways(name: str) -> None:
    data, limits = LIMIT_CASES[name]
    assert_same(data, limits)


def test_signature_bytes_are_identical_both_ways() -> None:
    data = doc(extra_header=SIGNATURE)
    by_tree = edxml.parse(data)
    by_stream = edxml.parse(data, limits=STREAM)
    assert by_tree.signature is not None
    assert by_tree.signature == by_stream.signature
    assert b"<!-- a comment -->" in by_tree.signature and b"<?keep me?>" in by_tree.signature


# --- safety of the tree way itself --------------------------------------------------------


def quick(call: Callable[[], object]) -> object:
    start = time.monotonic()
    try:
        return call()
    finally:
        assert time.monotonic() - start < 5  # generous: a hang would be minutes


LAUGHS = '<!ENTITY lol0 "lol">' + "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("kind", "way"),
    [
        # The tree way sees the DOCTYPE and refuses it itself.
        ("xxe", "UnsafeXmlError"),
        ("internal dtd", "UnsafeXmlError"),
        # External DTDs are never fetched: read, the garbage one would be a syntax error and
        # the network one a refused load (both "fallback").
        ("external dtd on disk", "UnsafeXmlError"),
        ("network dtd", "UnsafeXmlError"),
        # libxml2 refuses the amplification while parsing; streaming then names the DOCTYPE.
        ("billion laughs", "fallback"),
    ],
)
def test_tree_way_is_safe_with_a_doctype(tmp_path: Path, kind: str, way: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    garbage = tmp_path / "garbage.dtd"
    garbage.write_text("this is not a DTD")
    body = doc(FROM_TO + "<Subject>&e;</Subject>").decode()
    prolog = {
        "xxe": f'<!DOCTYPE edXML [<!ENTITY e SYSTEM "file://{secret}">]>',
        "internal dtd": '<!DOCTYPE edXML [<!ENTITY e "x">]>',
        "external dtd on disk": f'<!DOCTYPE edXML SYSTEM "{garbage}">',
        "billion laughs": f'<!DOCTYPE edXML [{LAUGHS}<!ENTITY e "&lol9;">]>',
        "network dtd": '<!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/evil.dtd">',
    }[kind]
    data = (prolog + body).encode()
    assert quick(lambda: tree_way(data)) == way
    with pytest.raises(UnsafeXmlError) as caught:
        quick(lambda: edxml.parse(data))
    assert "TOP SECRET" not in str(caught.value) and "lol" not in str(caught.value)
    assert_same(data)


def test_tree_parser_never_loads_external_resources(tmp_path: Path) -> None:
    from lxml import etree

    garbage = tmp_path / "garbage.dtd"
    garbage.write_text("this is not a DTD")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    data = (
        f'<!DOCTYPE edXML SYSTEM "{garbage}" [<!ENTITY e SYSTEM "file://{secret}">'
        f'<!ENTITY % p SYSTEM "{garbage}"> %p;]><edXML><a>&e;</a></edXML>'
    ).encode()
    root = etree.fromstring(data, reader_module._tree_parser())
    assert root.getroottree().docinfo.externalDTD is None
    assert b"TOP SECRET" not in etree.tostring(root)


def test_tree_way_never_builds_a_huge_tree() -> None:
    # Too many elements: refused before libxml2 builds anything.
    many = doc(FROM_TO + "<i/>" * 300_000)
    assert quick(lambda: tree_way(many)) == "fallback"
    with pytest.raises(edxml.LimitExceededError, match="more than 200000 elements"):
        quick(lambda: edxml.parse(many))
    # Deeper than libxml2 allows without huge_tree: its own limit stops it, streaming names it.
    deep = doc(FROM_TO + "<Subject>" + "<a>" * 100_000 + "</a>" * 100_000 + "</Subject>")
    assert quick(lambda: tree_way(deep)) == "fallback"
    with pytest.raises(edxml.LimitExceededError, match="deeper than 64"):
        quick(lambda: edxml.parse(deep))


def test_parsers_are_per_thread() -> None:
    import threading

    data = (CORPUS / "sdk-samples" / "edoc_new.edxml").read_bytes()
    expected = snapshot(edxml.parse(data))
    results: list[object] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                results.append(snapshot(edxml.parse(data)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [expected] * 80


def test_attachment_longer_than_one_decoder_slice_reads_the_same_both_ways() -> None:
    body = bytes(range(256)) * 6000  # 1.5 MB decoded, 2 MB of base64: several slices
    data = doc(attachments=att("a", b64(body)) + att("b", base64.b64encode(body).decode()))
    assert len(data) > 2 * reader_module._FEED_CHARS
    result = assert_same(data)
    assert result[0] == "ok"
    assert tree_way(data) == "tree"


# --- generated packages ---------------------------------------------------------------------

# Header pieces the generator picks from: plain, odd (dates in other forms, numbers that are
# not, a nested From, comments, whitespace) and unknown elements.
_HEADER_PIECES = [
    "<DocumentId>000.00.00.G22,2024/05/02,1/VPCP</DocumentId>",
    "<Code><CodeNumber> 12 </CodeNumber><CodeNotation>VPCP-TTĐT</CodeNotation></Code>",
    "<PromulgationInfo><Place>Hà Nội</Place><PromulgationDate>02/05/2024</PromulgationDate>"
    "</PromulgationInfo>",
    "<DocumentType><Type>x</Type><TypeName>Công văn</TypeName></DocumentType>",
    "<OtherInfo><Priority>9</Priority><PageAmount>3</PageAmount><Direction>có</Direction>"
    "</OtherInfo>",
    "<DueDate>2024-13-01</DueDate>",
    "<SteeringType>1</SteeringType><!-- a comment --><Unknown><Deep>v</Deep></Unknown>",
    "<ResponseFor><OrganId>000.00.00.H41</OrganId><DocumentId>d</DocumentId></ResponseFor>",
    "<ToPlaces><Place>A</Place><Place>  </Place><Place>B</Place></ToPlaces>",
    "<From><From><OrganId>000.00.00.G23</OrganId></From></From>",
    "<To><OrganId>000.00.00.H42</OrganId><OrganName>\n  UBND  \n</OrganName></To>",
]
_TRACES = (
    "<TraceHeaderList><TraceHeader><OrganId>null</OrganId><Timestamp>2024/05/02 08:00:00"
    "</Timestamp></TraceHeader><TraceHeader><OrganId>000.00.00.LT0</OrganId>"
    "<Timestamp>bad</Timestamp></TraceHeader></TraceHeaderList>"
)
_SIGNATURE = (
    f'<Signature xmlns="{DSIG_NAMESPACE}"><SignedInfo><!-- c --><Reference URI="">'
    "<DigestValue>AAAA</DigestValue></Reference></SignedInfo></Signature>"
)


@st.composite
def generated_packages(draw: st.DrawFn) -> bytes:
    """A package of generated parts, laid out in any of the ways senders write them."""
    header = FROM_TO + "".join(
        draw(st.lists(st.sampled_from(_HEADER_PIECES), max_size=6, unique=True))
    )
    refs, atts = [], []
    for i in range(draw(st.integers(0, 3))):
        cid = f"cid:a{i}" if draw(st.booleans()) else f"a{i}"
        body = draw(st.binary(max_size=400))
        if draw(st.integers(0, 3)) == 0:  # large enough for the tree way to cut it out
            body = (body or b"x") * (9000 // max(1, len(body)) + 1)
        layout = draw(st.sampled_from(["lines", "one", "crlf", "spaced"]))
        if layout == "lines":
            text = b64(body)
        elif layout == "one":
            text = base64.b64encode(body).decode()
        elif layout == "crlf":
            text = b64(body).replace("\n", "\r\n")
        else:
            text = "\n    " + b64(body).replace("\n", "\n    ")
        if draw(st.booleans()):
            refs.append(ref(f"a{i}", f"van-ban-{i}.pdf", desc="mô tả" if i % 2 else ""))
        late = f"<Description>sau {i}</Description>" if draw(st.booleans()) else ""
        atts.append(att(cid if draw(st.integers(0, 4)) else None, text, after=late))
    data = doc(
        header,
        extra_header=_TRACES if draw(st.booleans()) else "",
        manifest="".join(refs),
        attachments="".join(atts),
        after=_SIGNATURE if draw(st.booleans()) else "",
    )
    if draw(st.booleans()):  # indented, as most senders write
        data = data.replace(b"><", b">\n  <")
    cut = draw(st.integers(0, 20))
    return data[: len(data) - cut] if cut > 15 else data  # now and then a truncated one


@settings(derandomize=True, deadline=None, max_examples=200)
@given(generated_packages())
def test_generated_package_reads_the_same_both_ways(data: bytes) -> None:
    """Model, warnings, sink calls and errors agree whichever way a generated package takes."""
    assert_same(data)


# --- base64 runs cut out before parsing (edxml.hollow) ------------------------------------

BIG = bytes(range(256)) * 40  # 10 KB: its base64 is a run the tree way cuts out


def _hollow_used(data: bytes, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether the tree way kept the cut-out reading of ``data`` (the model it gave)."""
    from edxml import fastpath

    used: list[bool] = []
    real = fastpath._parse_hollow

    def spy(*args: Any) -> Any:
        try:
            result = real(*args)
        except fastpath._NotHollow:
            used.append(False)
            raise
        used.append(True)
        return result

    monkeypatch.setattr(fastpath, "_parse_hollow", spy)
    try:
        edxml.parse(data, limits=TREE)
    except EdxmlError:
        pass
    return used == [True]


HOLLOW_CASES: dict[str, tuple[bytes, bool]] = {
    "lines": (doc(attachments=att("a", b64(BIG))), True),
    "one line, prefixed": (
        doc(attachments=att("a", base64.b64encode(BIG).decode()))
        .replace(b"ContentTransferEncoded>", b"e:ContentTransferEncoded>")
        .replace(b"<edXML ", f'<edXML xmlns:e="{NAMESPACE}" '.encode()),
        True,
    ),
    "crlf and indentation": (
        doc(attachments=att("a", "\r\n  " + b64(BIG).replace("\n", "\r\n  "))),
        True,
    ),
    "missing padding": (doc(attachments=att("a", base64.b64encode(BIG[:-1]).decode()[:-1])), True),
    "two runs and a small one": (
        doc(attachments=att("a", b64(BIG)) + att("b", b64(b"small")) + att("c", b64(BIG[::-1]))),
        True,
    ),
    "character reference": (doc(attachments=att("a", "&#65;" + b64(BIG)[1:])), False),
    "entity in content": (doc(attachments=att("a", b64(BIG) + "&amp;")), False),
    "padding inside": (doc(attachments=att("a", "QQ==" + b64(BIG))), False),
    "truncated quantum": (doc(attachments=att("a", base64.b64encode(BIG).decode() + "Q")), False),
    "not base64": (doc(attachments=att("a", b64(BIG) + "*")), False),
    "vertical tab": (doc(attachments=att("a", b64(BIG) + "\x0b")), False),
    "cdata": (doc(attachments=att("a", "<![CDATA[" + b64(BIG) + "]]>")), False),
    "in a comment": (
        doc(
            attachments=att("a", b64(b"x")),
            after="<!-- <ContentTransferEncoded>" + b64(BIG) + "</ContentTransferEncoded> -->",
        ),
        False,
    ),
    "in the signature": (
        doc(
            after=f'<Signature xmlns="{DSIG_NAMESPACE}"><ContentTransferEncoded>'
            + b64(BIG)
            + "</ContentTransferEncoded></Signature>"
        ),
        False,
    ),
    "attribute holding >": (
        doc(attachments=att("a", b64(BIG))).replace(
            b"<ContentTransferEncoded>", b'<ContentTransferEncoded note="a>b">'
        ),
        False,
    ),
    "second content": (
        doc(
            attachments=att(
                "a",
                b64(BIG),
                after="<ContentTransferEncoded>" + b64(BIG) + "</ContentTransferEncoded>",
            )
        ),
        False,
    ),
    "broken after the run": (doc(attachments=att("a", b64(BIG)))[:-20], False),
    "invalid utf-8": (doc(attachments=att("a", b64(BIG))).replace(b"QUJD", b"\xff\xfe", 1), False),
}


@pytest.mark.parametrize("name", sorted(HOLLOW_CASES))
def test_cut_out_runs_read_the_same_both_ways(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data, cut_out = HOLLOW_CASES[name]
    assert_same(data)
    assert _hollow_used(data, monkeypatch) is cut_out


def test_cut_out_run_within_the_inline_limit_reads_the_same_both_ways() -> None:
    data = doc(attachments=att("a", b64(BIG)))
    assert_same(data, dataclasses.replace(TREE, max_inline_attachment=len(BIG) - 1))
    assert assert_same(data, dataclasses.replace(TREE, max_inline_total=len(BIG)))[0] == "ok"


def test_the_scan_for_runs_stops_after_a_bounded_number_of_looks() -> None:
    from edxml import hollow

    decoys = "<!-- " + "<ContentTransferEncoded " * 3000 + " -->"
    late = doc(attachments=att("a", b64(BIG)), after=decoys)
    early = doc(attachments=att("a", b64(BIG)))
    assert len(hollow.find_spans(early)) == 1
    decoyed_first = late.replace(b"<edXMLEnvelope>", decoys.encode() + b"<edXMLEnvelope>")
    assert hollow.find_spans(decoyed_first) == []  # the run came after the cap: parsed whole
    assert assert_same(decoyed_first)[0] == "ok"
    assert assert_same(late)[0] == "ok"
