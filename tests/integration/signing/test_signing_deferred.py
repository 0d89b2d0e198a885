"""Two-step signing: prepare on the server, sign the digest on the officer's own token
(CKM_RSA_PKCS over a DigestInfo, as browser plug-ins do), finish; each result validated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from signing import B_B, B_LTA, B_T, CertificateRejectedError, SessionError, SignerAppearance, Token
from signing.deferred import SigningSession, finish, prepare

IMAGES = Path(__file__).resolve().parents[3] / "certs" / "images"
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _token_sign(token: Token, key_label: str, digest: bytes) -> bytes:
    """What the officer's USB token does: raw RSA PKCS#1 v1.5 over DigestInfo(SHA-256)."""
    from pkcs11 import Mechanism, ObjectClass

    def _sign() -> bytes:
        key = token._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
        return bytes(key.sign(SHA256_DIGEST_INFO + digest, mechanism=Mechanism.RSA_PKCS))

    return token.run(_sign)


@pytest.mark.parametrize("level", [B_B, B_T, B_LTA], ids=lambda lv: lv.value)
def test_signing_deferred_round_trip(
    level, pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    appearance = SignerAppearance(
        title="KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH", full_name="Nguyễn Văn Ánh",
        image=IMAGES / "sample-signature.png",
    )  # fmt: skip
    session, digest = prepare(
        blank_pdf, pki.cert("officer"), chain=(pki.cert("gov"),), level=level,
        appearance=appearance, services=services, workdir=tmp_path,
    )  # fmt: skip
    assert len(digest) == 32
    # The session crosses a process boundary as JSON.
    stored = json.dumps(session.to_dict())
    raw = _token_sign(officer_token, "officer", digest)
    restored = SigningSession.from_dict(json.loads(stored))
    out = finish(restored, raw, tmp_path / "signed.pdf", services=services)
    assert not restored.prepared_path.exists()
    with out.open("rb") as f:
        reader = PdfFileReader(f)
        sig = reader.embedded_regular_signatures[0]
        status = validate_pdf_signature(
            sig, ValidationContext(trust_roots=[pki.root_cert], allow_fetching=True)
        )
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
        assert status.signing_cert.subject.native["common_name"] == "Nguyễn Văn Ánh"
        assert (status.timestamp_validity is not None) == level.needs_timestamp
        assert len(reader.embedded_timestamp_signatures) == (1 if level is B_LTA else 0)
        if level is B_LTA:
            assert "/DSS" in reader.root


def test_signing_deferred_refuses_wrong_signature_and_expired_session(
    pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    session, digest = prepare(
        blank_pdf, pki.cert("officer"), chain=(pki.cert("gov"),), services=services,
        workdir=tmp_path,
    )  # fmt: skip
    out = tmp_path / "signed.pdf"
    # Signed by another officer's key: refused before anything is written.
    other = _token_sign(officer_token, "officer2", digest)
    with pytest.raises(SessionError, match="does not verify"):
        finish(session, other, out, services=services)
    with pytest.raises(SessionError, match="does not verify"):
        finish(session, b"\x00" * 256, out, services=services)
    assert not out.exists() and session.prepared_path.exists()
    raw = _token_sign(officer_token, "officer", digest)
    with pytest.raises(SessionError, match="expired"):
        finish(session, raw, out, services=services, now=datetime.now(UTC) + timedelta(hours=1))
    assert not out.exists()
    finish(session, raw, out, services=services)
    with pytest.raises(SessionError, match="already used"):
        finish(session, raw, tmp_path / "again.pdf", services=services)


def test_signing_deferred_refuses_revoked_certificate(
    pki, services, blank_pdf: Path, tmp_path: Path
) -> None:
    with pytest.raises(CertificateRejectedError, match="revoked"):
        prepare(
            blank_pdf, pki.cert("officer-revoked"), chain=(pki.cert("gov"),), services=services,
            workdir=tmp_path,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == [tmp_path / "van-ban.pdf"]
