"""XML-DSig of an edXML envelope: verify what a sender put there, sign what we send.

edXML carries one enveloped XML signature inside ``edXMLHeader``, after ``TraceHeaderList``
(QCVN 102:2016). In the wild it is often not a real signature: the national SDK samples carry
dummy values (a certificate truncated to ``MIIFqTCCBJG``), many senders copy them, and some put
the ``Signature`` element in the edXML namespace (or none) instead of the xmldsig one; such a
Signature is checked both as written and moved into xmldsig, where its signer most likely made
it before a careless re-serialisation dropped the namespace declaration. So verification
never rejects and never raises; it reports one of four results (:class:`SignatureCheck`):

- ``valid``: the SignedInfo signature verifies with the key of the certificate in KeyInfo and
  every reference digest matches. Nothing is said about trust in that certificate.
- ``invalid``: a real-looking signature that does not verify, uses something unsupported, or an
  input that cannot be read at all; ``reason`` says which in plain words.
- ``placeholder``: a Signature element without the material of a real one (empty values, a
  certificate that does not decode, no certificate at all).
- ``absent``: no Signature element.

Verification works on the bytes as sent: the signature covers the document as the signer
serialised it, so we canonicalise the parsed original, never a re-serialisation of the model.
The implementation is lxml (canonicalisation) plus cryptography (digests and RSA/ECDSA), which
keeps full control over what is accepted (RSA-SHA1 from the samples, no certificate-chain
policy, no network) and over the edXML-namespace quirk.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from lxml import etree

from edxml.errors import SignatureError
from edxml.model import DSIG_NAMESPACE, NAMESPACE
from edxml.safexml import has_doctype, xml_parser

SignatureResult = Literal["valid", "invalid", "placeholder", "absent"]

_DS = "{" + DSIG_NAMESPACE + "}"
# Where a Signature is looked for: xmldsig, and the quirks (edXML namespace, none at all).
_SIGNATURE_NAMESPACES = (DSIG_NAMESPACE, NAMESPACE, None)

C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_COMMENTS = C14N_10 + "#WithComments"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_11_COMMENTS = C14N_11 + "#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = EXC_C14N + "WithComments"
# The SDK samples write this (wrong) URI for exclusive c14n; read it as the senders meant it.
_EXC_C14N_SDK_TYPO = "http://www.w3.org/TR/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

# (exclusive, with_comments). C14N 1.1 equals 1.0 except for xml:id/xml:base fix-ups, which
# edXML never uses; lxml offers no 1.1, so 1.0 stands in for it.
_C14N_METHODS: dict[str, tuple[bool, bool]] = {
    C14N_10: (False, False),
    C14N_10_COMMENTS: (False, True),
    C14N_11: (False, False),
    C14N_11_COMMENTS: (False, True),
    EXC_C14N: (True, False),
    EXC_C14N_COMMENTS: (True, True),
    _EXC_C14N_SDK_TYPO: (True, False),
}

_DIGESTS: dict[str, str] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    SHA256: "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}

_SIGNATURE_METHODS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": ("rsa", hashes.SHA1()),  # noqa: S303
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224": ("rsa", hashes.SHA224()),
    RSA_SHA256: ("rsa", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ecdsa", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ecdsa", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ecdsa", hashes.SHA512()),
}


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of :func:`verify_signature`.

    ``result`` is ``valid``, ``invalid``, ``placeholder`` or ``absent``; ``reason`` says why in
    plain words; ``signer`` is the RFC 4514 subject of the certificate found in KeyInfo (when it
    decodes), ``certificate`` its DER bytes. ``valid`` means cryptographically intact, not
    trusted: chain and revocation checks belong to the caller.
    """

    result: SignatureResult
    reason: str
    signer: str | None = None
    certificate: bytes | None = None

    @property
    def is_valid(self) -> bool:
        """True when the signature verifies."""
        return self.result == "valid"


class _Invalid(Exception):
    """Internal: the signature is real-looking but does not verify (message = reason)."""


class _Placeholder(Exception):
    """Internal: the signature lacks the material of a real one (message = reason)."""


def _parser() -> etree.XMLParser:
    # Hardened (no DTD, entities, network or external files); huge text nodes allowed because
    # attachments are one base64 text node each.
    return xml_parser(
        huge_tree=True, remove_blank_text=False, remove_comments=False, remove_pis=False
    )


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return etree.QName(tag).localname


