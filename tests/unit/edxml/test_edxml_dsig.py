"""XML-DSig of the envelope: sign with a throwaway key, verify, read what senders really send."""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import signxml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from edxml import SignatureError
from edxml.dsig import SignatureCheck, sign_envelope, verify_signature

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "edxml"
EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

# The shape of the SDK samples: default namespace on the root, edXML: prefix inside, CRLF.
PACKAGE = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    '<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">\r\n'
    '  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">\r\n'
    "    <edXML:edXMLHeader>\r\n"
    "      <edXML:MessageHeader>\r\n"
    "        <edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId>\r\n"
    "          <edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:From>\r\n"
    "        <edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To>\r\n"
    "        <edXML:DocumentId>000.00.00.G22,2024/05/02,7816/VPCP-TTĐT</edXML:DocumentId>\r\n"
    "        <edXML:Subject>Về việc triển khai trục liên thông văn bản quốc gia</edXML:Subject>\r\n"
    "      </edXML:MessageHeader>\r\n"
    "      <edXML:TraceHeaderList>\r\n"
    "        <edXML:TraceHeader><edXML:OrganId>000.00.00.G22</edXML:OrganId>\r\n"
    "          <edXML:Timestamp>2024/05/02 08:00:00</edXML:Timestamp></edXML:TraceHeader>\r\n"
    "      </edXML:TraceHeaderList>\r\n"
    "    </edXML:edXMLHeader>\r\n"
    "    <edXML:edXMLBody>\r\n"
    '      <edXML:edXMLManifest version="1.0"><edXML:Reference>\r\n'
    "        <edXML:ContentId>cid:1</edXML:ContentId></edXML:Reference></edXML:edXMLManifest>\r\n"
    "    </edXML:edXMLBody>\r\n"
    "  </edXML:edXMLEnvelope>\r\n"
    '  <edXML:Attachment xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">\r\n'
    "    <edXML:ContentId>cid:1</edXML:ContentId><edXML:AttachmentName>a.txt</edXML:AttachmentName>"
    "<edXML:Value>eGluIGNow6Bv</edXML:Value>\r\n"
    "  </edXML:Attachment>\r\n"
    "</edXML>\r\n"
).encode()

SUBJECT = "Về việc triển khai trục liên thông văn bản quốc gia".encode()


def _cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    return _cert(key, "Nguyễn Văn Thử")


