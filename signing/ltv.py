"""Long-term validation upkeep of signed PDFs: when does their evidence expire, and renewal.

A PAdES signature stays verifiable after its certificates expire only through proofs of
existence: timestamps made while the certificates were valid, with the revocation information
of that time in the document security store (DSS). The newest timestamp rests on its TSA's
certificate chain in turn, so before that chain expires an archive adds a new document
timestamp over the whole file, after a DSS update with current revocation information for the
previous timestamp (ETSI EN 319 142-1 B-LTA, "archive timestamp renewal").

- :func:`inspect_protection` says until when a file's evidence holds: the earliest expiry among
  the certificates of the chain of its newest document timestamp, and of every signature not
  yet covered by a document timestamp (its signer's chain and its signature timestamp's TSA
  chain). Pure reading, no network.
- :func:`async_renew_pdf` writes ``input`` plus the renewal into ``output`` (a new file; the
  input is only read): revocation information for uncovered signatures and for the newest
  document timestamp (pyHanko's ``async_update_archival_timestamp_chain``), then a new
  document timestamp from ``services.tsa_url`` with its own validation data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, x509

from signing.errors import InputPdfError, SigningError
from signing.sign import IO_CHUNK_SIZE, SigningServices

TIMESTAMP_MD = "sha256"


class RenewalError(SigningError):
    """The renewal could not be made (TSA or revocation sources unreachable, path invalid)."""


@dataclass(frozen=True)
class Protection:
    """Until when the evidence in a signed PDF holds without renewal, and why.

    ``expires_at``: the earliest ``not_after`` among the certificates that must stay valid (see
    the module docstring); ``cause``: which certificate, in words; ``signatures`` and
    ``document_timestamps``: counts; ``last_timestamp_at``: the newest timestamp's time.
    """

    expires_at: datetime
    cause: str
    signatures: int
    document_timestamps: int
    last_timestamp_at: datetime | None


def _name(cert: x509.Certificate) -> str:
    return str(cert.subject.human_friendly)


def _not_after(cert: x509.Certificate) -> datetime:
    value: datetime = cert["tbs_certificate"]["validity"]["not_after"].native
    return value


def _chain_expiry(
    cert: x509.Certificate, pool: Sequence[x509.Certificate]
) -> tuple[datetime, x509.Certificate]:
    """The earliest expiry along ``cert``'s issuer chain (issuers looked up in ``pool``), and
    the certificate that expires then."""
    earliest, which = _not_after(cert), cert
    seen = {cert.sha256}
    current = cert
    while current.issuer != current.subject:
        issuer = next(
            (c for c in pool if c.subject == current.issuer and c.sha256 not in seen), None
        )
        if issuer is None:
            break
        seen.add(issuer.sha256)
        if _not_after(issuer) < earliest:
            earliest, which = _not_after(issuer), issuer
        current = issuer
    return earliest, which


def _certs(signed_data: cms.SignedData) -> list[x509.Certificate]:
    return [c.chosen for c in signed_data["certificates"] or () if c.name == "certificate"]


def _tst_time(signed_data: cms.SignedData) -> datetime:
    value: datetime = signed_data["encap_content_info"]["content"].parsed["gen_time"].native
    return value


def _signature_timestamps(embedded: Any) -> list[cms.SignedData]:
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    return list(extract_tst_data_iter(embedded.signer_info, signed=False))


def _dss_certs(reader: Any) -> list[x509.Certificate]:
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError

    try:
        return list(DocumentSecurityStore.read_dss(reader).load_certs())
    except NoDSSFoundError:
        return []


def _uncovered(reader: Any) -> list[Any]:
    """Signatures made after the newest document timestamp (all of them when there is none)."""
    timestamps = reader.embedded_timestamp_signatures
    regular = reader.embedded_regular_signatures
    if not timestamps:
        return list(regular)
    newest = max(t.signed_revision for t in timestamps)
    return [s for s in regular if s.signed_revision > newest]


def protection_of(reader: Any, trust_roots: Iterable[x509.Certificate] = ()) -> Protection | None:
    """:func:`inspect_protection` on an open pyHanko ``PdfFileReader``."""
    timestamps = reader.embedded_timestamp_signatures
    regular = reader.embedded_regular_signatures
    if not timestamps and not regular:
        return None
    pool: list[x509.Certificate] = [*_dss_certs(reader), *trust_roots]
    for sig in [*timestamps, *regular]:
        pool.extend(_certs(sig.signed_data))
        for tst in _signature_timestamps(sig) if sig in regular else ():
            pool.extend(_certs(tst))
    # (expiry, what expires, whose) for every certificate chain the evidence rests on.
    limits: list[tuple[datetime, x509.Certificate, str]] = []
    times: list[datetime] = []
    if timestamps:
        newest = max(timestamps, key=lambda t: t.signed_revision)
        when = _tst_time(newest.signed_data)
        times.append(when)
        expiry, cert = _chain_expiry(newest.signer_cert, pool)
        limits.append((expiry, cert, f"the newest document timestamp ({when:%Y-%m-%d})"))
    for sig in _uncovered(reader):
        expiry, cert = _chain_expiry(sig.signer_cert, pool)
        limits.append((expiry, cert, f"signature {sig.field_name!r}"))
        for info in _signature_timestamps(sig):
            when = _tst_time(info)
            times.append(when)
            signer_id = info["signer_infos"][0]["sid"]
            tsa = next(
                (
                    c
                    for c in _certs(info)
                    if signer_id.name == "issuer_and_serial_number"
                    and c.issuer == signer_id.chosen["issuer"]
                    and c.serial_number == signer_id.chosen["serial_number"].native
                ),
                None,
            )
            if tsa is not None:
                expiry, cert = _chain_expiry(tsa, pool)
                limits.append((expiry, cert, f"the timestamp of signature {sig.field_name!r}"))
    expires_at, cert, whose = min(limits, key=lambda item: item[0])
    return Protection(
        expires_at=expires_at,
        cause=f"certificate {_name(cert)!r} of {whose} expires {expires_at:%Y-%m-%d}",
        signatures=len(regular),
        document_timestamps=len(timestamps),
        last_timestamp_at=max(times) if times else None,
    )


def inspect_protection(
    path: str | os.PathLike[str], trust_roots: Iterable[x509.Certificate] = ()
) -> Protection | None:
    """Until when the evidence in the PDF at ``path`` holds (see :class:`Protection`); None
    when it has no signature or document timestamp. Reads only; no network. Raises
    :class:`InputPdfError` for a file that is not a readable PDF."""
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        with open(path, "rb", buffering=IO_CHUNK_SIZE) as fh:
            return protection_of(PdfFileReader(fh, strict=False), trust_roots)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InputPdfError(f"{Path(path).name} is not a readable signed PDF: {exc}") from exc
    except OSError as exc:
        raise InputPdfError(f"cannot read {path}: {exc.strerror}") from exc


async def async_renew_pdf(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    services: SigningServices,
) -> Protection:
    """Write ``input`` plus a B-LTA renewal into ``output``: a DSS update with current
    revocation information (for signatures not yet covered by a document timestamp and for the
    newest document timestamp), then a new document timestamp from ``services.tsa_url``. The
    input is only read; ``output`` appears only when complete (temp file, fsync, rename).
    Return the renewed file's :class:`Protection`. Raises :class:`RenewalError` (TSA or
    revocation source unreachable, a certificate path that does not validate) or
    :class:`InputPdfError`."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko.sign.validation.dss import DocumentSecurityStore, collect_validation_info

    if not services.tsa_url or not services.trust_roots:
        raise RenewalError("a renewal needs a time-stamping authority and trust roots")
    source, target = Path(input), Path(output)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        try:
            shutil.copyfile(source, tmp_name)
        except OSError as exc:
            raise InputPdfError(f"cannot read {source}: {exc.strerror}") from exc
        context = services.fresh_context()
        with open(tmp_name, "r+b", buffering=IO_CHUNK_SIZE) as work:  # noqa: ASYNC230
            try:
                reader = PdfFileReader(work, strict=False)
                if not reader.embedded_signatures:
                    raise InputPdfError(f"{source.name} has no signature to renew")
                uncovered = _uncovered(reader)
                if uncovered:
                    # Revocation data for signatures that no document timestamp covers yet
                    # (B-T / B-LT, or a signature added after the last renewal).
                    paths = []
                    for sig in uncovered:
                        paths.extend(await collect_validation_info(sig, context))
                    DocumentSecurityStore.add_dss(
                        output_stream=work, sig_contents=None, paths=paths,
                        validation_context=context,
                    )  # fmt: skip
                    work.seek(0)
                    reader = PdfFileReader(work, strict=False)
                stamper = PdfTimeStamper(services.timestamper())
                if reader.embedded_timestamp_signatures:
                    await stamper.async_update_archival_timestamp_chain(
                        reader, context, in_place=True, chunk_size=IO_CHUNK_SIZE
                    )
                else:
                    writer = IncrementalPdfFileWriter(work, strict=False)
                    await stamper.async_timestamp_pdf(
                        writer, TIMESTAMP_MD, context, in_place=True, chunk_size=IO_CHUNK_SIZE
                    )
            except (PdfReadError, KeyError, TypeError) as exc:
                raise InputPdfError(f"{source.name} is not a readable signed PDF: {exc}") from exc
            work.flush()
            os.fsync(work.fileno())
            work.seek(0)
            renewed = protection_of(PdfFileReader(work, strict=False), services.trust_roots)
        if renewed is None:  # pragma: no cover - a timestamp was just added
            raise RenewalError(f"{source.name}: the renewed file shows no timestamp")
        os.replace(tmp_name, target)
        tmp_name = ""
        return renewed
    except SigningError:
        raise
    except Exception as exc:  # pyHanko, certvalidator and aiohttp errors, in words
        raise RenewalError(f"the renewal of {source.name} failed: {exc}") from exc
    finally:
        if tmp_name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)


__all__ = [
    "Protection",
    "RenewalError",
    "async_renew_pdf",
    "inspect_protection",
    "protection_of",
]