def _ns(el: etree._Element) -> str | None:
    tag = el.tag
    if not isinstance(tag, str):
        return None
    return etree.QName(tag).namespace


def _find_signature(root: etree._Element) -> etree._Element | None:
    """The envelope's Signature: xmldsig namespace first, then the edXML-namespace quirk.

    Prefer the one inside edXMLHeader (where the standard puts it); fall back to any.
    """
    candidates = [
        el for el in root.iter() if _local(el) == "Signature" and _ns(el) in _SIGNATURE_NAMESPACES
    ]
    if not candidates:
        return None

    def rank(el: etree._Element) -> tuple[int, int]:
        parent = el.getparent()
        in_header = parent is not None and _local(parent) == "edXMLHeader"
        return (0 if in_header else 1, 0 if _ns(el) == DSIG_NAMESPACE else 1)

    return min(candidates, key=rank)


def _position(el: etree._Element) -> list[int]:
    """Child indices from the root down to ``el``: a way back to it in a copy of the tree."""
    steps: list[int] = []
    parent = el.getparent()
    while parent is not None:
        steps.append(parent.index(el))
        el, parent = parent, parent.getparent()
    return steps[::-1]


def _at(tree: etree._ElementTree, steps: list[int]) -> etree._Element:
    el = tree.getroot()
    for i in steps:
        el = el[i]
    return el


def _child(el: etree._Element, name: str) -> etree._Element | None:
    """The first child with local name ``name`` in the namespace of ``el``."""
    ns = _ns(el)
    for c in el:
        if _local(c) == name and _ns(c) == ns:
            return c
    return None


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    ns = _ns(el)
    return [c for c in el if _local(c) == name and _ns(c) == ns]


def _text(el: etree._Element | None) -> str:
    if el is None or el.text is None:
        return ""
    return "".join(el.text.split())


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _Placeholder(
            f"{what} is not valid base64 ({len(value)} characters, a truncated or dummy value)"
        ) from exc