@pytest.fixture(scope="module")
def signed(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    return sign_envelope(PACKAGE, key, cert)


def _signature(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    found = [
        el
        for el in root.iter()
        if isinstance(el.tag, str) and etree.QName(el).localname == "Signature"
    ]
    assert len(found) == 1
    return found[0]


# --- signing ---------------------------------------------------------------------------------


def test_signed_package_verifies(signed: bytes, cert: x509.Certificate) -> None:
    check = verify_signature(signed)
    assert check == SignatureCheck(
        "valid",
        "the signature verifies",
        cert.subject.rfc4514_string(),
        check.certificate,
    )
    assert check.is_valid
    assert check.signer == "CN=Nguyễn Văn Thử"
    assert check.certificate is not None
    assert x509.load_der_x509_certificate(check.certificate) == cert


def test_signature_placed_after_trace_header_list_in_xmldsig(signed: bytes) -> None:
    sig = _signature(signed)
    assert etree.QName(sig).namespace == DS_NS
    parent = sig.getparent()
    assert parent is not None and parent.tag == f"{{{EDXML_NS}}}edXMLHeader"
    prev = sig.getprevious()
    assert prev is not None and prev.tag == f"{{{EDXML_NS}}}TraceHeaderList"
    assert sig.getnext() is None
    ds = {"ds": DS_NS}
    assert sig.xpath("ds:SignedInfo/ds:Reference/@URI", namespaces=ds) == [""]
    assert sig.xpath("ds:SignedInfo/ds:SignatureMethod/@Algorithm", namespaces=ds) == [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ]
    assert sig.xpath("ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm", namespaces=ds) == [
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    ]
    assert sig.xpath("ds:SignedInfo/ds:Reference/ds:DigestMethod/@Algorithm", namespaces=ds) == [
        "http://www.w3.org/2001/04/xmlenc#sha256"
    ]
    assert sig.xpath(
        "ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform/@Algorithm", namespaces=ds
    ) == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]
    assert len(sig.xpath("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=ds)) == 1


def test_signing_keeps_the_rest_of_the_package(signed: bytes) -> None:
    assert signed.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert SUBJECT in signed

    def content(data: bytes) -> list[tuple[str, str]]:
        root = etree.fromstring(data)
        for s in root.iter(f"{{{DS_NS}}}Signature"):
            s.getparent().remove(s)  # type: ignore[union-attr]
        return [(e.tag, (e.text or "").strip()) for e in root.iter() if isinstance(e.tag, str)]

    assert content(signed) == content(PACKAGE)


def test_signing_replaces_an_existing_signature(
    signed: bytes, key: rsa.RSAPrivateKey, cert: x509.Certificate
) -> None:
    again = sign_envelope(signed, key, cert)
    assert again.count(b"<SignatureValue>") == 1
    assert verify_signature(again).result == "valid"


def test_signxml_accepts_our_signature(signed: bytes, cert: x509.Certificate) -> None:
    """An independent implementation verifies what we write (interoperability)."""
    result = signxml.XMLVerifier().verify(signed, x509_cert=cert)
    assert result.signed_xml is not None
    assert SUBJECT in etree.tostring(result.signed_xml, encoding="UTF-8")


def test_sign_refuses_bad_key_and_certificate(
    key: rsa.RSAPrivateKey, cert: x509.Certificate
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SignatureError, match="does not belong"):
        sign_envelope(PACKAGE, other, cert)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureError, match="RSA"):
        sign_envelope(PACKAGE, ec_key, _cert(ec_key, "ec"))  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="certificate"):
        sign_envelope(PACKAGE, key, b"not a certificate")  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="well-formed"):
        sign_envelope(b"<edXML><unclosed></edXML>", key, cert)
    with pytest.raises(SignatureError, match="edXMLHeader"):
        sign_envelope(b"<other/>", key, cert)


# --- tampering -------------------------------------------------------------------------------


def test_one_character_of_the_subject_changed_is_invalid(signed: bytes) -> None:
    tampered = signed.replace("triển khai".encode(), "triển kbai".encode())
    assert tampered != signed
    check = verify_signature(tampered)
    assert check.result == "invalid"
    assert "changed after signing" in check.reason
    assert check.signer == "CN=Nguyễn Văn Thử"


def test_attachment_changed_is_invalid(signed: bytes) -> None:
    tampered = signed.replace(b"eGluIGNow6Bv", b"eGluIGNow6Bw")
    assert verify_signature(tampered).result == "invalid"


def test_trace_header_appended_after_signing_is_invalid(signed: bytes) -> None:
    """What the axis does on its way: a hop added later breaks the sender's signature."""
    tampered = signed.replace(
        b"</edXML:TraceHeaderList>",
        b"<edXML:TraceHeader><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:TraceHeader>"
        b"</edXML:TraceHeaderList>",
    )
    assert verify_signature(tampered).result == "invalid"


def test_signature_value_changed_is_invalid(signed: bytes) -> None:
    sig = _signature(signed)
    value = sig.find(f"{{{DS_NS}}}SignatureValue")
    assert value is not None and value.text
    raw = bytearray(base64.b64decode(value.text))
    raw[10] ^= 0x01
    tampered = signed.replace(value.text.encode(), base64.b64encode(bytes(raw)))
    check = verify_signature(tampered)
    assert check.result == "invalid"
    assert "SignatureValue does not match" in check.reason


