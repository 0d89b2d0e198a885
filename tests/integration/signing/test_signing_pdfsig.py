"""An independent validator: poppler's pdfsig must call every signature we make valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from signing import B_B, B_LTA, B_T, SealAppearance, SignerAppearance, Token, sign_pdf

IMAGES = Path(__file__).resolve().parents[3] / "certs" / "images"

pytestmark = pytest.mark.skipif(shutil.which("pdfsig") is None, reason="poppler-utils missing")


def _pdfsig(pdf: Path) -> list[str]:
    # -nocert: the verdict on the signature itself (digest, CMS, byte ranges); the chain is
    # checked by pyHanko against the test root in the other tests. Debian's pdfsig 22.12
    # answers "Unknown issue with Certificate" for every chain we tried, even a two-certificate
    # chain made with `cryptography` and an end-entity certificate trusted directly in the NSS
    # database (where `vfychain -pp` and `certutil -V -u S` say the chain is good), so its
    # certificate verdict cannot be used here.
    result = subprocess.run(
        ["pdfsig", "-nocert", str(pdf)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return re.findall(r"Signature Validation: (.+)", result.stdout)


def test_signing_pdfsig_accepts_every_signature(
    pki, services, officer_token: Token, agency_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    officer = officer_token.signer("officer", chain=[pki.cert("gov")])
    seal = agency_token.signer("seal", chain=[pki.cert("gov")])
    step1 = sign_pdf(
        blank_pdf, tmp_path / "1.pdf", officer, level=B_T, services=services, field="NguoiKy",
        appearance=SignerAppearance(
            title="TL. CHỦ TỊCH\nCHÁNH VĂN PHÒNG", full_name="Đặng Thị Hường",
            image=IMAGES / "sample-signature.png",
        ),
    )  # fmt: skip
    step2 = sign_pdf(
        step1, tmp_path / "2.pdf", seal, level=B_B, services=services,
        appearance=SealAppearance(image=IMAGES / "sample-seal.png", over_field="NguoiKy"),
    )  # fmt: skip
    step3 = sign_pdf(step2, tmp_path / "3.pdf", seal, level=B_LTA, services=services)
    verdicts = _pdfsig(step3)
    # officer, seal, seal again (B-LTA) and its document timestamp
    assert len(verdicts) == 4
    regular = verdicts[:3]
    assert regular == ["Signature is Valid."] * 3, verdicts
    assert _pdfsig(step1) == ["Signature is Valid."]
    assert _pdfsig(step2) == ["Signature is Valid."] * 2


def test_signing_pdfsig_notices_tampering(
    pki, services, officer_token: Token, blank_pdf: Path, tmp_path: Path
) -> None:
    """Negative control: flip one signed byte and pdfsig must say so."""
    signer = officer_token.signer("officer", chain=[pki.cert("gov")])
    out = sign_pdf(blank_pdf, tmp_path / "s.pdf", signer, level=B_B, services=services)
    data = bytearray(out.read_bytes())
    at = data.index(b"page 1")
    data[at] = ord("P")
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    assert _pdfsig(tampered) != ["Signature is Valid."]
