"""``lienthong verify``: summaries, --json, --pdf-report, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fixtures_pki

from server.cli import main
from signing import devpki

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf"
ORIGINAL = CORPUS / "esig-dss" / "pdf-signed-original.pdf"
TAMPERED = CORPUS / "esig-dss" / "pdf-signed-added-page.pdf"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devpki.DevPki]:
    dev = fixtures_pki.make_pki(tmp_path_factory.mktemp("cli-pki"))
    with devpki.PkiServer(dev):
        yield dev


@pytest.fixture(scope="module")
def signed(pki: devpki.DevPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "cong-van.pdf"
    path.write_bytes(fixtures_pki.signed_pdf(pki))
    return path


def test_trusted_signature_exits_zero_with_a_vietnamese_summary(
    pki: devpki.DevPki, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = str(pki.directory / "trust")
    code = main(["verify", str(signed), "--trust", trust, "--no-default-trust", "--online"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Chữ ký hợp lệ của Nguyễn Văn Ánh" in out and "(+07:00)" in out


def test_offline_hard_fail_is_not_a_pass(
    pki: devpki.DevPki, signed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", str(signed), "--trust", str(pki.directory / "trust")])
    assert code == 1
    assert "CHƯA xác định" in capsys.readouterr().out


def test_json_one_document_for_one_file_a_list_for_several(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["verify", "--json", str(ORIGINAL)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "lienthong.verification/1"
    assert doc["signatures"][0]["intact"] is True
    assert main(["verify", "--json", str(ORIGINAL), str(TAMPERED)]) == 1
    docs = json.loads(capsys.readouterr().out)
    assert [d["file"]["name"] for d in docs] == [ORIGINAL.name, TAMPERED.name]
    assert docs[1]["signatures"][0]["changes"] == "other"


def test_pdf_report_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bao-cao.pdf"
    main(["verify", str(TAMPERED), "--pdf-report", str(out)])
    assert out.read_bytes().startswith(b"%PDF-")
    assert "đã bị sửa đổi sau khi ký" in capsys.readouterr().out


def test_bad_input_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path / "missing.pdf")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lienthong: error: cannot read") and "Traceback" not in err
    text = tmp_path / "not.pdf"
    text.write_text("xin chào")
    assert main(["verify", str(text)]) == 1
    assert "không kiểm tra được" in capsys.readouterr().out
    assert main(["verify", str(ORIGINAL), str(TAMPERED), "--pdf-report", "x.pdf"]) == 2