def test_certificate_of_someone_else_is_invalid(signed: bytes) -> None:
    mallory = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sig = _signature(signed)
    old = sig.findtext(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
    assert old
    from cryptography.hazmat.primitives.serialization import Encoding

    new = base64.b64encode(_cert(mallory, "Mallory").public_bytes(Encoding.DER))
    check = verify_signature(signed.replace(old.encode(), new))
    assert check.result == "invalid"
    assert check.signer == "CN=Mallory"


def test_whitespace_outside_the_root_and_line_endings_do_not_matter(signed: bytes) -> None:
    # XML parsing normalises CRLF to LF, so a transport that rewrites line ends keeps it valid.
    assert verify_signature(signed.replace(b"\r\n", b"\n")).result == "valid"


# --- other signers ---------------------------------------------------------------------------


class _LegacySigner(signxml.XMLSigner):
    """signxml refuses SHA-1 by default; the SDK samples use it, so we must still read it."""

    def check_deprecated_methods(self) -> None:
        pass


@pytest.mark.parametrize(
    ("method", "digest", "c14n"),
    [
        (
            signxml.SignatureMethod.RSA_SHA1,
            signxml.DigestAlgorithm.SHA1,
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        ),
        (
            signxml.SignatureMethod.RSA_SHA256,
            signxml.DigestAlgorithm.SHA256,
            "http://www.w3.org/2001/10/xml-exc-c14n#",
        ),
        (
            signxml.SignatureMethod.RSA_SHA512,
            signxml.DigestAlgorithm.SHA256,
            "http://www.w3.org/2006/12/xml-c14n11",
        ),
    ],
)
def test_signatures_made_by_signxml_verify(
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    method: signxml.SignatureMethod,
    digest: signxml.DigestAlgorithm,
    c14n: str,
) -> None:
    root = etree.fromstring(PACKAGE)
    header = root.find(f".//{{{EDXML_NS}}}edXMLHeader")
    assert header is not None
    etree.SubElement(header, f"{{{DS_NS}}}Signature", Id="placeholder")
    signer = _LegacySigner(signature_algorithm=method, digest_algorithm=digest, c14n_algorithm=c14n)
    out = signer.sign(root, key=key, cert=[cert])
    data = etree.tostring(out, xml_declaration=True, encoding="UTF-8")
    check = verify_signature(data)
    assert check.result == "valid", check.reason
    assert verify_signature(data.replace(b"G22</", b"G23</")).result == "invalid"


def test_ecdsa_signature_verifies() -> None:
    """Not what edXML specifies, but a valid XML-DSig is reported as valid, not as an error."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    root = etree.fromstring(PACKAGE)
    header = root.find(f".//{{{EDXML_NS}}}edXMLHeader")
    assert header is not None
    etree.SubElement(header, f"{{{DS_NS}}}Signature", Id="placeholder")
    out = signxml.XMLSigner(signature_algorithm=signxml.SignatureMethod.ECDSA_SHA256).sign(
        root, key=ec_key, cert=[_cert(ec_key, "ec")]
    )
    assert verify_signature(etree.tostring(out)).result == "valid"


# --- the edXML-namespace quirk ---------------------------------------------------------------


def _move_to_edxml_namespace(signed: bytes) -> bytes:
    """The quirk as senders produce it: the xmldsig declaration lost, so the Signature falls
    into the default (edXML) namespace of the SDK-style root."""
    out = signed.replace(b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">', b"<Signature>")
    assert out != signed
    assert etree.QName(_signature(out)).namespace == EDXML_NS
    return out


def test_signature_in_edxml_namespace_is_checked_as_xmldsig(signed: bytes) -> None:
    check = verify_signature(_move_to_edxml_namespace(signed))
    assert check.result == "valid"
    assert "edXML namespace" in check.reason
    tampered = _move_to_edxml_namespace(signed).replace(b"7816/", b"7817/")
    check = verify_signature(tampered)
    assert check.result == "invalid"
    assert "edXML namespace" in check.reason


def test_signature_in_no_namespace_is_checked_as_xmldsig(
    key: rsa.RSAPrivateKey, cert: x509.Certificate
) -> None:
    """Our own canonical form has no default namespace: a lost declaration leaves none."""
    canonical = PACKAGE.replace(b'<edXML xmlns="', b'<edXML:edXML xmlns:edXML="').replace(
        b"</edXML>\r\n", b"</edXML:edXML>\r\n"
    )
    signed = sign_envelope(canonical, key, cert)
    stripped = signed.replace(
        b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">', b"<Signature>"
    )
    assert etree.QName(_signature(stripped)).namespace is None
    check = verify_signature(stripped)
    assert check.result == "valid"
    assert "no namespace" in check.reason
    assert verify_signature(stripped.replace(b"H41", b"H42")).result == "invalid"


def test_signature_computed_in_edxml_namespace_verifies_as_written(
    signed: bytes, key: rsa.RSAPrivateKey
) -> None:
    """A signer that built the Signature in the edXML namespace and signed that SignedInfo."""
    data = _move_to_edxml_namespace(signed)
    root = etree.fromstring(data)
    sig = _signature(data)
    signed_info = root.find(f".//{{{EDXML_NS}}}Signature/{{{EDXML_NS}}}SignedInfo")
    assert signed_info is not None
    octets = etree.tostring(signed_info, method="c14n", exclusive=True)
    assert b'xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"' in octets
    value = base64.b64encode(key.sign(octets, padding.PKCS1v15(), hashes.SHA256()))
    old = sig.findtext(f"{{{EDXML_NS}}}SignatureValue")
    assert old
    resigned = data.replace(old.encode(), value)
    assert verify_signature(resigned).result == "valid"
    # ...and that value is wrong for the xmldsig reading, so only the as-written one matched.
    assert verify_signature(signed.replace(old.encode(), value)).result == "invalid"


# --- placeholders, absence, unsupported ------------------------------------------------------

SDK_SIGNED = [
    "edoc_new.edxml",
    "edoc_update.edxml",
    "edoc_revocation.edxml",
    "edoc_replacement.edxml",
]


@pytest.mark.parametrize("name", SDK_SIGNED)
def test_sdk_samples_are_placeholders(name: str) -> None:
    check = verify_signature((CORPUS / "sdk-samples" / name).read_bytes())
    assert check.result == "placeholder"
    assert "X509Certificate" in check.reason
    assert "edXML namespace" in check.reason
    assert check.signer is None and check.certificate is None


def test_axis_returned_package_with_real_certificate_is_invalid() -> None:
    """A real VNPT-CA certificate, the SDK's dummy SignatureValue and hops added later."""
    data = (
        CORPUS / "axis-returned" / "2019_5_852e179c-8eca-4502-ac38-0b97321f29c3.edxml"
    ).read_bytes()
    check = verify_signature(data)
    assert check.result == "invalid"
    assert check.signer is not None and "TRẦN ANH TUẤN" in check.signer


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (CORPUS / "sdk-samples").glob("status*.edxml")),
)
def test_unsigned_status_messages_are_absent(name: str) -> None:
    assert verify_signature((CORPUS / "sdk-samples" / name).read_bytes()).result == "absent"


