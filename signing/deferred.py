"""Two-step (deferred) signing for keys the server never holds: officers' USB tokens.

1. :func:`prepare` lays out the signature (field, NĐ 30 appearance, placeholder of the right
   size) into a prepared file and computes the CMS signed attributes; it returns a
   :class:`SigningSession` and ``digest_to_sign``, the SHA-256 of the DER signed attributes.
2. The officer's token signs that digest (``CKM_RSA_PKCS`` over a DigestInfo, which is what
   browser plug-ins expose), possibly in another process or on another machine.
3. :func:`finish` checks the raw signature against the enrolled certificate *before anything is
   written*, builds the CMS (adding the RFC 3161 timestamp for B-T and above), fills the
   placeholder and, for B-LT/B-LTA, adds revocation data and the document timestamp.

A session is plain data (:meth:`SigningSession.to_dict`) so each step may run in its own
process; it expires (``ttl``), after which :func:`finish` refuses it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import cms, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import load_der_x509_certificate
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import ExternalSigner
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTBSDocument
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.appearance import Appearance
from signing.errors import InputPdfError, SessionError, SigningError
from signing.sign import (
    IO_CHUNK_SIZE,
    Level,
    SigningServices,
    _translate,
    check_validity_period,
    estimate_bytes_reserved,
    open_for_signing,
)

DEFAULT_TTL = timedelta(minutes=15)


@dataclass
class SigningSession:
    """State between :func:`prepare` and :func:`finish` (no secrets: it may be stored)."""

    session_id: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    level: Level
    field_name: str
    prepared_path: Path
    signed_attrs_der: bytes
    document_digest: bytes
    reserved_region_start: int
    reserved_region_end: int
    expires_at: datetime

    @property
    def digest_to_sign(self) -> bytes:
        """SHA-256 of the DER signed attributes: what the token must sign."""
        return hashlib.sha256(self.signed_attrs_der).digest()

    def expired(self, now: datetime | None = None) -> bool:
        """True from ``expires_at`` on (``now`` defaults to the current time)."""
        return (now or datetime.now(UTC)) >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (base64 for binary values)."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        return {
            "session_id": self.session_id,
            "certificate": b64(self.certificate.dump()),
            "chain": [b64(c.dump()) for c in self.chain],
            "level": self.level.value,
            "field_name": self.field_name,
            "prepared_path": str(self.prepared_path),
            "signed_attrs": b64(self.signed_attrs_der),
            "document_digest": b64(self.document_digest),
            "reserved_region": [self.reserved_region_start, self.reserved_region_end],
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SigningSession:
        """The inverse of :meth:`to_dict`."""
        try:
            start, end = data["reserved_region"]
            return cls(
                session_id=str(data["session_id"]),
                certificate=x509.Certificate.load(base64.b64decode(data["certificate"])),
                chain=tuple(x509.Certificate.load(base64.b64decode(c)) for c in data["chain"]),
                level=Level.parse(data["level"]),
                field_name=str(data["field_name"]),
                prepared_path=Path(data["prepared_path"]),
                signed_attrs_der=base64.b64decode(data["signed_attrs"]),
                document_digest=base64.b64decode(data["document_digest"]),
                reserved_region_start=int(start),
                reserved_region_end=int(end),
                expires_at=datetime.fromisoformat(data["expires_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SessionError(f"not a signing session: {exc}") from exc


async def async_prepare(
    input: str | os.PathLike[str],
    certificate: x509.Certificate,
    *,
    chain: tuple[x509.Certificate, ...] = (),
    level: Level = Level.B_B,
    appearance: Appearance | None = None,
    field: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    services: SigningServices | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> tuple[SigningSession, bytes]:
    """Prepare ``input`` for a signature by ``certificate``; return the session and the digest.

    The certificate is checked now (validity period; with ``services.trust_roots`` also chain
    and revocation, hard-fail) so that an officer is not asked to sign in vain.
    """
    services = services or SigningServices()
    if level.needs_timestamp and not services.tsa_url:
        raise SigningError(f"{level.value} needs a time-stamping authority (tsa_url)")
    now = datetime.now(UTC)
    check_validity_period(certificate, now)
    # Until the token answers, the signature value is only its size (in bytes).
    signer = _external_signer(certificate, chain, (certificate.public_key.bit_size + 7) // 8)
    if services.trust_roots and services.check_signer:
        await _check_certificate(certificate, chain, services)

    directory = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
    source = Path(input)
    try:
        infile = open(source, "rb", buffering=IO_CHUNK_SIZE)  # noqa: ASYNC230
    except OSError as exc:
        raise InputPdfError(f"cannot open {source}: {exc.strerror}") from exc
    session_id = secrets.token_hex(16)
    prepared = directory / f".signing-{session_id}.pdf"
    try:
        with infile:
            writer, field_name, spec, style = open_for_signing(
                infile, source.name, field, appearance, now
            )
            meta = PdfSignatureMetadata(
                field_name=field_name,
                md_algorithm="sha256",
                subfilter=fields.SigSeedSubFilter.PADES,
                reason=reason,
                location=location,
            )
            pdf_signer = PdfSigner(meta, signer=signer, stamp_style=style, new_field_spec=spec)
            ts_size = await services.timestamp_token_size() if level.needs_timestamp else 0
            with open(prepared, "w+b", buffering=IO_CHUNK_SIZE) as out:  # noqa: ASYNC230
                digest, _tbs, _ = await pdf_signer.async_digest_doc_for_signing(
                    writer,
                    bytes_reserved=estimate_bytes_reserved(signer, ts_size),
                    output=out,
                    chunk_size=IO_CHUNK_SIZE,
                )
        signed_attrs = await signer.signed_attrs(digest.document_digest, "sha256", use_pades=True)
    except SigningError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(prepared)
        raise
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(prepared)
        raise _translate(exc, level) from exc
    session = SigningSession(
        session_id=session_id,
        certificate=certificate,
        chain=tuple(chain),
        level=level,
        field_name=field_name,
        prepared_path=prepared,
        signed_attrs_der=signed_attrs.dump(),
        document_digest=digest.document_digest,
        reserved_region_start=digest.reserved_region_start,
        reserved_region_end=digest.reserved_region_end,
        expires_at=now + ttl,
    )
    return session, session.digest_to_sign


def _external_signer(
    certificate: x509.Certificate, chain: tuple[x509.Certificate, ...], value: bytes | int
) -> ExternalSigner:
    """A pyHanko signer whose signature value comes from outside (the officer's token)."""
    registry = SimpleCertificateStore.from_certs([certificate, *chain])  # type: ignore[no-untyped-call]
    return ExternalSigner(
        signing_cert=certificate, cert_registry=registry, signature_value=value,
        embed_roots=False,
    )  # fmt: skip


async def _check_certificate(
    certificate: x509.Certificate, chain: tuple[x509.Certificate, ...], services: SigningServices
) -> None:
    from pyhanko_certvalidator import CertificateValidator

    validator = CertificateValidator(
        certificate,
        intermediate_certs=list(chain),
        validation_context=services.check_context(),
    )
    try:
        await validator.async_validate_usage(  # type: ignore[no-untyped-call]
            set(services.signer_key_usage)
        )
    except Exception as exc:
        raise _translate(exc, Level.B_B) from exc


def verify_raw_signature(
    certificate: x509.Certificate, signed_attrs_der: bytes, raw: bytes
) -> None:
    """Check that ``raw`` is the certificate key's signature of the signed attributes.

    RSA PKCS#1 v1.5 or ECDSA, SHA-256. Raises :class:`SessionError` if it does not verify.
    """
    public_key = load_der_x509_certificate(certificate.dump()).public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(raw, signed_attrs_der, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(raw, signed_attrs_der, ec.ECDSA(hashes.SHA256()))
        else:
            raise SessionError("only RSA and ECDSA signer keys are supported")
    except InvalidSignature:
        raise SessionError(
            "the returned signature does not verify against the enrolled certificate"
        ) from None


async def async_finish(
    session: SigningSession,
    raw_signature: bytes,
    output: str | os.PathLike[str],
    *,
    services: SigningServices | None = None,
    now: datetime | None = None,
) -> Path:
    """Complete ``session`` with the token's ``raw_signature``; write the signed PDF to ``output``.

    Refuses an expired session or a signature that does not verify, before writing anything;
    the prepared file is consumed on success. Returns ``output``'s path.
    """
    services = services or SigningServices()
    if session.expired(now):
        raise SessionError(f"signing session {session.session_id} expired")
    if not session.prepared_path.is_file():
        raise SessionError(f"signing session {session.session_id} is unknown or already used")
    verify_raw_signature(session.certificate, session.signed_attrs_der, raw_signature)
    level = session.level
    signer = _external_signer(session.certificate, session.chain, raw_signature)
    target = Path(output)
    tmp_name: str | None = None
    try:
        signed_attrs = cms.CMSAttributes.load(session.signed_attrs_der)
        timestamper = services.timestamper() if level.needs_timestamp else None
        signature_cms = await signer.async_sign_prescribed_attributes(
            "sha256", signed_attrs=signed_attrs, timestamper=timestamper
        )
        prepared_digest = PreparedByteRangeDigest(
            document_digest=session.document_digest,
            reserved_region_start=session.reserved_region_start,
            reserved_region_end=session.reserved_region_end,
        )
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                        dir=target.parent)  # fmt: skip
        with open(fd, "w+b") as out, open(session.prepared_path, "rb") as prepared:  # noqa: ASYNC230
            while block := prepared.read(IO_CHUNK_SIZE):
                out.write(block)
            await PdfTBSDocument.async_finish_signing(
                out, prepared_digest, signature_cms, chunk_size=IO_CHUNK_SIZE
            )
            if level.needs_revocation_info:
                await _extend_to_long_term(out, session, services)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(session.prepared_path)
        return target
    except SigningError:
        raise
    except Exception as exc:
        raise _translate(exc, level) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)


