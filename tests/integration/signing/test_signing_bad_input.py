"""Bad input: each is one clear SigningError and the output is never (half) written."""

from __future__ import annotations

from pathlib import Path

import fixtures_pki
import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign.signers import SimpleSigner

from signing import (
    B_LT,
    B_T,
    CertificateRejectedError,
    InputPdfError,
    KeyNotFoundError,
    Pin,
    PinError,
    RevocationUnavailableError,
    SigningServices,
    TimestampError,
    Token,
    TokenError,
    sign_pdf,
)


def _no_output(directory: Path) -> bool:
    return not any(p.name.endswith(".part") or p.name == "out.pdf" for p in directory.iterdir())


@pytest.mark.parametrize("label", ["officer-revoked", "officer-expired"])
def test_signing_refuses_revoked_or_expired_signer(
    label: str, pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    signer = officer_token.signer(label, chain=[pki.cert("gov")])
    with pytest.raises(CertificateRejectedError, match=r"revoked|expired"):
        sign_pdf(blank_pdf, tmp_path / "out.pdf", signer, services=services)
    assert _no_output(tmp_path)


def test_signing_refuses_look_alike_ca_signer(
    pki, services, blank_pdf: Path, tmp_path: Path
) -> None:
    signer = SimpleSigner.load(
        str(pki.key_path("lookalike-officer")), str(pki.cert_path("lookalike-officer")),
        ca_chain_files=(str(pki.cert_path("lookalike")),),
    )  # fmt: skip
    with pytest.raises(CertificateRejectedError, match=r"not trusted|not valid"):
        sign_pdf(blank_pdf, tmp_path / "out.pdf", signer, services=services)
    assert _no_output(tmp_path)


def test_signing_wrong_pin_and_missing_key_and_token(softhsm, officer_token: Token) -> None:
    with pytest.raises(PinError, match="wrong PIN"):
        Token.open(fixtures_pki.SOFTHSM2_MODULE, label=fixtures_pki.SPARE_TOKEN, pin=Pin("0000"))
    spare = Token.open(
        fixtures_pki.SOFTHSM2_MODULE,
        label=fixtures_pki.SPARE_TOKEN,
        pin=Pin(fixtures_pki.SPARE_PIN),
    )
    # Opening an open token again gives the same session (one login per token and process)...
    again = Token.open(
        fixtures_pki.SOFTHSM2_MODULE,
        label=fixtures_pki.SPARE_TOKEN,
        pin=Pin(fixtures_pki.SPARE_PIN),
    )
    assert again is spare
    # ...but only with the right PIN.
    with pytest.raises(PinError, match="wrong PIN"):
        Token.open(fixtures_pki.SOFTHSM2_MODULE, label=fixtures_pki.OFFICER_TOKEN, pin=Pin("0000"))
    with pytest.raises(TokenError, match="no token"):
        Token.open(fixtures_pki.SOFTHSM2_MODULE, label="no-such-token", pin=Pin("1234"))
    with pytest.raises(TokenError, match="no PKCS#11 module"):
        Token.open("/nonexistent/libp11.so", label="x", pin=Pin("1234"))
    with pytest.raises(KeyNotFoundError, match="missing-key"):
        officer_token.signer("missing-key")


@pytest.mark.parametrize(
    "content",
    [b"this is not a PDF at all\n", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", b""],
    ids=["not-pdf", "truncated", "empty"],
)
def test_signing_rejects_non_pdf(
    content: bytes, pki, services, officer_token: Token, tmp_path: Path
) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(content)
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    with pytest.raises(InputPdfError):
        sign_pdf(source, tmp_path / "out.pdf", signer, services=services)
    assert _no_output(tmp_path)


def test_signing_rejects_encrypted_pdf(
    pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    encrypted = tmp_path / "encrypted.pdf"
    writer = PdfFileWriter()
    writer.insert_page(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                generic.pdf_name("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 0, 595, 842)]
                ),
            }
        )
    )
    writer.encrypt("owner-secret", "user-secret")
    with encrypted.open("wb") as out:
        writer.write(out)
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    with pytest.raises(InputPdfError, match="encrypted"):
        sign_pdf(encrypted, tmp_path / "out.pdf", signer, services=services)
    assert _no_output(tmp_path)


def test_signing_tsa_or_ocsp_down(
    pki, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{fixtures_pki.free_port()}/tsa"
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    down = SigningServices(tsa_url=dead, timeout=2)
    try:
        with pytest.raises(TimestampError):
            sign_pdf(blank_pdf, tmp_path / "out.pdf", signer, level=B_T, services=down)
    finally:
        down.close()
    assert _no_output(tmp_path)
    # No server runs for this PKI's URLs in a fresh copy on another port: OCSP/CRL unreachable.
    offline_pki = fixtures_pki.make_pki(tmp_path / "pki2")
    offline = SigningServices(
        trust_roots=(offline_pki.root_cert,), tsa_url=offline_pki.tsa_url, timeout=2
    )
    try:
        with pytest.raises((RevocationUnavailableError, TimestampError)):
            sign_pdf(blank_pdf, tmp_path / "out.pdf", signer, level=B_LT, services=offline)
    finally:
        offline.close()
    assert _no_output(tmp_path)


def test_signing_existing_output_is_untouched_on_failure(
    pki, services, officer_token: Token, tmp_path: Path
) -> None:
    target = tmp_path / "out.pdf"
    target.write_bytes(b"previous content")
    source = tmp_path / "in.pdf"
    source.write_bytes(b"garbage")
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    with pytest.raises(InputPdfError):
        sign_pdf(source, target, signer, services=services)
    assert target.read_bytes() == b"previous content"
    assert not list(tmp_path.glob("*.part"))


def test_signing_pin_absent_from_reprs_and_logs(
    pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path, caplog
) -> None:
    caplog.set_level("DEBUG")
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    sign_pdf(blank_pdf, tmp_path / "s.pdf", signer, services=services)
    with pytest.raises(PinError):
        Token.open(fixtures_pki.SOFTHSM2_MODULE, label=fixtures_pki.OFFICER_TOKEN,
                   pin=Pin("9999-wrong"))  # fmt: skip
    texts = [repr(officer_token), repr(signer), repr(services), str(officer_token), caplog.text]
    for text in texts:
        assert fixtures_pki.OFFICER_PIN not in text and "9999-wrong" not in text
    assert "officer-usb" in repr(officer_token)