def test_unsigned_package_is_absent() -> None:
    check = verify_signature(PACKAGE)
    assert check == SignatureCheck("absent", "the package carries no Signature")


def test_every_well_formed_corpus_file_gives_a_result() -> None:
    results = {}
    for path in sorted(CORPUS.glob("*/*.edxml")):
        results[path.name] = verify_signature(path.read_bytes()).result
    assert len(results) >= 20
    assert results["edoc.edxml"] == "invalid"  # not well-formed: reported, not raised
    assert set(results.values()) <= {"absent", "placeholder", "invalid"}


@pytest.mark.parametrize(
    ("edit", "expected", "words"),
    [
        (
            lambda s: s.replace(s.split("<SignatureValue>")[1].split("<")[0], ""),
            "placeholder",
            "SignatureValue is empty",
        ),
        (
            lambda s: s.replace(s.split("<DigestValue>")[1].split("<")[0], ""),
            "placeholder",
            "DigestValue is empty",
        ),
        (lambda s: s.split("<KeyInfo>")[0] + s.split("</KeyInfo>")[1], "placeholder", "KeyInfo"),
        (
            lambda s: s.replace("<X509Certificate>MII", "<X509Certificate>AAAAMII"),
            "placeholder",
            "does not decode",
        ),
        (
            lambda s: s.replace('URI=""', 'URI="cid:1"'),
            "invalid",
            "attachment cid:1 is not supported",
        ),
        (lambda s: s.replace('URI=""', 'URI="#x"'), "invalid", "does not cover the whole package"),
        (
            lambda s: s.replace("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "urn:made-up"),
            "invalid",
            "unsupported signature method",
        ),
        (
            lambda s: s.replace(
                "xmldsig#enveloped-signature",
                'xmldsig#enveloped-signature"/><Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116',
            ),
            "invalid",
            "unsupported transform",
        ),
    ],
)
def test_broken_signatures(signed: bytes, edit, expected: str, words: str) -> None:  # type: ignore[no-untyped-def]
    data = edit(signed.decode()).encode()
    assert data != signed
    check = verify_signature(data)
    assert check.result == expected, check.reason
    assert words in check.reason


# --- hostile input ---------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<!ENTITY x 'leaked'>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_xxe_never_fetches_and_never_raises(listener: str, signed: bytes) -> None:
    body = signed.split(b"?>", 1)[1]
    for doctype in (
        f'<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "{listener}/xxe">]>',
        f'<!DOCTYPE edXML [<!ENTITY % p SYSTEM "{listener}/param"> %p;]>',
        f'<!DOCTYPE edXML SYSTEM "{listener}/dtd">',
        '<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    ):
        data = doctype.encode() + body.replace(b"7816", b"&xxe;")
        check = verify_signature(data)
        assert check.result == "invalid"
        assert "DTD" in check.reason or "well-formed" in check.reason
        assert b"root:" not in check.reason.encode()
    assert _Recorder.hits == []


def test_billion_laughs_is_quick_and_harmless() -> None:
    lol = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    data = f'<!DOCTYPE edXML [{lol}]><edXML xmlns="{EDXML_NS}">&l9;</edXML>'.encode()
    start = time.monotonic()
    check = verify_signature(data)
    assert time.monotonic() - start < 10  # generous: an expansion would take minutes or memory
    assert check.result == "invalid"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"not xml at all",
        b"\x00\xff\xfe",
        b"<a>",
        "<edXML>ü</edXML>".encode("latin-1"),
        b"<Signature xmlns='http://www.w3.org/2000/09/xmldsig#'/>",
        b"<Signature xmlns='http://www.w3.org/2000/09/xmldsig#'><SignedInfo><Reference/></SignedInfo>"
        b"<SignatureValue>!!!</SignatureValue></Signature>",
    ],
)
def test_garbage_never_raises(data: bytes) -> None:
    check = verify_signature(data)
    assert check.result in {"invalid", "placeholder", "absent"}
    assert check.reason


def test_external_dtd_subset_on_disk_is_never_opened(tmp_path: Path, signed: bytes) -> None:
    # A FIFO with no writer blocks whoever opens it: verification must finish regardless.
    fifo = tmp_path / "blocking.dtd"
    os.mkfifo(fifo)
    data = f'<!DOCTYPE edXML SYSTEM "{fifo}">'.encode() + signed.split(b"?>", 1)[1]
    results: list[SignatureCheck] = []
    worker = threading.Thread(target=lambda: results.append(verify_signature(data)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the thread can end
        with open(fifo, "wb"):
            pass
        pytest.fail("verify_signature opened the external DTD subset named by the DOCTYPE")
    assert results[0].result == "invalid"
    assert "DTD" in results[0].reason
