"""Signed receipts (biên nhận): the axis's sealed proof that it accepted a document.

A receipt is a CMS ``SignedData`` (RFC 5652) made with the axis seal key, encapsulating a small
canonical JSON object: the axis, our id and the sender's DocumentId, the sender, the
recipients, the time of acceptance, the SHA-256 and size of the stored package and of the bytes
as received. The signature carries an RFC 3161 signature timestamp (unsigned attribute
``signatureTimeStampToken``) from the configured TSA, so it proves *when* it was sealed
independently of the axis's clock.

The seal is a key on a PKCS#11 token (production; :mod:`signing.tokens`) or a PKCS#12 file
(development). With no seal configured the axis issues no receipt at all, never an unsigned
stand-in. :func:`server.exchange.receipt_check.verify_receipt` checks one offline
(``lienthong receipt verify``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import cms, pem, x509

from server.runtime.config import Config
from storage.repos.documents import Document

log = logging.getLogger("lienthong.receipts")

RECEIPT_TYPE = "lienthong.receipt"
RECEIPT_VERSION = 1
SEAL_PIN_ENV = "LIENTHONG_SEAL_PIN"
SEAL_PASSPHRASE_ENV = "LIENTHONG_SEAL_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


class ReceiptError(Exception):
    """Base of receipt failures: the seal cannot be used, or a receipt cannot be issued."""


class SealError(ReceiptError):
    """The configured seal key cannot be loaded (file, token, PIN)."""


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM (one or more blocks) or DER file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ReceiptError(f"cannot read certificates from {path}: {exc.strerror}") from exc
    try:
        if pem.detect(data):
            return [
                x509.Certificate.load(der)
                for kind, _, der in pem.unarmor(data, multiple=True)
                if kind == "CERTIFICATE"
            ]
        cert = x509.Certificate.load(data)
        cert.native  # noqa: B018 (parse now: a bad file fails here, not later)
        return [cert]
    except (ValueError, TypeError) as exc:
        raise ReceiptError(f"{path} holds no readable certificate") from exc


@dataclass
class Seal:
    """The loaded seal: a pyHanko signer, and the token session to close (PKCS#11)."""

    signer: Any
    token: Any = None

    @property
    def certificate(self) -> x509.Certificate:
        """The seal's certificate."""
        return self.signer.signing_cert

    def close(self) -> None:
        """Log out of the token (PKCS#11); nothing for a PKCS#12 seal."""
        if self.token is not None:
            self.token.close()
            self.token = None


def load_seal(config: Config) -> Seal | None:
    """The seal of ``config`` ([seal] section), or None when none is configured.

    PKCS#11: ``pkcs11_module`` + ``token_label`` (+ ``key_label``), PIN from ``pin_file`` or
    ``LIENTHONG_SEAL_PIN``. PKCS#12: ``pkcs12``, passphrase from ``LIENTHONG_SEAL_PASSPHRASE``.
    ``chain`` (PEM) adds the intermediate certificates the receipt embeds.
    """
    settings = config.seal
    chain = load_certificates(settings.chain) if settings.chain is not None else []
    if settings.pkcs11_module is not None:
        from signing import Pin, SigningError, Token

        if not settings.token_label:
            raise SealError("setting seal.token_label is required with seal.pkcs11_module")
        try:
            pin = (
                Pin.from_file(settings.pin_file)
                if settings.pin_file is not None
                else Pin.from_env(SEAL_PIN_ENV)
            )
            token = Token.open(settings.pkcs11_module, pin=pin, label=settings.token_label)
        except SigningError as exc:
            raise SealError(f"seal token: {exc}") from exc
        try:
            signer = token.signer(settings.key_label, chain=chain)
        except SigningError as exc:
            token.close()
            raise SealError(f"seal token: {exc}") from exc
        return Seal(signer, token)
    if settings.pkcs12 is not None:
        from signing import SigningError, load_pkcs12_signer

        secret = os.environ.get(SEAL_PASSPHRASE_ENV)
        try:
            signer = load_pkcs12_signer(settings.pkcs12, secret.encode("utf-8") if secret else None)
        except (SigningError, OSError, ValueError) as exc:
            raise SealError(f"seal file {settings.pkcs12}: cannot be loaded") from exc
        if chain:
            signer.cert_registry.register_multiple(chain)
        return Seal(signer)
    return None


# --- issuing -------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """The canonical UTF-8 JSON of a receipt body (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def receipt_body(
    axis_id: str,
    doc: Document,
    recipients: Sequence[str],
    edxml_document_id: str,
    received_sha256: str | None,
    received_size: int | None,
) -> dict[str, Any]:
    """What a receipt certifies about an accepted document."""
    return {
        "type": RECEIPT_TYPE,
        "version": RECEIPT_VERSION,
        "axis": axis_id,
        "id": doc.id,
        "document_id": edxml_document_id,
        "sender": doc.sender,
        "recipients": sorted(recipients),
        "received_at": doc.received_at.isoformat(),
        "package": {"sha256": doc.sha256, "size": doc.size},
        "received": {"sha256": received_sha256, "size": received_size},
    }


