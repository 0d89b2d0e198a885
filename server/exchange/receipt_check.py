"""Checking a receipt offline (``lienthong receipt verify``), each part on its own.

A receipt (:mod:`server.exchange.receipts`) is valid when every check below passes. A failure
is reported under the name of its check, with what exactly failed, so an altered content is
never reported as an untrusted certificate:

- ``content``: the encapsulated content is a Liên Thông receipt (its canonical JSON);
- ``content digest``: the digest of that content is the message digest the seal signed;
- ``signature``: the seal's signature over the signed attributes verifies with the key of the
  seal certificate carried in the receipt, and those attributes name that certificate and the
  content type;
- ``chain``: the seal certificate chains to a given trust root, is valid now, usable for
  signatures, and not revoked per the given CRLs (not checked without CRLs);
- ``timestamp``: the signature timestamp is present, the TSA's signature over its ``TSTInfo`` is
  intact and valid, its message imprint is the digest of this receipt's signature value, and
  the TSA certificate chains to a given trust root;
- ``package`` (when a file is given): its SHA-256 is the stored package's or the bytes' as sent.

A file that is not a CMS ``SignedData`` at all, or whose structure cannot be read, is one
finding (``unreadable``), never an exception.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp, x509

from server.exchange.receipts import RECEIPT_TYPE

# asn1crypto and pyHanko raise these on structures they cannot read.
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (asn1crypto appends 'while parsing ...')."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@dataclass
class ReceiptVerdict:
    """The outcome of :func:`verify_receipt`: valid when nothing failed."""

    body: dict[str, Any] | None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (check, what failed)
    unreadable: str | None = None  # why the file is no readable CMS receipt at all
    signer: str | None = None
    signed_at: datetime | None = None  # the signing-time signed attribute (the seal's claim)
    timestamp: datetime | None = None  # the TSA's time
    tsa: str | None = None
    package_match: str | None = None  # "the package as stored by the axis" / "... as sent"

    def fail(self, check: str, message: str) -> None:
        """Record that ``check`` failed, saying what failed."""
        self.failures.append((check, message))

    @property
    def ok(self) -> bool:
        """True when the receipt (and the package, if given) passed every check."""
        return self.unreadable is None and not self.failures

    @property
    def problems(self) -> list[str]:
        """One ``check: what failed`` line per failure."""
        if self.unreadable is not None:
            return [self.unreadable]
        return [f"{check}: {message}" for check, message in self.failures]

    def lines(self) -> list[str]:
        """The report: one line per failure and the verdict last, or the one VALID line."""
        if self.unreadable is not None:
            return [f"INVALID receipt: {self.unreadable}"]
        if self.failures:
            failed = ", ".join(dict.fromkeys(check for check, _ in self.failures))
            return [*self.problems, f"INVALID receipt: {failed} failed"]
        body = self.body or {}
        recipients = body.get("recipients") or []
        sealed = f"at {self.signed_at.isoformat()}" if self.signed_at else "(no signing time)"
        parts = [
            f"VALID receipt: document {body.get('id')} (DocumentId {body.get('document_id')})",
            f"from {body.get('sender')} to {len(recipients)} recipient(s)",
            f"accepted {body.get('received_at')} by axis {body.get('axis')}",
            f"sealed by {self.signer} {sealed}",
            f"timestamped {self.timestamp.isoformat() if self.timestamp else '?'} by {self.tsa}",
        ]
        if self.package_match:
            parts.append(f"package matches ({self.package_match})")
        return [", ".join(parts)]

    def summary(self) -> str:
        """The report as printed (see :meth:`lines`)."""
        return "\n".join(self.lines())


def _read(receipt_der: bytes) -> tuple[cms.SignedData, cms.SignerInfo, bytes]:
    """The SignedData, its one SignerInfo and the encapsulated content; ValueError otherwise."""
    try:
        info = cms.ContentInfo.load(receipt_der)
        signed_data = info["content_type"].native == "signed_data"
    except _UNREADABLE as exc:
        raise ValueError(f"not a CMS receipt ({_one_line(exc)})") from exc
    if not signed_data:
        raise ValueError("not a CMS receipt (no SignedData)")
    try:
        signed = info["content"]
        signed.native  # noqa: B018 (parse every part now: a damaged one is found here)
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise ValueError(f"{len(signer_infos)} signers, a receipt has one")
        raw = bytes(signed["encap_content_info"]["content"])
    except _UNREADABLE as exc:
        raise ValueError(f"a damaged CMS receipt ({_one_line(exc)})") from exc
    return signed, signer_infos[0], raw


def _body(raw: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and parsed.get("type") == RECEIPT_TYPE else None


@dataclass
class _SignerFindings:
    """What failed in one SignedData (the seal's, or the timestamp token's)."""

    cert: x509.Certificate | None = None
    altered: bool = False  # the content's digest is not the signed message digest
    digest: str | None = None  # the digest could not be compared
    forged: bool = False  # the signature does not verify with the certificate's key
    signature: str | None = None  # the signature could not be checked
    chain: str | None = None  # why the certificate is not trusted


async def _chain_problem(
    cert: x509.Certificate, others: Sequence[x509.Certificate], context: Any, usage: Any
) -> str | None:
    """Why ``cert`` is not trusted under ``context`` for ``usage``, or None."""
    from pyhanko_certvalidator import CertificateValidator
    from pyhanko_certvalidator.errors import (
        ExpiredError,
        InsufficientRevinfoError,
        InvalidCertificateError,
        NotYetValidError,
        PathBuildingError,
        PathError,
        RevokedError,
        ValidationError,
    )

    validator = CertificateValidator(cert, intermediate_certs=others, validation_context=context)
    try:
        await validator.async_validate_path()
        usage.validate(cert)
    except PathBuildingError:
        return "does not chain to the given trust roots"
    except RevokedError as exc:
        return f"is revoked ({_one_line(exc)})"
    except (ExpiredError, NotYetValidError) as exc:
        return f"is not valid now ({_one_line(exc)})"
    except InsufficientRevinfoError as exc:
        return f"has no usable revocation data in the given CRLs ({_one_line(exc)})"
    except InvalidCertificateError as exc:
        return f"may not make this signature ({_one_line(exc)})"
    except (ValidationError, PathError, *_UNREADABLE) as exc:
        return f"does not validate ({_one_line(exc)})"
    return None


async def _check_signer(
    signed: cms.SignedData, signer_info: cms.SignerInfo, content: bytes, context: Any, usage: Any
) -> _SignerFindings:
    """Content digest, signature and chain of one SignedData, each checked on its own."""
    from pyhanko.sign.general import find_unique_cms_attribute
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.generic_cms import (
        extract_certs_for_validation,
        validate_sig_integrity,
    )

    found = _SignerFindings()
    algorithm = signer_info["digest_algorithm"]["algorithm"].native
    try:
        digest = hashlib.new(algorithm, content).digest()
    except ValueError:
        found.digest = found.signature = f"unsupported digest algorithm {algorithm}"
        return found
    if signer_info["signed_attrs"].native is None:
        found.signature = "there are no signed attributes"
        return found
    try:
        signed_digest = find_unique_cms_attribute(signer_info["signed_attrs"], "message_digest")
        found.altered = signed_digest.native != digest
    except (*_UNREADABLE, SignatureValidationError) as exc:
        found.digest = f"no single message digest was signed ({_one_line(exc)})"
    try:
        certs = extract_certs_for_validation(signed)
    except (*_UNREADABLE, SignatureValidationError) as exc:
        found.signature = f"the signer's certificate is not usable ({_one_line(exc)})"
        return found
    found.cert = certs.signer_cert
    try:
        _, valid = validate_sig_integrity(
            signer_info,
            certs.signer_cert,
            expected_content_type=signed["encap_content_info"]["content_type"].native,
            actual_digest=digest,
            sig_validator=context.sig_validator,
        )
        found.forged = not valid
    except (*_UNREADABLE, SignatureValidationError) as exc:
        found.signature = f"the signed attributes are not consistent ({_one_line(exc)})"
    found.chain = await _chain_problem(certs.signer_cert, certs.other_certs, context, usage)
    return found


def _name(cert: x509.Certificate | None) -> str:
    try:
        return cert.subject.human_friendly if cert is not None else "?"
    except _UNREADABLE:
        return "?"


@dataclass(frozen=True)
class _Signer:
    """Who signs one SignedData of a receipt, and how its failures are reported."""

    who: str  # in "the <who> certificate"
    checks: tuple[str, str, str]  # the checks its digest, signature and chain failures fall under
    altered: str  # its content does not match the signed digest
    forged: str  # its signature does not verify
    prefix: str = ""  # before why a check could not be made
    timestamping: bool = False  # key usage of a TSA, else of a signer


_SEAL = _Signer(
    "seal",
    ("content digest", "signature", "chain"),
    "the receipt's content was altered: its digest is not the message digest the seal signed",
    "the seal's signature does not verify with the seal certificate's key (the signature or the "
    "signed attributes were altered)",
)
_TSA = _Signer(
    "TSA",
    ("timestamp", "timestamp", "timestamp"),
    "the timestamp token was altered: its TSTInfo is not what the TSA signed",
    "the TSA's signature on the timestamp token does not verify",
    prefix="the timestamp token: ",
    timestamping=True,
)


async def _check_signed_by(
    verdict: ReceiptVerdict,
    signer: _Signer,
    signed: cms.SignedData,
    signer_info: cms.SignerInfo,
    content: bytes,
    context: Any,
) -> str:
    """Check one SignedData, record what failed under ``signer``'s checks; its signer's name."""
    from pyhanko.sign.validation.status import (
        StandardCMSSignatureStatus,
        TimestampSignatureStatus,
    )

    usage = (
        TimestampSignatureStatus.default_usage_constraints()
        if signer.timestamping
        else StandardCMSSignatureStatus.default_usage_constraints(None)
    )
    found = await _check_signer(signed, signer_info, content, context, usage)
    name = _name(found.cert)
    digest_check, signature_check, chain_check = signer.checks
    for check, failed, message, problem in (
        (digest_check, found.altered, signer.altered, found.digest),
        (signature_check, found.forged, signer.forged, found.signature),
    ):
        if failed:
            verdict.fail(check, message)
        elif problem is not None:
            verdict.fail(check, signer.prefix + problem)
    if found.chain is not None:
        verdict.fail(chain_check, f"the {signer.who} certificate ({name}) {found.chain}")
    return name


def _timestamp_tokens(signer_info: cms.SignerInfo) -> list[cms.ContentInfo]:
    unsigned = signer_info["unsigned_attrs"]
    if unsigned.native is None:
        return []
    return [
        value
        for attribute in unsigned
        if attribute["type"].native == "signature_time_stamp_token"
        for value in attribute["values"]
    ]


async def _check_timestamp(
    verdict: ReceiptVerdict, signer_info: cms.SignerInfo, context: Any
) -> None:
    try:
        tokens = _timestamp_tokens(signer_info)
    except _UNREADABLE as exc:
        verdict.fail("timestamp", f"the timestamp token cannot be read ({_one_line(exc)})")
        return
    if not tokens:
        verdict.fail("timestamp", "the receipt carries no signature timestamp")
        return
    if len(tokens) > 1:
        verdict.fail("timestamp", f"{len(tokens)} signature timestamps, a receipt has one")
        return
    try:
        token = tokens[0]["content"]
        (token_signer,) = token["signer_infos"]
        encapsulated = token["encap_content_info"]["content"]
        tst_info = encapsulated.parsed
        if not isinstance(tst_info, tsp.TSTInfo):
            raise ValueError("it holds no TSTInfo")
        verdict.timestamp = tst_info["gen_time"].native
        imprint = tst_info["message_imprint"]
        covered = hashlib.new(
            imprint["hash_algorithm"]["algorithm"].native, signer_info["signature"].native
        ).digest()
        content = bytes(encapsulated)
    except _UNREADABLE as exc:
        verdict.fail("timestamp", f"the timestamp token cannot be read ({_one_line(exc)})")
        return
    verdict.tsa = await _check_signed_by(verdict, _TSA, token, token_signer, content, context)
    if covered != imprint["hashed_message"].native:
        verdict.fail(
            "timestamp",
            "the timestamp does not cover this receipt's signature (its message imprint is "
            "not the digest of the signature value)",
        )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _check_package(verdict: ReceiptVerdict, package: Path) -> None:
    body = verdict.body or {}
    digest = _sha256_file(package)
    stored = (body.get("package") or {}).get("sha256")
    sent = (body.get("received") or {}).get("sha256")
    if digest == stored:
        verdict.package_match = "the package as stored by the axis"
    elif digest == sent:
        verdict.package_match = "the package as sent"
    else:
        verdict.fail(
            "package", f"{package.name} is not the package of this receipt (sha256 differs)"
        )


async def verify_receipt(
    receipt_der: bytes,
    trust_roots: Sequence[x509.Certificate],
    package: Path | None = None,
    crls: Sequence[bytes] = (),
) -> ReceiptVerdict:
    """Check a receipt offline, every check of the module docstring on its own.

    Without ``crls`` revocation is not checked (nothing is fetched); with them it is hard-fail.
    """
    from pyhanko.sign.validation.generic_cms import extract_self_reported_ts

    from server.runtime.audit import offline_validation_context

    try:
        signed, signer_info, raw = _read(receipt_der)
    except ValueError as exc:
        return ReceiptVerdict(None, unreadable=str(exc))
    verdict = ReceiptVerdict(_body(raw))
    if verdict.body is None:
        verdict.fail("content", "the signed content is not a Liên Thông receipt")
    if not trust_roots:
        verdict.fail("chain", "no trust root given")
        return verdict
    try:
        verdict.signed_at = extract_self_reported_ts(signer_info)
    except _UNREADABLE:
        verdict.fail("signature", "the signing-time attribute cannot be read")
    context = offline_validation_context(trust_roots, crls)
    verdict.signer = await _check_signed_by(verdict, _SEAL, signed, signer_info, raw, context)
    await _check_timestamp(verdict, signer_info, context)
    if package is not None and verdict.body is not None:
        _check_package(verdict, package)
    return verdict