def _remove_keeping_tail(el: etree._Element) -> None:
    """Remove ``el`` from its tree but keep the text after it (lxml moves the tail along)."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    prev = el.getprevious()
    if tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def _c14n(
    node: etree._Element | etree._ElementTree,
    algorithm: str,
    prefixes: list[str],
    *,
    drop_comments: bool = False,
) -> bytes:
    """``node`` canonicalised by ``algorithm``; comments kept only when the algorithm says so
    and ``drop_comments`` is false."""
    if algorithm not in _C14N_METHODS:
        raise _Invalid(f"unsupported canonicalisation {algorithm!r}")
    exclusive, comments = _C14N_METHODS[algorithm]
    return etree.tostring(
        node,
        method="c14n",
        exclusive=exclusive,
        with_comments=comments and not drop_comments,
        inclusive_ns_prefixes=(prefixes or None) if exclusive else None,
    )


def _inclusive_prefixes(el: etree._Element) -> list[str]:
    for c in el:
        if _local(c) == "InclusiveNamespaces":
            return (c.get("PrefixList") or "").split()
    return []


def _reference_digest_input(doc: bytes, sig_path: list[int], reference: etree._Element) -> bytes:
    """The octets a same-document Reference URI="" covers, after its transforms.

    Works on a fresh parse of the original bytes so that the enveloped-signature transform (which
    removes the Signature) never disturbs the tree the SignedInfo is checked in.
    """
    uri = reference.get("URI")
    if uri is None or uri != "":
        if uri is not None and uri.startswith("cid:"):
            raise _Invalid(f"a reference to the attachment {uri} is not supported")
        raise _Invalid(
            f"the signature does not cover the whole package (Reference URI={uri!r}); "
            'only URI="" is accepted'
        )
    tree = etree.ElementTree(etree.fromstring(doc, _parser()))
    signature = _at(tree, sig_path)
    transforms_el = _child(reference, "Transforms")
    transforms = [] if transforms_el is None else _children(transforms_el, "Transform")
    # URI="" selects the document without comments; the default final c14n is inclusive 1.0.
    algorithm = C14N_10
    prefixes: list[str] = []
    saw_c14n = False
    for t in transforms:
        alg = t.get("Algorithm") or ""
        if alg == ENVELOPED:
            if saw_c14n:
                raise _Invalid("the enveloped-signature transform comes after canonicalisation")
            _remove_keeping_tail(signature)
        elif alg in _C14N_METHODS:
            if saw_c14n:
                raise _Invalid("more than one canonicalisation transform")
            algorithm = alg
            prefixes = _inclusive_prefixes(t)
            saw_c14n = True
        else:
            raise _Invalid(f"unsupported transform {alg!r}")
    return _c14n(tree, algorithm, prefixes, drop_comments=True)


def _certificates(signature: etree._Element) -> list[x509.Certificate]:
    """Every certificate of KeyInfo/X509Data that decodes (the signer's is among them)."""
    key_info = _child(signature, "KeyInfo")
    if key_info is None:
        raise _Placeholder("the signature has no KeyInfo, so no certificate to check it with")
    texts = [
        _text(cert)
        for data in _children(key_info, "X509Data")
        for cert in _children(data, "X509Certificate")
    ]
    texts = [t for t in texts if t]
    if not texts:
        raise _Placeholder("KeyInfo carries no X509Certificate")
    certs: list[x509.Certificate] = []
    failure = ""
    for text in texts:
        try:
            der = _b64(text, "the X509Certificate")
            certs.append(x509.load_der_x509_certificate(der))
        except _Placeholder as exc:
            failure = failure or str(exc)
        except ValueError:
            failure = failure or (
                f"the X509Certificate does not decode as a certificate ({len(der)} bytes)"
            )
    if not certs:
        raise _Placeholder(failure)
    return certs


def _verify_signed_info(
    signed_info: etree._Element,
    signature_value: bytes,
    cert: x509.Certificate,
) -> None:
    c14n_el = _child(signed_info, "CanonicalizationMethod")
    method_el = _child(signed_info, "SignatureMethod")
    if c14n_el is None or method_el is None:
        raise _Invalid("SignedInfo lacks CanonicalizationMethod or SignatureMethod")
    c14n_alg = c14n_el.get("Algorithm") or ""
    sig_alg = method_el.get("Algorithm") or ""
    if sig_alg not in _SIGNATURE_METHODS:
        raise _Invalid(f"unsupported signature method {sig_alg!r}")
    kind, hash_alg = _SIGNATURE_METHODS[sig_alg]
    octets = _c14n(signed_info, c14n_alg, _inclusive_prefixes(c14n_el))
    public_key = cert.public_key()
    try:
        if kind == "rsa":
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise _Invalid("RSA signature method but the certificate key is not RSA")
            public_key.verify(signature_value, octets, padding.PKCS1v15(), hash_alg)
        else:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise _Invalid("ECDSA signature method but the certificate key is not EC")
            half = len(signature_value) // 2
            der_sig = utils.encode_dss_signature(
                int.from_bytes(signature_value[:half], "big"),
                int.from_bytes(signature_value[half:], "big"),
            )
            public_key.verify(der_sig, octets, ec.ECDSA(hash_alg))
    except InvalidSignature as exc:
        raise _Invalid(
            "the SignatureValue does not match SignedInfo with the certificate's key"
        ) from exc


def _in_dsig_namespace(signature: etree._Element) -> etree._Element:
    """A copy of an edXML-namespace (or un-namespaced) Signature with every element in xmldsig.

    The copy declares xmldsig as its default namespace, which is how a signer that wrote it
    correctly would have serialised it before a careless re-serialisation dropped the
    declaration.
    """

    def copy_into(src: etree._Element, parent: etree._Element | None) -> etree._Element:
        qn = etree.QName(src.tag)
        new_tag = _DS + qn.localname if qn.namespace in (NAMESPACE, None) else src.tag
        if parent is None:
            new = etree.Element(new_tag, nsmap={None: DSIG_NAMESPACE})  # type: ignore[dict-item]
        else:
            new = etree.SubElement(parent, new_tag)
        for k, v in src.attrib.items():
            new.set(k, v)
        new.text = src.text
        new.tail = src.tail
        for c in src:
            if isinstance(c.tag, str):
                copy_into(c, new)
            else:  # comments and PIs inside the signature stay as they were
                new.append(copy.copy(c))
        return new

    return copy_into(signature, None)


def verify_signature(data: bytes) -> SignatureCheck:
    """Check the XML-DSig of an edXML package given as the raw bytes received.

    Never raises: unreadable input, unsupported algorithms and library errors all become an
    ``invalid`` result with the reason in plain words. Parsing refuses DTDs and never touches
    the network. See the module docstring for what each result means.
    """
    try:
        return _verify(data)
    except _Invalid as exc:
        return SignatureCheck("invalid", str(exc))
    except _Placeholder as exc:
        return SignatureCheck("placeholder", str(exc))
    except Exception as exc:  # a hostile input must never escape as an exception
        return SignatureCheck("invalid", f"the signature could not be checked: {exc}")


def _verify(data: bytes) -> SignatureCheck:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _Invalid("the package must be given as bytes")
    doc = bytes(data)
    if not doc.strip():
        raise _Invalid("the package is empty")
    try:
        tree = etree.ElementTree(etree.fromstring(doc, _parser()))
    except etree.XMLSyntaxError as exc:
        raise _Invalid(f"the package is not well-formed XML: {exc}") from exc
    if has_doctype(tree):
        raise _Invalid("the package declares a DTD, which is refused for safety")
    root = tree.getroot()
    signature = _find_signature(root)
    if signature is None:
        return SignatureCheck("absent", "the package carries no Signature")
    wrong_ns = _ns(signature) != DSIG_NAMESPACE
    quirk = ""
    if wrong_ns:
        where = "the edXML namespace" if _ns(signature) == NAMESPACE else "no namespace"
        quirk = f" (Signature in {where} instead of xmldsig)"
    sig_path = _position(signature)

    signed_info = _child(signature, "SignedInfo")
    value_text = _text(_child(signature, "SignatureValue"))
    if signed_info is None:
        raise _Placeholder("the Signature has no SignedInfo" + quirk)
    references = _children(signed_info, "Reference")
    if not references:
        raise _Placeholder("SignedInfo has no Reference" + quirk)
    if not value_text:
        raise _Placeholder("the SignatureValue is empty" + quirk)
    for ref in references:
        if not _text(_child(ref, "DigestValue")):
            raise _Placeholder("a DigestValue is empty" + quirk)
    try:
        certs = _certificates(signature)
    except _Placeholder as exc:
        raise _Placeholder(str(exc) + quirk) from exc

    def report(result: SignatureResult, reason: str, cert: x509.Certificate) -> SignatureCheck:
        return SignatureCheck(
            result,
            reason + quirk,
            cert.subject.rfc4514_string(),
            cert.public_bytes(serialization.Encoding.DER),
        )

    try:
        signature_value = _b64(value_text, "the SignatureValue")
    except _Placeholder as exc:
        return report("placeholder", str(exc), certs[0])

    # 1. References: every digest must match the document as sent.
    for ref in references:
        method = _child(ref, "DigestMethod")
        alg = "" if method is None else method.get("Algorithm") or ""
        if alg not in _DIGESTS:
            return report("invalid", f"unsupported digest method {alg!r}", certs[0])
        try:
            octets = _reference_digest_input(doc, sig_path, ref)
            expected = _b64(_text(_child(ref, "DigestValue")), "the DigestValue")
        except _Invalid as exc:
            return report("invalid", str(exc), certs[0])
        except _Placeholder as exc:
            return report("placeholder", str(exc), certs[0])
        if hashlib.new(_DIGESTS[alg], octets).digest() != expected:
            return report(
                "invalid", "the package was changed after signing (digest mismatch)", certs[0]
            )

    # 2. SignedInfo, with each certificate of KeyInfo (a chain may come in any order): as
    #    found, and for the namespace quirk also as the signer most likely wrote it (in
    #    xmldsig), since either may be what was signed.
    attempts = [signed_info]
    if wrong_ns:
        moved = _child(_in_dsig_namespace(signature), "SignedInfo")
        if moved is not None:
            attempts.insert(0, moved)
    failure = ""
    for cert in certs:
        for attempt in attempts:
            try:
                _verify_signed_info(attempt, signature_value, cert)
            except _Invalid as exc:
                failure = failure or str(exc)
                continue
            return report("valid", "the signature verifies", cert)
    return report("invalid", failure, certs[0])


def sign_envelope(
    data: bytes,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
) -> bytes:
    """Sign an edXML package: enveloped XML-DSig over the whole document (Reference URI="").

    RSA-SHA256 with a SHA-256 digest and exclusive c14n; KeyInfo/X509Data/X509Certificate
    carries ``certificate``. The Signature goes inside ``edXMLHeader`` right after
    ``TraceHeaderList`` (replacing any Signature already there), in the xmldsig namespace. The
    rest of the package is kept byte-for-byte as far as XML allows, so sign the final bytes:
    any later change (adding a TraceHeader included) breaks the signature.

    Raises :class:`SignatureError` for a key that is not RSA, a certificate whose public key
    does not match the key, or a package that is not an edXML envelope.
    """
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SignatureError("the signing key must be an RSA private key")
    if not isinstance(certificate, x509.Certificate):
        raise SignatureError("the certificate must be a cryptography x509.Certificate")
    pub = certificate.public_key()
    if not isinstance(pub, rsa.RSAPublicKey) or pub.public_numbers() != (
        key.public_key().public_numbers()
    ):
        raise SignatureError("the certificate does not belong to the signing key")
    try:
        tree = etree.ElementTree(etree.fromstring(bytes(data), _parser()))
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SignatureError(f"the package is not well-formed XML: {exc}") from exc
    if has_doctype(tree):
        raise SignatureError("the package declares a DTD, which is refused for safety")
    root = tree.getroot()
    header = next(
        (el for el in root.iter() if _local(el) == "edXMLHeader" and _ns(el) == NAMESPACE), None
    )
    if header is None:
        raise SignatureError("the package has no edXMLHeader to put the signature in")
    for old in [
        el for el in header if _local(el) == "Signature" and _ns(el) in _SIGNATURE_NAMESPACES
    ]:
        _remove_keeping_tail(old)

    sig = etree.Element(_DS + "Signature", nsmap={None: DSIG_NAMESPACE})  # type: ignore[dict-item]
    signed_info = etree.SubElement(sig, _DS + "SignedInfo")
    etree.SubElement(signed_info, _DS + "CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(signed_info, _DS + "SignatureMethod", Algorithm=RSA_SHA256)
    ref = etree.SubElement(signed_info, _DS + "Reference", URI="")
    transforms = etree.SubElement(ref, _DS + "Transforms")
    etree.SubElement(transforms, _DS + "Transform", Algorithm=ENVELOPED)
    etree.SubElement(transforms, _DS + "Transform", Algorithm=EXC_C14N)
    etree.SubElement(ref, _DS + "DigestMethod", Algorithm=SHA256)
    digest_el = etree.SubElement(ref, _DS + "DigestValue")
    value_el = etree.SubElement(sig, _DS + "SignatureValue")
    key_info = etree.SubElement(sig, _DS + "KeyInfo")
    x509_data = etree.SubElement(key_info, _DS + "X509Data")
    etree.SubElement(x509_data, _DS + "X509Certificate").text = base64.b64encode(
        certificate.public_bytes(serialization.Encoding.DER)
    ).decode()

    # Place it after TraceHeaderList (or after MessageHeader when there is none), indented like
    # its siblings so the output stays readable.
    anchor = None
    for name in ("TraceHeaderList", "MessageHeader"):
        anchor = next((el for el in header if _local(el) == name and _ns(el) == NAMESPACE), None)
        if anchor is not None:
            break
    if anchor is None:
        header.insert(0, sig)
    else:
        anchor.addnext(sig)
        sig.tail = anchor.tail
        if header.text is not None and not header.text.strip():
            anchor.tail = header.text
    # The digest is taken exactly as a verifier will: the document with this Signature removed
    # by the enveloped-signature transform (its tail text stays), then exclusive c14n.
    unsigned = copy.deepcopy(tree)
    _remove_keeping_tail(_at(unsigned, _position(sig)))
    digest = hashlib.sha256(
        etree.tostring(unsigned, method="c14n", exclusive=True, with_comments=False)
    ).digest()
    digest_el.text = base64.b64encode(digest).decode()
    # SignedInfo is canonicalised in place (exclusive c14n renders only namespaces it uses).
    octets = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
    value_el.text = base64.b64encode(key.sign(octets, padding.PKCS1v15(), hashes.SHA256())).decode()
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(tree, encoding="UTF-8")
