"""Officers' signing sessions (phiên ký) and agency seals (đóng dấu số) on the axis.

Two ways to sign with a key the axis never holds (an officer's USB token):

- two-step: :meth:`SigningDesk.create_session` prepares the PDF (signing.deferred) and hands
  out the digest; the officer's token signs it; :meth:`SigningDesk.submit_signature` checks
  the raw signature against the enrolled certificate *before* anything is written, finishes
  the PDF and stores it;
- the VGCA browser plugin (VN-RULES.md): the plugin downloads the PDF with a short-lived JWT,
  signs it itself and uploads the result; :meth:`SigningDesk.accept_upload` keeps it only if
  it is the served PDF byte for byte plus exactly one new signature, valid and trusted, made
  with the enrolled certificate.

And one way with a key the axis holds: :meth:`SigningDesk.seal_attachment` seals a PDF
attachment with the calling agency's own key on the axis's PKCS#11 module.

Everything a session needs is in the database and the object store (the PDF to sign, the
prepared PDF, the signed attributes), so any process of the axis can finish it, also after a
restart. Results are new objects plus rows; the original package is never altered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import x509

from server.exchange import Exchange
from server.runtime import audit
from server.runtime.config import Config
from server.runtime.spool import temp_path
from server.signatures import session_jwt
from server.signatures.errors import (
    BadSigningRequest,
    NoSealKey,
    SessionClosed,
    SessionExpired,
    SessionNotFound,
    SignatureRejected,
    SigningUnavailable,
    UploadUnauthorized,
)
from server.signatures.requests import (
    AppearanceRequest,
    PdfSource,
    SealKey,
    SessionRequest,
    load_certificates,
    parse_seal_keys,
)
from signing import (
    AppearanceError,
    Level,
    Pin,
    SigningError,
    SigningServices,
    SigningSession,
    Token,
    TokenError,
)
from signing.deferred import async_finish, async_prepare, verify_raw_signature
from signing.errors import SessionError
from signing.sign import async_sign_pdf
from signing.trust import default_trust_store
from storage.db import Database
from storage.ids import utcnow
from storage.objects.base import ObjectStore
from storage.objects.local import fetch_to_file
from storage.repos.signing_sessions import (
    PENDING,
    SIGNED,
    AttachmentVersion,
    AttachmentVersionRepo,
    SessionRow,
    SigningSessionRepo,
)

if TYPE_CHECKING:
    from server.runtime.metrics import Metrics

log = logging.getLogger("lienthong.signing")

SEAL_PIN_ENV = "LIENTHONG_SIGNING_SEAL_PIN"
DOWNLOAD, UPLOAD = "download", "upload"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class SigningDesk:
    """The signing rules of the axis (one per application; see the module docstring)."""

    def __init__(
        self,
        config: Config,
        database: Database,
        objects: ObjectStore,
        exchange: Exchange,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        settings = config.signing
        self.config = config
        # Signing latency (server/runtime/metrics.py); None: [metrics] enabled = false.
        self.metrics = metrics
        self.database = database
        self.objects = objects
        self.exchange = exchange
        # Seals the sessions' JWT secrets at rest (server/runtime/secretbox.py): the router's box.
        self.secrets = exchange.router.secrets
        self.ttl = timedelta(minutes=settings.session_minutes)
        self.chain: tuple[x509.Certificate, ...] = ()
        if settings.chain is not None:
            try:
                data = settings.chain.read_bytes()
            except OSError as exc:
                raise SigningUnavailable(f"cannot read signing.chain: {exc.strerror}") from exc
            self.chain = tuple(load_certificates(data, "signing.chain"))
        store = default_trust_store(settings.trust_dir)
        self.services = SigningServices(
            trust_roots=tuple(store.roots), tsa_url=config.tsa.url, other_certs=self.chain
        )
        self.seal_keys = parse_seal_keys(settings.seal_keys)
        self._seal_tokens: dict[str, Token] = {}
        self._seal_lock = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the HTTP sessions of the TSA/OCSP clients and log out of seal tokens."""
        await self.services.aclose()
        await asyncio.to_thread(self.services.close)  # the worker loop and its HTTP session
        for token in self._seal_tokens.values():
            with contextlib.suppress(SigningError):
                token.close()
        self._seal_tokens.clear()

    def _timed(self, operation: str) -> contextlib.AbstractContextManager[None]:
        """Observe the block as one signing ``operation`` when metrics are on."""
        if self.metrics is None:
            return contextlib.nullcontext()
        return self.metrics.time_signing(operation)

    def _require_trust(self) -> None:
        if not self.services.trust_roots:
            raise SigningUnavailable(
                "no trust roots are configured (certs/trust or signing.trust_dir): the axis "
                "cannot check the signer's certificate, so it does not sign"
            )

    # -- sources -----------------------------------------------------------------------------

    async def attachment_source(self, caller: str, document_id: str, index: int) -> PdfSource:
        """The caller's newest version of attachment ``index`` (what it signed or sealed last),
        else the attachment as sent; visible documents only (else DocumentNotFound)."""
        decoded = await self.exchange.decode_attachment(caller, document_id, index)
        async with self.database.reader() as tx:
            versions = await AttachmentVersionRepo(tx).list(document_id, index, caller)
        if not versions:
            return PdfSource(decoded.path, decoded.name, document_id, index)
        decoded.path.unlink(missing_ok=True)
        latest = versions[-1]
        path = await fetch_to_file(self.objects, latest.sha256, self.config.spool_dir)
        return PdfSource(path, latest.name, document_id, index)

    # -- two-step sessions ---------------------------------------------------------------------

    async def create_session(
        self, caller: str, source: PdfSource, request: SessionRequest
    ) -> tuple[SessionRow, bytes]:
        """Prepare ``source`` (consumed) for the officer's signature; return the stored session
        and the digest the token must sign. The certificate is checked now (validity, chain,
        revocation: hard-fail), so that an officer is never asked to sign in vain."""
        self._require_trust()
        appearance = request.appearance.build()
        chain = tuple({c.sha256: c for c in (*request.chain, *self.chain)}.values())
        try:
            try:
                # Parsing, layout and hashing run on the signing worker loop (off this one).
                with self._timed("session_prepare"):
                    session, digest = await self.services.offload(
                        async_prepare(
                            source.path, request.certificate, chain=chain, level=request.level,
                            appearance=appearance, field=request.field_name,
                            reason=request.reason, location=request.location,
                            services=self.services, workdir=self.config.spool_dir, ttl=self.ttl,
                        )
                    )  # fmt: skip
            except AppearanceError as exc:
                raise BadSigningRequest(str(exc)) from exc
            prepared_path = session.prepared_path
            try:
                source_sha = await asyncio.to_thread(_sha256_file, source.path)
                source_size = source.path.stat().st_size
                source_ref = await self.objects.put_file(source.path, sha256=source_sha)
                prepared_ref = await self.objects.put_file(prepared_path)
            finally:
                prepared_path.unlink(missing_ok=True)
        finally:
            source.path.unlink(missing_ok=True)
        now = utcnow()
        row = SessionRow(
            id=session.session_id,
            organ_id=caller,
            state=PENDING,
            level=request.level.value,
            profile=request.appearance.profile,
            certificate_sha256=request.certificate.sha256.hex(),
            subject=request.certificate.subject.human_friendly,
            source_sha256=source_ref.sha256,
            source_size=source_size,
            prepared_sha256=prepared_ref.sha256,
            session_json=json.dumps(session.to_dict()),
            jwt_secret=secrets.token_hex(32),
            document_id=source.document_id,
            attachment_index=source.attachment_index,
            name=source.name,
            signed_sha256=None,
            signed_size=None,
            signed_via=None,
            created_at=now,
            expires_at=session.expires_at,
            signed_at=None,
        )
        async with self.database.transaction() as tx:
            await SigningSessionRepo(tx, self.secrets).add(row)
            await audit.record_session_created(tx, row)
        log.info("signing session created", extra={"session": row.id, "agency": caller})
        return row, digest

    async def session(self, caller: str, session_id: str) -> SessionRow:
        """The caller's session (another agency's is SessionNotFound, as an absent one)."""
        async with self.database.reader() as tx:
            row = await SigningSessionRepo(tx, self.secrets).get(session_id)
        if row is None or row.organ_id != caller:
            raise SessionNotFound(f"No signing session {session_id}.")
        return row

    @staticmethod
    def _signable(row: SessionRow, now: datetime) -> None:
        if row.state == SIGNED:
            raise SessionClosed(f"Signing session {row.id} is signed already.")
        if row.expired(now):
            raise SessionExpired(
                f"Signing session {row.id} expired at {row.expires_at.isoformat()}; "
                "create a new one."
            )

    async def submit_signature(self, caller: str, session_id: str, raw: bytes) -> SessionRow:
        """Finish the session with the token's raw signature of the digest; store the PDF.

        Refuses (before anything is written) a signature that does not verify against the
        enrolled certificate, an expired session and one signed already.
        """
        row = await self.session(caller, session_id)
        async with self._refusals_recorded(row, "signature"):
            now = utcnow()
            self._signable(row, now)
            state = SigningSession.from_dict(json.loads(row.session_json))
            try:
                verify_raw_signature(state.certificate, state.signed_attrs_der, raw)
            except SessionError as exc:
                raise SignatureRejected(str(exc)) from exc
            prepared = await fetch_to_file(self.objects, row.prepared_sha256, self.config.spool_dir)
            out = temp_path(self.config.spool_dir, ".pdf")
            try:
                state = replace(state, prepared_path=prepared)
                try:
                    with self._timed("session_finish"):
                        await self.services.offload(
                            async_finish(state, raw, out, services=self.services, now=now)
                        )
                except SessionError as exc:
                    raise SignatureRejected(str(exc)) from exc
                return await self._store_signed(row, out, via="signature")
            finally:
                prepared.unlink(missing_ok=True)
                out.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def _refusals_recorded(self, row: SessionRow, via: str) -> AsyncIterator[None]:
        """Record in the audit log why a signature or upload for ``row`` was refused (an
        expired or closed session, a signature or PDF that does not satisfy it), then re-raise."""
        try:
            yield
        except (SignatureRejected, SessionExpired, SessionClosed) as exc:
            await audit.record_signature_refused(self.database, row, via, exc.detail)
            raise

    async def _store_signed(self, row: SessionRow, path: Path, *, via: str) -> SessionRow:
        """Store the signed PDF and link it to the session (and, for an attachment, as a new
        version of it) in one transaction; SessionClosed if another finish won the race."""
        ref = await self.objects.put_file(path)
        at = utcnow()
        signed = replace(
            row, state=SIGNED, signed_sha256=ref.sha256, signed_size=ref.size, signed_via=via,
            signed_at=at,
        )  # fmt: skip
        async with self.database.transaction() as tx:
            if not await SigningSessionRepo(tx, self.secrets).mark_signed(
                row.id, ref.sha256, ref.size, via, at
            ):
                raise SessionClosed(f"Signing session {row.id} is signed already.")
            if row.document_id is not None and row.attachment_index is not None:
                await AttachmentVersionRepo(tx).add(
                    row.document_id, row.attachment_index, row.organ_id, "signature",
                    ref.sha256, ref.size, row.source_sha256, row.name, session_id=row.id,
                )  # fmt: skip
            await audit.record_signature_accepted(tx, signed, via)
        log.info("signing session signed", extra={"session": row.id, "via": via})
        return signed

    # -- the VGCA browser plugin ---------------------------------------------------------------

    def plugin_token(self, row: SessionRow, scope: str) -> str:
        """A JWT for the plugin's download or upload of this session, expiring with it."""
        return session_jwt.issue(
            bytes.fromhex(row.jwt_secret), row.id, scope, row.expires_at, utcnow()
        )

    async def plugin_session(self, session_id: str, token: str | None, scope: str) -> SessionRow:
        """The session a plugin request is for, if ``token`` is a valid JWT for ``scope``."""
        if not token:
            raise UploadUnauthorized("This URL needs the session's JWT (?token= or Bearer).")
        async with self.database.reader() as tx:
            row = await SigningSessionRepo(tx, self.secrets).get(session_id)
        if row is None:
            raise UploadUnauthorized("The token does not open this session.")
        try:
            session_jwt.verify(bytes.fromhex(row.jwt_secret), token, row.id, scope, utcnow())
        except session_jwt.JwtError as exc:
            raise UploadUnauthorized(f"The token does not open this session: {exc}.") from exc
        return row

    async def accept_upload(self, row: SessionRow, path: Path) -> SessionRow:
        """Keep the plugin's signed PDF (``path``, consumed) if it is the served PDF plus
        exactly one new signature, valid and trusted, by the enrolled certificate."""
        try:
            async with self._refusals_recorded(row, "upload"):
                self._signable(row, utcnow())
                await self._check_upload(row, path)
                return await self._store_signed(row, path, via="upload")
        finally:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 (a small spool file)

    async def _check_upload(self, row: SessionRow, path: Path) -> None:
        size = path.stat().st_size  # noqa: ASYNC240
        if size <= row.source_size:
            raise SignatureRejected("The upload is not the served PDF plus a signature.")

        def prefix_sha() -> str:
            digest, left = hashlib.sha256(), row.source_size
            with path.open("rb") as fh:
                while left and (block := fh.read(min(left, 1 << 20))):
                    digest.update(block)
                    left -= len(block)
            return digest.hexdigest()

        if await asyncio.to_thread(prefix_sha) != row.source_sha256:
            raise SignatureRejected(
                "The upload does not start with the PDF this session served: it must be that "
                "PDF, unchanged, with one incremental update holding the new signature."
            )
        source = await fetch_to_file(self.objects, row.source_sha256, self.config.spool_dir)
        try:
            # Parsing both PDFs and validating the signature run on the signing worker loop.
            status = await self.services.offload(self._inspect_upload(row, source, path))
        finally:
            source.unlink(missing_ok=True)

        from pyhanko.sign.diff_analysis import ModificationLevel
        from pyhanko.sign.validation.status import SignatureCoverageLevel

        if not (status.intact and status.valid):
            raise SignatureRejected("The new signature does not verify (bytes or CMS altered).")
        if not status.trusted or status.revoked:
            raise SignatureRejected(
                "The signer's certificate is not trusted by the axis or is revoked."
            )
        later_ok = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
            status.modification_level is not None
            and status.modification_level <= ModificationLevel.LTA_UPDATES
        )
        if not later_ok:
            raise SignatureRejected("The upload changes the document after the new signature.")

    async def _inspect_upload(self, row: SessionRow, source: Path, path: Path) -> Any:
        """The one new signature of the upload, validated (pyHanko's status); runs on the
        signing worker loop: SignatureRejected when the upload is not one new signature by the
        enrolled certificate."""
        from pyhanko.pdf_utils.reader import PdfFileReader
        from pyhanko.sign.validation import async_validate_pdf_signature

        try:
            with source.open("rb") as fh:
                revisions = PdfFileReader(fh, strict=False).xrefs.total_revisions
        except Exception as exc:  # the source was checked when the session was made
            raise SignatureRejected(f"the served PDF cannot be read again: {exc}") from exc
        with path.open("rb") as fh:
            try:
                reader = PdfFileReader(fh, strict=False)
                new = [s for s in reader.embedded_signatures if s.signed_revision >= revisions]
            except Exception as exc:
                raise SignatureRejected(f"The upload is not a readable PDF: {exc}") from exc
            if len(new) != 1:
                raise SignatureRejected(
                    f"The upload must add exactly one signature; it adds {len(new)}.",
                    added=len(new),
                )
            sig = new[0]
            if sig.sig_object.get("/Type") == "/DocTimeStamp":
                raise SignatureRejected("The upload adds a document timestamp, not a signature.")
            if sig.signer_cert.sha256.hex() != row.certificate_sha256:
                raise SignatureRejected(
                    "The new signature is not made with the enrolled certificate "
                    f"({sig.signer_cert.subject.human_friendly})."
                )
            try:
                status = await async_validate_pdf_signature(
                    sig, signer_validation_context=self.services.fresh_context()
                )
            except Exception as exc:
                raise SignatureRejected(f"The new signature cannot be validated: {exc}") from exc
        return status

    # -- the agency seal -----------------------------------------------------------------------

    async def _seal_token(self, caller: str) -> tuple[Token, SealKey]:
        settings = self.config.signing
        key = self.seal_keys.get(caller)
        if key is None or settings.seal_module is None:
            raise NoSealKey(
                f"The axis holds no seal key for {caller} (settings signing.seal_module and "
                "signing.seal_keys)."
            )
        async with self._seal_lock:
            token = self._seal_tokens.get(key.token_label)
            if token is None or token.closed:
                pin_file = (
                    settings.seal_pin_dir / f"{key.token_label}.pin"
                    if settings.seal_pin_dir is not None
                    else None
                )
                try:
                    pin = (
                        Pin.from_file(pin_file)
                        if pin_file is not None and pin_file.is_file()
                        else Pin.from_env(SEAL_PIN_ENV)
                    )
                    token = await asyncio.to_thread(
                        Token.open, settings.seal_module, pin=pin, label=key.token_label
                    )
                except TokenError as exc:
                    raise SigningUnavailable(f"The seal token cannot be used: {exc}") from exc
                self._seal_tokens[key.token_label] = token
        return token, key

    async def seal_attachment(
        self,
        caller: str,
        document_id: str,
        index: int,
        *,
        level: Level,
        appearance: AppearanceRequest,
        reason: str | None = None,
        location: str | None = None,
    ) -> AttachmentVersion:
        """Seal the caller's newest version of a PDF attachment with the caller's own key on
        the axis HSM; store the result as a new version (the original stays as it was)."""
        await self.exchange.document(caller, document_id)  # not a party: not found, first
        self._require_trust()
        built = appearance.build()
        token, key = await self._seal_token(caller)
        try:
            signer = await asyncio.to_thread(token.signer, key.key_label, chain=self.chain)
        except TokenError as exc:
            raise SigningUnavailable(f"The seal key cannot be used: {exc}") from exc
        source = await self.attachment_source(caller, document_id, index)
        out = temp_path(self.config.spool_dir, ".pdf")
        try:
            base_sha = await asyncio.to_thread(_sha256_file, source.path)
            try:
                # pyHanko on the signing worker loop; C_Sign on the token's own thread.
                with self._timed("seal"):
                    await self.services.offload(
                        async_sign_pdf(
                            source.path, out, signer, level=level, appearance=built,
                            reason=reason, location=location, services=self.services,
                        )
                    )  # fmt: skip
            except AppearanceError as exc:
                raise BadSigningRequest(str(exc)) from exc
            ref = await self.objects.put_file(out)
        finally:
            source.path.unlink(missing_ok=True)
            out.unlink(missing_ok=True)
        async with self.database.transaction() as tx:
            version = await AttachmentVersionRepo(tx).add(
                document_id, index, caller, "seal", ref.sha256, ref.size, base_sha, source.name
            )
            await audit.record_seal(tx, version, level=level.value, token_label=key.token_label)
        log.info("attachment sealed", extra={"document": document_id, "agency": caller})
        return version

    async def versions(self, caller: str, document_id: str, index: int) -> list[AttachmentVersion]:
        """The versions the caller made of a visible document's attachment, oldest first."""
        await self.exchange.document(caller, document_id)
        async with self.database.reader() as tx:
            return await AttachmentVersionRepo(tx).list(document_id, index, caller)

    async def version(
        self, caller: str, document_id: str, index: int, version_id: str
    ) -> AttachmentVersion:
        """One version the caller made (else SessionNotFound-like not found)."""
        await self.exchange.document(caller, document_id)
        async with self.database.reader() as tx:
            version = await AttachmentVersionRepo(tx).get(version_id)
        if (
            version is None
            or version.organ_id != caller
            or version.document_id != document_id
            or version.attachment_index != index
        ):
            raise SessionNotFound(f"No version {version_id} of attachment {index}.")
        return version