async def seal_receipt(seal: Seal, body: dict[str, Any], timestamper: Any) -> bytes:
    """Sign ``body`` with the seal as encapsulated CMS content, with a signature timestamp from
    ``timestamper`` (a pyHanko ``TimeStamper``; required: a receipt without one is not issued).
    Returns the DER of the CMS ContentInfo."""
    if timestamper is None:
        raise ReceiptError("no TSA configured ([tsa] url): receipts need a timestamp")
    from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

    content = cms.ContentInfo({"content_type": "data", "content": canonical(body)})
    # CAdES B-B requires the signing-time signed attribute; pyHanko's generic CMS signer adds it
    # only when given one (its other signed attributes: content type, message digest, signing
    # certificate v2, CMS algorithm protection).
    attributes = PdfCMSSignedAttributes(signing_time=datetime.now(UTC))
    try:
        signed = await seal.signer.async_sign_general_data(
            content,
            "sha256",
            detached=False,
            timestamper=timestamper,
            signed_attr_settings=attributes,
        )
    except Exception as exc:  # token, TSA or network failures: the receipt is retried later
        raise ReceiptError(f"the receipt could not be sealed: {exc}") from exc
    return bytes(signed.dump())


# --- the service the HTTP layer uses --------------------------------------------------------


class Receipts:
    """Issues (once) and returns the receipt of an accepted document.

    A receipt is sealed right after the document's transaction commits (a network call to the
    TSA must not hold the database writer) and stored; asking again returns the stored one.
    If sealing fails (TSA down), the document stays accepted and the next request retries.
    """

    def __init__(self, config: Config, database: Any, seal: Seal | None, services: Any) -> None:
        self.config = config
        self.database = database
        self.seal = seal
        self.services = services  # signing.SigningServices: one timestamper per event loop

    @property
    def enabled(self) -> bool:
        """True when a seal and a TSA are configured (otherwise no receipt is ever issued)."""
        return self.seal is not None and self.services is not None

    async def for_document(self, doc: Document) -> bytes:
        """The DER of ``doc``'s receipt, sealing and storing it the first time."""
        from server.exchange.meta import document_meta, edxml_document_id
        from server.runtime import audit
        from storage.repos.deliveries import DeliveryRepo
        from storage.repos.receipts import ReceiptRepo

        if self.seal is None or self.services is None:
            raise ReceiptError("this axis has no seal configured: it issues no receipts")
        async with self.database.reader() as tx:
            stored = await ReceiptRepo(tx).get(doc.id)
            recipients = await DeliveryRepo(tx).recipients(doc.id)
        if stored is not None:
            return stored.cms_der
        meta = document_meta(doc)
        body = receipt_body(
            self.config.server.axis_id,
            doc,
            recipients,
            edxml_document_id(doc),
            meta.get("received_sha256"),
            meta.get("received_size"),
        )
        der = await seal_receipt(self.seal, body, self.services.timestamper())
        async with self.database.transaction() as tx:
            kept = await ReceiptRepo(tx).put(doc.id, der)
            if kept.cms_der == der:  # ours was stored (not a concurrent request's)
                await audit.record(
                    tx,
                    audit.AXIS,
                    "receipt.issue",
                    [doc.id],
                    {"sha256": hashlib.sha256(der).hexdigest(), "signer": "seal"},
                )
        return kept.cms_der
