"""PAdES signing (B-B, B-T, B-LT, B-LTA) of PDF files on pyHanko, fast by design.

What makes it fast and safe (SIGNING-NOTES.md):

- The signer is usually a :class:`signing.tokens.TokenSigner` (one long-lived PKCS#11 session,
  all calls on the module's own thread).
- ``bytes_reserved`` is computed from the certificates, the key size and the timestamp size, so
  pyHanko skips its size-estimating dry run (which signs twice).
- Files are read and written with 1 MiB buffers and the output goes to a temporary file beside
  the target, renamed into place only when complete: a failed signing never leaves a half
  written file, and memory stays flat for large PDFs.
- :class:`SigningServices` is created once and shared: trust roots, one timestamper and one HTTP
  session per TSA (per event loop), and a revocation-checking validation context refreshed every
  few minutes. Its synchronous entry point runs everything on one private event loop so that the
  sessions survive between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509
from pyhanko.pdf_utils.generic import IndirectObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError as PyhankoSigningError
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner
from pyhanko_certvalidator import ValidationContext

from signing.appearance import Appearance, page_sizes
from signing.errors import (
    CertificateRejectedError,
    InputPdfError,
    RevocationUnavailableError,
    SigningError,
    TimestampError,
)

T = TypeVar("T")

IO_CHUNK_SIZE = 1 << 20
# Signed attributes, CMS framing, algorithm identifiers: measured ~1.1 KiB, kept generous.
CMS_OVERHEAD = 2048
TIMESTAMP_MARGIN = 1024
CHECK_CONTEXT_TTL = 300.0  # seconds a shared revocation-checking context is reused


class Level(enum.Enum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @classmethod
    def parse(cls, text: str) -> Level:
        """``"B-T"``, ``"b_t"`` or ``"BT"`` -> :attr:`B_T`."""
        key = text.strip().upper().replace("_", "-")
        for level in cls:
            if key in (level.value, level.value.replace("-", "")):
                return level
        raise SigningError(f"unknown PAdES level {text!r}: use B-B, B-T, B-LT or B-LTA")

    @property
    def needs_timestamp(self) -> bool:
        """B-T and above carry an RFC 3161 signature timestamp."""
        return self is not Level.B_B

    @property
    def needs_revocation_info(self) -> bool:
        """B-LT and B-LTA embed the revocation data of the signer's chain."""
        return self in (Level.B_LT, Level.B_LTA)


B_B, B_T, B_LT, B_LTA = Level.B_B, Level.B_T, Level.B_LT, Level.B_LTA


@dataclass
class _LoopState:
    session: Any
    timestamper: Any
    check_context: ValidationContext | None = None
    check_context_born: float = 0.0
    timestamp_size: int | None = None


