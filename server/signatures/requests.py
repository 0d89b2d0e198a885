"""What a signing request says, read and checked before a session or a seal starts: the
agencies' seal keys (``[signing] seal_keys``), the signer's certificates, the NĐ 30/2020
appearance asked for, the session request and the PDF it starts from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import pem, x509

from server.signatures.errors import BadSigningRequest
from signing import (
    CopyAppearance,
    CopyType,
    IssuedAttachmentAppearance,
    Level,
    SealAppearance,
    SignerAppearance,
)

PROFILES = ("none", "signer", "seal", "issued-attachment", "copy")


@dataclass(frozen=True)
class SealKey:
    """Where an agency's seal key lives on the axis's PKCS#11 module."""

    token_label: str
    key_label: str


def parse_seal_keys(entries: Iterable[str]) -> dict[str, SealKey]:
    """``ORGANID=TOKEN_LABEL/KEY_LABEL`` entries (key label ``seal`` when omitted)."""
    keys: dict[str, SealKey] = {}
    for entry in entries:
        organ_id, sep, where = entry.partition("=")
        token_label, _, key_label = where.partition("/")
        if not sep or not organ_id.strip() or not token_label.strip():
            raise BadSigningRequest(
                f"setting signing.seal_keys: {entry!r} is not ORGANID=TOKEN_LABEL/KEY_LABEL"
            )
        keys[organ_id.strip()] = SealKey(token_label.strip(), key_label.strip() or "seal")
    return keys


def load_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate in PEM (any number of blocks) or DER bytes; BadSigningRequest else."""
    try:
        if pem.detect(data):
            certs = [
                x509.Certificate.load(der)
                for kind, _, der in pem.unarmor(data, multiple=True)
                if kind == "CERTIFICATE"
            ]
        else:
            certs = [x509.Certificate.load(data)]
        for cert in certs:
            cert.native  # noqa: B018 (parse fully now: a bad certificate fails here)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadSigningRequest(f"{what} is not an X.509 certificate (PEM or DER)") from exc
    if not certs:
        raise BadSigningRequest(f"{what} holds no certificate")
    return certs


@dataclass
class AppearanceRequest:
    """What the caller asked the stamp to show (NĐ 30 profiles, signing.appearance)."""

    profile: str = "none"
    title: str | None = None
    full_name: str | None = None
    image: bytes | None = None
    over_field: str | None = None
    number: str | None = None
    agency: str | None = None
    copy_type: str | None = None

    def build(self) -> Any:
        """The signing.appearance profile, or None (invisible); BadSigningRequest when a
        required value is missing."""

        def need(name: str) -> str:
            value = getattr(self, name)
            if not value:
                raise BadSigningRequest(f"profile {self.profile!r} needs {name!r}")
            return str(value)

        if self.profile == "none":
            return None
        if self.profile == "signer":
            return SignerAppearance(
                title=need("title"), full_name=need("full_name"), image=self.image
            )
        if self.profile == "seal":
            if not self.image:
                raise BadSigningRequest("profile 'seal' needs 'image' (the seal PNG)")
            return SealAppearance(image=self.image, over_field=self.over_field)
        if self.profile == "issued-attachment":
            return IssuedAttachmentAppearance(number=need("number"), agency=need("agency"))
        if self.profile == "copy":
            kinds = {c.name.replace("_", "-").lower(): c for c in CopyType}
            kind = need("copy_type").lower()
            if kind not in kinds:
                raise BadSigningRequest(f"copy_type must be one of {', '.join(kinds)}")
            return CopyAppearance(copy_type=kinds[kind], agency=need("agency"))
        raise BadSigningRequest(f"profile must be one of {', '.join(PROFILES)}")


@dataclass
class SessionRequest:
    """A request for a signing session: the officer's certificate and what to make."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    level: Level = Level.B_B
    appearance: AppearanceRequest = field(default_factory=AppearanceRequest)
    field_name: str | None = None
    reason: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class PdfSource:
    """The PDF a session or seal starts from: a spool file (consumed) and where it came from."""

    path: Path
    name: str | None
    document_id: str | None = None
    attachment_index: int | None = None
