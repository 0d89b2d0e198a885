"""``lienthong edxml check|show|new``: in-process through server.cli.main and as the real script."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

import edxml
from edxml import Envelope, Priority, StatusMessage
from edxml.model import VN_TZ
from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "edxml"
SDK = CORPUS / "sdk-samples"
SCRIPT = Path(sys.executable).parent / "lienthong"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- check ------------------------------------------------------------------------------------


def test_check_broken_sdk_sample_is_one_line_naming_line_74(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(SDK / "edoc.edxml")
    code, out, err = run(capsys, "edxml", "check", path)
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: error line 74: ")
    assert "<From>" in lines[0] and "line 7" in lines[0]
    assert "Traceback" not in out + err


def test_check_every_other_corpus_file_passes(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in CORPUS.glob("*/*.edxml") if p.name != "edoc.edxml")
    assert len(files) >= 20
    code, out, _ = run(capsys, "edxml", "check", *files)
    assert code == 0, out
    for f in files:
        assert f"{f}: ok (" in out
    assert ": error " not in out


def test_check_reports_signature_as_info(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SDK / "edoc_new.edxml")
    code, out, _ = run(capsys, "edxml", "check", path)
    assert code == 0
    assert f"{path}: info Signature: placeholder: " in out


def test_check_mixed_files_exits_1_and_reports_each(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = str(SDK / "status_finish_06.edxml")
    missing = str(tmp_path / "missing.edxml")
    empty = tmp_path / "empty.edxml"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "edxml", "check", good, missing, str(empty))
    assert code == 1
    assert f"{good}: ok (0 warnings)" in out
    assert f"{missing}: error (file): cannot read" in out
    assert f"{empty}: error " in out
    assert err == ""


def test_check_lists_validation_errors_with_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A package whose manifest names an attachment that is not there.
    data = (SDK / "edoc_new.edxml").read_bytes()
    start = data.index(b"<AttachmentEncoded>")
    end = data.index(b"</AttachmentEncoded>") + len(b"</AttachmentEncoded>")
    broken = tmp_path / "broken.edxml"
    broken.write_bytes(data[:start] + data[end:])
    code, out, _ = run(capsys, "edxml", "check", str(broken))
    assert code == 1
    assert f"{broken}: error edXMLManifest/Reference[1]: " in out
    assert "ok (" not in out


# --- show -------------------------------------------------------------------------------------


def test_show_document_in_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "edxml", "show", str(SDK / "edoc_new.edxml"))
    assert code == 0
    assert "Số/ký hiệu:" in out and "74fass22/VPCP-TTĐT" in out
    assert "Ngày ban hành: 16/01/2019" in out
    assert "Trích yếu:     V/v kết nối, liên thông phần mềm quản lý văn bản" in out
    assert "Nơi gửi:       000.00.00.A80 — UBND xã Hòa Tiến" in out
    assert "Nơi nhận:      28.22.H17 — UBND xã Hòa Sơn" in out
    assert "Độ khẩn:       Thường" in out
    assert "Loại văn bản:  Công văn" in out
    assert "1896_QD-TTg_m_294779.doc (application/zip, nén zip, 270.823 byte)" in out
    assert "Chữ ký số:     giá trị giả" in out


def test_show_several_recipients_and_attachments(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "axis-returned" / "upload_1da394ba-2117-4354-a23f-6ec3e47ba81b.edxml"
    code, out, _ = run(capsys, "edxml", "show", str(path))
    assert code == 0
    attachments = [line for line in out.splitlines() if "text/plain, 207 byte" in line]
    assert len(attachments) == 3


def test_show_status_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "edxml", "show", str(SDK / "status_cancellation_13.edxml"))
    assert code == 0
    assert "Trạng thái: 13 — Yêu cầu lấy lại" in out
    assert "Văn bản:    7816/VPCP-TTĐT" in out
    assert "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT" in out
    assert "Thời điểm:  11:08:36 20/09/2015" in out


def test_show_broken_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "edxml", "show", str(SDK / "edoc.edxml"))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1 and "line 74" in err


# --- new --------------------------------------------------------------------------------------


def test_new_writes_a_valid_package_that_round_trips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = tmp_path / "công văn.pdf"
    doc.write_bytes(b"%PDF-1.7\n" + os.urandom(300_000))
    note = tmp_path / "ghi chú.txt"
    note.write_text("Kính gửi: UBND tỉnh Nghệ An\n", encoding="utf-8")
    out_file = tmp_path / "out.edxml"
    code, out, err = run(
        capsys, "edxml", "new",
        "--from", "000.00.00.G22", "--to", "000.00.00.H41", "--to", "000.00.14.H20",
        "--subject", "Về việc triển khai trục liên thông",
        "--attach", str(doc), "--attach", str(note),
        "--number", "7816", "--notation", "VPCP-TTĐT", "--type-name", "Công văn",
        "--priority", "3", "-o", str(out_file),
    )  # fmt: skip
    assert (code, out, err) == (0, "", "")
    env = edxml.parse(out_file)
    assert isinstance(env, Envelope)
    assert edxml.validate(env) == []
    h = env.header
    today = datetime.now(VN_TZ).date()
    assert h.from_.organ_id == "000.00.00.G22"
    assert [o.organ_id for o in h.to] == ["000.00.00.H41", "000.00.14.H20"]
    assert h.subject == "Về việc triển khai trục liên thông"
    assert h.document_id == f"000.00.00.G22,{today:%Y/%m/%d},7816/VPCP-TTĐT"
    assert h.promulgation_info is not None and h.promulgation_info.date == today
    assert h.other_info is not None and h.other_info.priority is Priority.EXPRESS
    assert h.document_type is not None and h.document_type.type_name == "Công văn"
    assert [(a.name, a.content_type, a.data) for a in env.attachments] == [
        ("công văn.pdf", "application/pdf", doc.read_bytes()),
        ("ghi chú.txt", "text/plain", note.read_bytes()),
    ]
    # Canonical: what we wrote is what the writer writes for what we read back.
    assert edxml.serialize(env) == out_file.read_bytes()
    code, out, _ = run(capsys, "edxml", "check", str(out_file))
    assert code == 0
    assert out == f"{out_file}: ok (0 warnings)\n"


def test_new_to_stdout_without_number_gets_a_uuid(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    code = main(["edxml", "new", "--from", "000.00.00.G22", "--to", "000.00.00.H41",
                 "--subject", "Thông báo"])  # fmt: skip
    out, err = capsysbinary.readouterr()
    assert (code, err) == (0, b"")
    env = edxml.parse(out)
    assert isinstance(env, Envelope)
    assert env.header.document_id is not None
    import uuid

    uuid.UUID(env.header.document_id)
    assert env.attachments == ()
    assert edxml.validate(env) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "abc", "--to", "000.00.00.H41"], "'abc' is not an organisation id"),
        (["--from", "000.00.00.G22", "--to", "000.00.00.h41 "], "spaces"),
        (["--from", "000.00.00.G22", "--to", "000.00.00.H41", "--attach", "/no/such.pdf"],
         "cannot attach /no/such.pdf: no such file"),
        (["--from", "000.00.00.G22", "--to", "000.00.00.H41", "--to", "000.00.00.H41"],
         "given twice"),
    ],
)  # fmt: skip
def test_new_refuses_bad_input_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    out_file = tmp_path / "x.edxml"
    code, out, err = run(capsys, "edxml", "new", *argv, "--subject", "x", "-o", str(out_file))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("lienthong: error: ") and message in err
    assert not out_file.exists()
    assert list(tmp_path.iterdir()) == []


def _pem_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_new_signed_package_checks_valid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key, cert = _pem_pair(tmp_path, "Văn thư")
    att = tmp_path / "a.txt"
    att.write_text("nội dung", encoding="utf-8")
    out_file = tmp_path / "signed.edxml"
    code, _, err = run(
        capsys, "edxml", "new", "--from", "000.00.00.G22", "--to", "000.00.00.H41",
        "--subject", "Văn bản có chữ ký", "--attach", str(att),
        "--sign-key", str(key), "--sign-cert", str(cert), "-o", str(out_file),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert edxml.verify_signature(out_file.read_bytes()).result == "valid"
    code, out, _ = run(capsys, "edxml", "check", str(out_file))
    assert code == 0
    assert f"{out_file}: info Signature: valid: the signature verifies" in out
    assert "CN=Văn thư" in out
    code, out, _ = run(capsys, "edxml", "show", str(out_file))
    assert "Chữ ký số:     hợp lệ" in out
    # Changing one character afterwards is seen.
    out_file.write_bytes(out_file.read_bytes().replace("có chữ ký".encode(), "có chữ kí".encode()))
    code, out, _ = run(capsys, "edxml", "check", str(out_file))
    assert "info Signature: invalid: the package was changed after signing" in out


def test_new_refuses_a_certificate_of_another_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key, _ = _pem_pair(tmp_path, "a")
    _, other_cert = _pem_pair(tmp_path, "b")
    out_file = tmp_path / "x.edxml"
    code, out, err = run(
        capsys, "edxml", "new", "--from", "000.00.00.G22", "--to", "000.00.00.H41",
        "--subject", "x", "--sign-key", str(key), "--sign-cert", str(other_cert),
        "-o", str(out_file),
    )  # fmt: skip
    assert code == 1 and out == ""
    assert err == "lienthong: error: the certificate does not belong to the signing key\n"
    assert not out_file.exists()
    code, _, err = run(
        capsys, "edxml", "new", "--from", "000.00.00.G22", "--to", "000.00.00.H41",
        "--subject", "x", "--sign-key", str(other_cert), "--sign-cert", str(other_cert),
    )  # fmt: skip
    assert code == 1 and "is not an unencrypted PEM private key" in err
    assert len(err.splitlines()) == 1


# --- the installed console script ---------------------------------------------------------------


def test_console_script(tmp_path: Path) -> None:
    assert SCRIPT.exists(), "run `pip install -e .` (make venv) to install the lienthong script"
    # Plain C locale: Python coerces it to UTF-8, so diacritics come out intact.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG")}
    env["LC_ALL"] = "C"
    out_file = tmp_path / "new.edxml"
    new = subprocess.run(
        [str(SCRIPT), "edxml", "new", "--from", "000.00.00.G22", "--to", "000.00.00.H41",
         "--subject", "Về việc chúc mừng năm mới", "--number", "1", "--notation", "UBND",
         "-o", str(out_file)],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert (new.returncode, new.stdout, new.stderr) == (0, b"", b"")

    check = subprocess.run(
        [str(SCRIPT), "edxml", "check", str(out_file), str(SDK / "edoc.edxml")],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert check.returncode == 1
    lines = check.stdout.decode("utf-8").splitlines()
    assert lines[0] == f"{out_file}: ok (0 warnings)"
    assert lines[1].startswith(f"{SDK / 'edoc.edxml'}: error line 74: ")
    assert len(lines) == 2
    assert b"Traceback" not in check.stderr

    show = subprocess.run(
        [str(SCRIPT), "edxml", "show", str(out_file)],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert show.returncode == 0
    text = show.stdout.decode("utf-8")  # diacritics intact, as UTF-8
    assert "Trích yếu:     Về việc chúc mừng năm mới" in text
    assert "Số/ký hiệu:    1/UBND" in text
    assert "Độ khẩn:       Thường" in text

    # A stdout that cannot encode Vietnamese gets escapes, not a traceback.
    ascii_show = subprocess.run(
        [str(SCRIPT), "edxml", "show", str(out_file)],
        capture_output=True, env={**env, "PYTHONIOENCODING": "ascii"}, timeout=60, check=False,
    )  # fmt: skip
    assert ascii_show.returncode == 0, ascii_show.stderr
    assert b"Tr\\xedch y\\u1ebfu:" in ascii_show.stdout

    status = subprocess.run(
        [str(SCRIPT), "edxml", "show", str(SDK / "status_rejection_02.edxml")],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert status.returncode == 0
    assert "Trạng thái: 02 — Từ chối tiếp nhận" in status.stdout.decode("utf-8")

    bad = subprocess.run(
        [str(SCRIPT), "edxml", "new", "--from", "nope", "--to", "000.00.00.H41",
         "--subject", "x"],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stdout == b""
    assert bad.stderr.decode().count("\n") == 1 and b"Traceback" not in bad.stderr


def test_status_round_trip_through_show_matches_model(capsys: pytest.CaptureFixture[str]) -> None:
    """show prints what parse reads: the label comes from the StatusCode table."""
    for path in sorted(SDK.glob("status_*.edxml")):
        obj = edxml.parse(path)
        assert isinstance(obj, StatusMessage)
        code, out, _ = run(capsys, "edxml", "show", str(path))
        assert code == 0
        assert f"Trạng thái: {obj.status_code.value} — {obj.status_code.label}" in out