async def _extend_to_long_term(
    out: Any, session: SigningSession, services: SigningServices
) -> None:
    """B-LT: DSS with the signer's revocation data; B-LTA: then a document timestamp."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.validation.dss import async_add_validation_info

    if not services.trust_roots:
        raise SigningError(f"{session.level.value} needs trust roots to collect revocation data")
    context = services.fresh_context()
    out.seek(0)
    reader = PdfFileReader(out)
    embedded = next(
        s for s in reader.embedded_regular_signatures if s.field_name == session.field_name
    )
    await async_add_validation_info(embedded, context, in_place=True, chunk_size=IO_CHUNK_SIZE)
    if session.level is Level.B_LTA:
        out.seek(0)
        writer = IncrementalPdfFileWriter(out, strict=False)
        await PdfTimeStamper(services.timestamper()).async_timestamp_pdf(
            writer, "sha256", validation_context=context, in_place=True,
            chunk_size=IO_CHUNK_SIZE,
        )  # fmt: skip


def prepare(
    input: str | os.PathLike[str],
    certificate: x509.Certificate,
    *,
    services: SigningServices | None = None,
    **kwargs: Any,
) -> tuple[SigningSession, bytes]:
    """Synchronous :func:`async_prepare` (on ``services``' own event loop when given)."""
    coro = async_prepare(input, certificate, services=services, **kwargs)
    return services.run(coro) if services is not None else asyncio.run(coro)


def finish(
    session: SigningSession,
    raw_signature: bytes,
    output: str | os.PathLike[str],
    *,
    services: SigningServices | None = None,
    now: datetime | None = None,
) -> Path:
    """Synchronous :func:`async_finish` (on ``services``' own event loop when given)."""
    coro = async_finish(session, raw_signature, output, services=services, now=now)
    return services.run(coro) if services is not None else asyncio.run(coro)