@dataclass
class SigningServices:
    """Everything loaded once and shared by many signatures.

    ``trust_roots`` are the anchors used to check the signer (revoked or untrusted signers are
    refused) and to collect revocation information for B-LT/B-LTA; never the OS store.
    ``tsa_url`` is the RFC 3161 time-stamping authority for B-T and above.
    ``signer_key_usage`` is what the signer's certificate must allow (non-repudiation by
    default; configurable for real government certificates).
    """

    trust_roots: tuple[x509.Certificate, ...] = ()
    tsa_url: str | None = None
    other_certs: tuple[x509.Certificate, ...] = ()
    timeout: float = 10.0
    signer_key_usage: frozenset[str] = frozenset({"non_repudiation"})
    check_signer: bool = True
    # Per event loop (aiohttp sessions belong to one loop); weak keys, so a closed, collected
    # loop never hands its dead session to a new loop that happens to reuse its id.
    _states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )
    _runner: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _runner_thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.trust_roots = tuple(self.trust_roots)
        self.other_certs = tuple(self.other_certs)

    def _state(self) -> _LoopState:
        import aiohttp
        from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None or state.session.closed:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            timestamper = (
                HTTPTimeStamper(self.tsa_url, session=session, timeout=int(self.timeout))
                if self.tsa_url
                else None
            )
            state = self._states[loop] = _LoopState(session, timestamper)
        return state

    def timestamper(self) -> Any:
        """The shared timestamper of the current event loop (``None`` without a TSA)."""
        return self._state().timestamper

    async def timestamp_token_size(self) -> int:
        """DER size of one of this TSA's tokens, asked once (pyHanko caches the answer)."""
        state = self._state()
        if state.timestamp_size is None:
            token = await state.timestamper.async_dummy_response("sha256")
            state.timestamp_size = len(token.dump())
        return int(state.timestamp_size)

    def _fetcher_backend(self) -> Any:
        from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

        return AIOHttpFetcherBackend(self._state().session, per_request_timeout=self.timeout)

    def fresh_context(self) -> ValidationContext:
        """A hard-fail validation context that fetches OCSP/CRL (for what B-LT embeds)."""
        return ValidationContext(
            trust_roots=list(self.trust_roots),
            other_certs=list(self.other_certs),
            allow_fetching=True,
            revocation_mode="hard-fail",
            fetcher_backend=self._fetcher_backend(),
        )

    def check_context(self) -> ValidationContext:
        """The shared context that checks signers (OCSP answers reused for a few minutes)."""
        state = self._state()
        now = time.monotonic()
        if state.check_context is None or now - state.check_context_born > CHECK_CONTEXT_TTL:
            state.check_context = self.fresh_context()
            state.check_context_born = now
        return state.check_context

    def _runner_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._runner is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="signing", daemon=True)
                thread.start()
                self._runner, self._runner_thread = loop, thread
            return self._runner

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this object's private event loop (started on first use)."""
        return asyncio.run_coroutine_threadsafe(coro, self._runner_loop()).result()

    async def offload(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on this object's private event loop, in its own thread.

        pyHanko's async API still parses, hashes and builds the CMS on the calling loop
        (SIGNING-NOTES.md, trap 11): a server awaits its signing and validation through this so
        that its own loop keeps answering. The worker loop has its own HTTP session and
        timestamper (reused from call to call); PKCS#11 calls still go to the token's dedicated
        thread (:class:`signing.tokens.TokenSigner`). Pure-Python work holds the GIL, so this
        keeps the caller's loop responsive rather than adding CPU: several signatures at once
        share the worker thread (scale with processes). Cancelling the await cancels ``coro``.
        """
        loop = self._runner_loop()
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def aclose(self) -> None:
        """Close the HTTP session of the current event loop."""
        state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.session.close()

    def close(self) -> None:
        """Close every session and stop the private loop."""
        if self._runner is not None:
            self.run(self.aclose())
            self._runner.call_soon_threadsafe(self._runner.stop)
            if self._runner_thread is not None:
                self._runner_thread.join(timeout=5)
            self._runner = None


def estimate_bytes_reserved(signer: Any, timestamp_size: int = 0) -> int:
    """Hex characters to reserve for the CMS blob: twice its estimated DER size, rounded up.

    Counts every certificate the signer may embed, the raw signature, the CMS overhead and the
    timestamp token, so pyHanko never needs its dry run.
    """
    certs = {c.dump() for c in signer.cert_registry}
    if signer.signing_cert is not None:
        certs.add(signer.signing_cert.dump())
    public_key = signer.signing_cert.public_key
    if public_key.algorithm == "rsa":
        raw_size = (int(public_key.bit_size) + 7) // 8
    else:  # ECDSA/EdDSA signatures are far below this bound
        raw_size = 512
    size = sum(len(c) for c in certs) + raw_size + CMS_OVERHEAD
    if timestamp_size:
        size += timestamp_size + TIMESTAMP_MARGIN
    hex_chars = 2 * size
    return (hex_chars + 1023) // 1024 * 1024


def check_validity_period(cert: x509.Certificate, at: datetime) -> None:
    """Refuse a certificate outside its validity period (expired or not yet valid)."""
    validity = cert["tbs_certificate"]["validity"]
    start, end = validity["not_before"].native, validity["not_after"].native
    who = cert.subject.human_friendly
    if at < start:
        raise CertificateRejectedError(
            f"the signer's certificate is not valid before {start}: {who}"
        )
    if at > end:
        raise CertificateRejectedError(f"the signer's certificate expired on {end:%Y-%m-%d}: {who}")


def _signature_fields(reader: Any) -> dict[str, tuple[int, tuple[float, ...]]]:
    """Existing signature fields: name -> (page index, rect)."""
    page_refs: list[Any] = []

    def walk(node: Any, ref: Any) -> None:
        if node.get("/Type") == "/Pages":
            for kid in node["/Kids"]:
                walk(kid.get_object(), kid)
        else:
            page_refs.append(ref)

    pages = reader.root.raw_get("/Pages")
    walk(pages.get_object(), pages)
    index = {
        (r.idnum, r.generation): i for i, r in enumerate(page_refs) if isinstance(r, IndirectObject)
    }
    out: dict[str, tuple[int, tuple[float, ...]]] = {}
    for name, _value, ref in fields.enumerate_sig_fields(reader):
        obj = ref.get_object()
        rect = obj.get("/Rect")
        page = obj.raw_get("/P") if "/P" in obj else None
        if rect is None:
            continue
        page_no = index.get((page.idnum, page.generation), 0) if page is not None else 0
        out[name] = (page_no, tuple(float(v) for v in rect))
    return out


def _root_causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _translate(exc: BaseException, level: Level) -> SigningError:
    """One clear :class:`SigningError` for a pyHanko/certvalidator/network failure."""
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError
    from pyhanko_certvalidator.errors import (
        ExpiredError,
        InsufficientRevinfoError,
        PathBuildingError,
        PathValidationError,
        RevokedError,
    )

    for cause in _root_causes(exc):
        if isinstance(cause, SigningError):
            return cause
        if isinstance(cause, RevokedError):
            return CertificateRejectedError(f"the signer's certificate is revoked: {cause}")
        if isinstance(cause, ExpiredError):
            return CertificateRejectedError(f"the signer's certificate is expired: {cause}")
        if isinstance(cause, InsufficientRevinfoError):
            return RevocationUnavailableError(
                f"no revocation information for the signer's certificate ({level.value}): {cause}"
            )
        if isinstance(cause, PathBuildingError):
            return CertificateRejectedError(f"the signer's certificate is not trusted: {cause}")
        if isinstance(cause, PathValidationError):
            return CertificateRejectedError(f"the signer's certificate is not valid: {cause}")
        if isinstance(cause, TimestampRequestError):
            return TimestampError(f"the time-stamping authority failed: {cause}")
    return SigningError(f"signing failed: {exc}")


async def async_sign_pdf(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    signer: Any,
    *,
    level: Level = Level.B_B,
    appearance: Appearance | None = None,
    field: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    services: SigningServices | None = None,
    bytes_reserved: int | None = None,
    durable: bool = True,
) -> Path:
    """Sign the PDF ``input`` into ``output`` at PAdES ``level``; return ``output``'s path.

    A file that is already signed gets one more signature in an incremental update (existing
    signatures stay valid). ``appearance`` is ``None`` (invisible) or a profile from
    :mod:`signing.appearance`. B-T and above need ``services.tsa_url``; B-LT and B-LTA need
    ``services.trust_roots`` and reachable OCSP/CRL. With trust roots, the signer's certificate
    is checked (hard-fail revocation) before anything is signed.

    ``durable`` fsyncs the signed file before renaming it into place (turn it off only when the
    caller stores the result elsewhere durably). Raises a :class:`SigningError` subclass;
    ``output`` is then untouched.
    """
    services = services or SigningServices()
    if level.needs_timestamp and not services.tsa_url:
        raise TimestampError(f"{level.value} needs a time-stamping authority (tsa_url)")
    if level.needs_revocation_info and not services.trust_roots:
        raise RevocationUnavailableError(
            f"{level.value} needs trust roots to collect revocation data"
        )
    signing_time = datetime.now(UTC)
    cert = signer.signing_cert
    check_validity_period(cert, signing_time)

    if level.needs_revocation_info:
        context: ValidationContext | None = services.fresh_context()
    elif services.trust_roots and services.check_signer:
        context = services.check_context()
    else:
        context = None
    timestamper = services.timestamper() if level.needs_timestamp else None

    target = Path(output)
    source = Path(input)
    tmp_name: str | None = None
    # Opening and copying files blocks the loop briefly; pyHanko's parsing and hashing block
    # far longer (SIGNING-NOTES.md, trap 11), which is why large files belong in a process pool.
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                        dir=target.parent)  # fmt: skip
        os.close(fd)
        # The kernel copies the original (copy_file_range/sendfile, no Python buffers); pyHanko
        # then appends the incremental update in place and hashes the file once.
        try:
            shutil.copyfile(source, tmp_name)
        except OSError as exc:
            raise InputPdfError(f"cannot read {source}: {exc.strerror}") from exc
        with open(tmp_name, "r+b", buffering=IO_CHUNK_SIZE) as work:  # noqa: ASYNC230
            writer, field_name, spec, style = open_for_signing(
                work, source.name, field, appearance, signing_time
            )
            meta = PdfSignatureMetadata(
                field_name=field_name,
                md_algorithm="sha256",
                subfilter=fields.SigSeedSubFilter.PADES,
                reason=reason,
                location=location,
                embed_validation_info=level.needs_revocation_info,
                use_pades_lta=level is Level.B_LTA,
                validation_context=context,
                signer_key_usage=set(services.signer_key_usage),
            )
            pdf_signer = PdfSigner(
                meta, signer=signer, timestamper=timestamper, stamp_style=style,
                new_field_spec=spec,
            )  # fmt: skip
            if bytes_reserved is None:
                ts_size = await services.timestamp_token_size() if timestamper else 0
                bytes_reserved = estimate_bytes_reserved(signer, ts_size)
            await pdf_signer.async_sign_pdf(
                writer, bytes_reserved=bytes_reserved, in_place=True, chunk_size=IO_CHUNK_SIZE
            )
            work.flush()
            if durable:
                os.fsync(work.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
        return target
    except SigningError:
        raise
    except (PyhankoSigningError, Exception) as exc:
        raise _translate(exc, level) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)


def open_for_signing(
    stream: Any,
    name: str,
    field: str | None,
    appearance: Appearance | None,
    signing_time: datetime,
) -> tuple[IncrementalPdfFileWriter, str, fields.SigFieldSpec | None, Any]:
    """An incremental writer on the PDF ``stream`` and where the new signature goes.

    Returns ``(writer, field_name, field_spec, stamp_style)``: ``field`` or the next free
    ``SignatureN`` name, with the field to create and its appearance (both ``None`` when the
    field exists). Raises :class:`InputPdfError` for a file pyHanko cannot read (``name`` in
    the message) or an encrypted one, :class:`SigningError` for an appearance on an existing
    field.
    """
    try:
        writer = IncrementalPdfFileWriter(stream, strict=False)
    except Exception as exc:  # pyHanko's reader fails on bad input in many ways
        raise InputPdfError(f"{name} is not a readable PDF: {exc}") from exc
    if writer.prev.encrypted:
        raise InputPdfError(f"{name} is encrypted; decrypt it before signing")
    writer.IO_CHUNK_SIZE = IO_CHUNK_SIZE
    existing = _signature_fields(writer.prev)
    field_name = field or _next_field_name(existing)
    spec, style = _field_spec(writer, field_name, appearance, existing, signing_time)
    return writer, field_name, spec, style


def _next_field_name(existing: dict[str, Any]) -> str:
    n = len(existing) + 1
    while f"Signature{n}" in existing:
        n += 1
    return f"Signature{n}"


def _field_spec(
    writer: IncrementalPdfFileWriter,
    name: str,
    appearance: Appearance | None,
    existing: dict[str, tuple[int, tuple[float, ...]]],
    signing_time: datetime,
) -> tuple[fields.SigFieldSpec | None, Any]:
    if name in existing:
        if appearance is not None:
            raise SigningError(f"field {name!r} exists; a new appearance needs a new field")
        return None, None
    if appearance is None:
        return fields.SigFieldSpec(sig_field_name=name), None
    placement = appearance.layout(page_sizes(writer.prev), existing)
    x1, y1, x2, y2 = placement.box
    spec = fields.SigFieldSpec(
        sig_field_name=name,
        on_page=placement.page,
        box=(round(x1), round(y1), round(x2), round(y2)),
    )
    return spec, appearance.style(signing_time)


def sign_pdf(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    signer: Any,
    *,
    level: Level = Level.B_B,
    appearance: Appearance | None = None,
    field: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    services: SigningServices | None = None,
    bytes_reserved: int | None = None,
    durable: bool = True,
) -> Path:
    """Synchronous :func:`async_sign_pdf` (not for use inside a running event loop).

    Runs on ``services``' private event loop, so its HTTP sessions and timestamper are reused
    from one call to the next.
    """
    own = services is None
    services = services or SigningServices()
    try:
        return services.run(
            async_sign_pdf(
                input, output, signer, level=level, appearance=appearance, field=field,
                reason=reason, location=location, services=services,
                bytes_reserved=bytes_reserved, durable=durable,
            )
        )  # fmt: skip
    finally:
        if own:
            services.close()


def load_pkcs12_signer(path: str | os.PathLike[str], passphrase: bytes | None) -> Any:
    """A signer from a PKCS#12 file: for development only, never for production keys."""
    from pyhanko.sign.signers import SimpleSigner

    signer = SimpleSigner.load_pkcs12(str(path), passphrase=passphrase)  # type: ignore[no-untyped-call]
    if signer is None:
        raise SigningError(f"cannot load the PKCS#12 file {path}")
    return signer


__all__ = [
    "B_B",
    "B_LT",
    "B_LTA",
    "B_T",
    "Level",
    "SigningServices",
    "async_sign_pdf",
    "estimate_bytes_reserved",
    "load_pkcs12_signer",
    "open_for_signing",
    "sign_pdf",
]
