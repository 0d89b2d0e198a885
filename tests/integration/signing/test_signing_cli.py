"""``lienthong sign`` end to end on the real token, PKI and services (in-process)."""

from __future__ import annotations

from pathlib import Path

import fixtures_pki
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from server.cli import main

IMAGES = Path(__file__).resolve().parents[3] / "certs" / "images"


def _base(pki, blank_pdf: Path, out: Path) -> list[str]:
    return [
        "sign", str(blank_pdf), "-o", str(out),
        "--token-module", fixtures_pki.SOFTHSM2_MODULE, "--token-label", fixtures_pki.OFFICER_TOKEN,
        "--key-label", "officer", "--chain", str(pki.cert_path("gov")),
    ]  # fmt: skip


def test_signing_cli_signs_b_t_with_signer_stamp(
    pki, pki_server, softhsm, blank_pdf: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LIENTHONG_PIN", fixtures_pki.OFFICER_PIN)
    out = tmp_path / "signed.pdf"
    options = [
        "--level", "B-T", "--tsa", pki.tsa_url, "--trust-root", str(pki.cert_path("root")),
        "--profile", "signer", "--title", r"KT. CHỦ TỊCH\nPHÓ CHỦ TỊCH",
        "--name", "Nguyễn Văn Ánh", "--image", str(IMAGES / "sample-signature.png"),
    ]  # fmt: skip
    code = main([*_base(pki, blank_pdf, out), *options])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert fixtures_pki.OFFICER_PIN not in captured.out + captured.err
    with out.open("rb") as f:
        sig = PdfFileReader(f).embedded_regular_signatures[0]
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=[pki.root_cert]))
        assert status.valid and status.trusted and status.timestamp_validity is not None


@pytest.mark.parametrize(
    ("extra", "pin", "message"),
    [
        ([], "0000", "wrong PIN"),
        (["--level", "B-T"], None, "time-stamping authority"),
        (["--profile", "signer"], None, "needs --title"),
        (["--level", "B-Z"], None, "unknown PAdES level"),
    ],
)
def test_signing_cli_errors_are_one_line(
    extra, pin, message, pki, softhsm, blank_pdf: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("LIENTHONG_PIN", pin or fixtures_pki.OFFICER_PIN)
    out = tmp_path / "out.pdf"
    code = main([*_base(pki, blank_pdf, out), *extra])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_signing_cli_rejects_non_pdf(pki, softhsm, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LIENTHONG_PIN", fixtures_pki.OFFICER_PIN)
    bad = tmp_path / "notes.pdf"
    bad.write_text("hello")
    code = main(_base(pki, bad, tmp_path / "out.pdf"))
    err = capsys.readouterr().err
    assert code == 1 and "not a readable PDF" in err and "Traceback" not in err


def test_signing_cli_missing_input_or_pin_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("LIENTHONG_PIN", raising=False)
    args = ["--token-label", "officer-usb", "--key-label", "officer", "-o", str(tmp_path / "o.pdf")]
    assert main(["sign", str(tmp_path / "khong-co.pdf"), *args]) == 1
    assert (
        capsys.readouterr().err == f"lienthong: error: {tmp_path / 'khong-co.pdf'}: no such file\n"
    )
    pdf = tmp_path / "cong-van.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")

    def closed_stdin(prompt: str = "") -> str:
        raise EOFError  # what getpass raises in a script with no terminal and stdin at its end

    monkeypatch.setattr("getpass.getpass", closed_stdin)
    assert main(["sign", str(pdf), *args]) == 1
    assert "no PIN: give --pin-file or set LIENTHONG_PIN" in capsys.readouterr().err
