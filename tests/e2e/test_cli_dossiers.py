"""``lienthong dossier intake | list | show | advance | apology | slip | transfer | steps``
against a real ``lienthong serve`` (demo data: the procedures of server/demo/procedures.json),
through the installed console script (and in process where a test makes many calls)."""

from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.cli import main
from server.cli.http_client import AxisClient, FormPart
from tests.e2e.test_cli_client import LIENTHONG, Axis, start_axis, stop_axis

XA = "000.05.31.H41"  # UBND xã Kim Liên: receives, and is competent for 1.001193
SO = "000.00.31.H41"  # UBND huyện Nam Đàn: competent for 2.000806 (its step 2)
VN = ZoneInfo("Asia/Ho_Chi_Minh")
CLERK = "TOKEN_05_31_H41"  # the commune's one-stop section


@pytest.fixture(scope="module")
def axis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Axis]:
    running = start_axis(tmp_path_factory.mktemp("axis"))
    yield running
    stop_axis(running)


def run(axis: Axis, token_var: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIENTHONG), "dossier", *argv, "--server", axis.url, "--token",
         axis.tokens[token_var]],
        capture_output=True, text=True, encoding="utf-8", timeout=60, check=False,
    )  # fmt: skip


@dataclass(frozen=True)
class Done:
    """What a ``lienthong`` run printed and returned."""

    returncode: int
    stdout: str
    stderr: str


def run_here(axis: Axis, token_var: str, *argv: str) -> Done:
    """``lienthong dossier ...`` in this process: the same parser and commands as the console
    script, against the same running server, without paying the interpreter's start-up for
    each call (the console script itself is run by :func:`run`)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ("dossier", *argv, "--server", axis.url, "--token", axis.tokens[token_var])
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return Done(code, out.getvalue(), err.getvalue())


def ok(axis: Axis, token_var: str, *argv: str) -> str:
    done = run(axis, token_var, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_dossier_from_intake_to_result(axis: Axis, tmp_path: Path) -> None:
    form, birth, proxy = tmp_path / "to-khai.pdf", tmp_path / "gcs.pdf", tmp_path / "uq.pdf"
    form.write_bytes(b"%PDF-1.7 to khai")
    birth.write_bytes(b"%PDF-1.7 giay chung sinh")
    proxy.write_bytes(b"%PDF-1.7 uy quyen")
    intake = [
        "intake", "--procedure", "1.001193", "--name", "Trần Thị Bình",
        "--id-number", "040203001234", "--phone", "0912345678",
        "--file", f"TK={form}", "--file", f"GCS={birth}", "--key", "quay-1-001",
    ]  # fmt: skip
    out = ok(axis, "TOKEN_05_31_H41", *intake)
    # the demo data already holds dossiers of the commune (lienthong demo seeds some)
    match = re.search(rf"^({re.escape(XA)}-\d{{6}}-\d{{4}})  status 2 ", out, re.M)
    assert match, out
    code = match.group(1)
    assert f"/tra-cuu?ma={code}" in out and "due " in out
    assert ok(axis, "TOKEN_05_31_H41", *intake) == out  # the same key: the same dossier

    listed = ok(axis, "TOKEN_05_31_H41", "list")
    assert code in listed and "Trần Thị Bình" in listed
    assert ok(axis, "TOKEN_05_31_H41", "list", "--status", "9") == "No dossiers.\n"

    ok(axis, "TOKEN_05_31_H41", "advance", code, "4")
    assert "now 5" in ok(axis, "TOKEN_05_31_H41", "advance", code, "5", "--note", "Thiếu UQ")
    out = ok(axis, "TOKEN_05_31_H41", "advance", code, "4", "--file", f"UQ={proxy}")
    assert "now 4 (Đang xử lý)" in out
    refused = run(axis, "TOKEN_05_31_H41", "advance", code, "2")
    assert refused.returncode == 1 and "cannot move to 2" in refused.stderr
    ok(axis, "TOKEN_05_31_H41", "advance", code, "9")
    ok(axis, "TOKEN_05_31_H41", "advance", code, "10", "--note", "Đã trả")

    shown = ok(axis, "TOKEN_05_31_H41", "show", code)
    assert "status 10 (Đã trả kết quả)" in shown
    assert "uq.pdf" in shown and "Thiếu UQ" in shown and "Đã trả" in shown
    other = run(axis, "TOKEN_G22", "show", code)
    assert other.returncode == 1 and "Not found" in other.stderr


def test_a_refused_intake_names_the_field(axis: Axis, tmp_path: Path) -> None:
    form = tmp_path / "tk.pdf"
    form.write_bytes(b"%PDF")
    done = run(
        axis, "TOKEN_05_31_H41", "intake", "--procedure", "1.001193", "--name", "A",
        "--id-number", "12345", "--phone", "0912345678", "--file", f"TK={form}",
    )  # fmt: skip
    assert done.returncode == 1
    assert "applicant.id_number" in done.stderr


def test_concurrent_intakes_across_workers_number_without_gap(tmp_path: Path) -> None:
    """``serve --workers 2``: 30 intakes at once, on connections the kernel spreads over two
    processes sharing the database, take the numbers 0001 to 0030 of the day, each once."""
    served = start_axis(tmp_path / "axis", "--workers", "2")
    try:
        client = AxisClient(served.url, served.tokens["TOKEN_05_31_H41"])
        dossier = {
            "procedure": "1.001193",
            "applicant": {"name": "Lê Văn Cường", "id_number": "123456789", "phone": "0987654321"},
        }

        def one(number: int) -> str:
            parts = [
                FormPart("dossier", json.dumps(dossier).encode()),
                FormPart("TK", f"to khai {number}".encode(), "application/pdf", "tk.pdf"),
                FormPart("GCS", b"giay chung sinh", "application/pdf", "gcs.pdf"),
            ]
            return str(client.post_form("/api/v1/dossiers", parts).body["code"])

        # the demo seeds a few dossiers of the commune today: the intakes take the numbers after
        seeded = client.request("GET", "/api/v1/dossiers", params={"limit": 200}).body["items"]
        with ThreadPoolExecutor(max_workers=30) as pool:
            codes = sorted(pool.map(one, range(30)))
    finally:
        stop_axis(served)
    day = codes[0].split("-")[1]
    before = sum(1 for d in seeded if d["code"].startswith(f"{XA}-{day}-"))
    assert codes == [f"{XA}-{day}-{n:04d}" for n in range(before + 1, before + 31)]


def intake_code(axis: Axis, *argv: str) -> str:
    out = ok(axis, CLERK, "intake", *argv)
    match = re.search(rf"^({re.escape(XA)}-\d{{6}}-\d{{4}})  status ", out, re.M)
    assert match, out
    return match.group(1)


def ok_here(axis: Axis, token_var: str, *argv: str) -> str:
    done = run_here(axis, token_var, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pdf_text(path: Path) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode("utf-8")


def test_apology_and_slips_of_an_overdue_dossier(axis: Axis, tmp_path: Path) -> None:
    """A paper dossier entered a week late is overdue: the apology moves its due date and marks
    it late, and ``slip`` saves the receipt and the apology as PDFs that read back."""
    form, birth = tmp_path / "tk.pdf", tmp_path / "gcs.pdf"
    form.write_bytes(b"%PDF-1.7 to khai")
    birth.write_bytes(b"%PDF-1.7 giay chung sinh")
    received = (datetime.now(VN) - timedelta(days=7)).replace(second=0, microsecond=0)
    code = intake_code(
        axis, "--procedure", "1.001193", "--name", "Phạm Văn Đức", "--id-number", "040203009876",
        "--phone", "0912345678", "--file", f"TK={form}", "--file", f"GCS={birth}",
        "--received-at", received.isoformat(),
    )  # fmt: skip
    assert code in ok_here(axis, CLERK, "list", "--overdue")

    bad = run_here(axis, CLERK, "apology", code, "--new-due", "tomorrow", "--reason", "x")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--new-due" in bad.stderr
    past = run(axis, CLERK, "apology", code, "--new-due", "2020-01-01 08:00", "--reason", "x")
    assert past.returncode == 1 and past.stderr.count("\n") == 1
    assert "new_due_at" in past.stderr and "Traceback" not in past.stderr
    none = run_here(axis, CLERK, "slip", code, "apology", "-o", str(tmp_path / "a.pdf"))
    assert none.returncode == 1 and none.stderr.count("\n") == 1
    assert not (tmp_path / "a.pdf").exists()  # nothing written on a refusal

    new_due = (datetime.now(VN) + timedelta(days=3)).replace(
        hour=16, minute=0, second=0, microsecond=0
    )
    out = ok(
        axis, CLERK, "apology", code, "--new-due", new_due.strftime("%Y-%m-%d %H:%M"),
        "--reason", "Chờ xác minh thông tin khai sinh",
    )  # fmt: skip
    assert f"due {new_due:%d/%m/%Y} 16:00" in out and "counted late" in out
    shown = json.loads(ok_here(axis, CLERK, "show", code, "--json"))
    assert shown["late"] is True and shown["overdue"] is False
    assert datetime.fromisoformat(shown["due_at"]) == new_due
    again = run(axis, CLERK, "apology", code, "--new-due", "2099-01-01 08:00", "--reason", "x")
    assert again.returncode == 1 and "not overdue" in again.stderr

    receipt, apology = tmp_path / "receipt.pdf", tmp_path / "apology.pdf"
    out = ok_here(axis, CLERK, "slip", code, "receipt", "-o", str(receipt))
    assert out.startswith(f"Saved {receipt} (receipt, ")
    text = pdf_text(receipt)
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in text and code in text
    officer = ("--officer", "Nguyễn Thị Hoa")
    ok_here(axis, CLERK, "slip", code, "apology", "-o", str(apology), *officer)
    text = pdf_text(apology)
    assert "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ" in text
    assert "Chờ xác minh thông tin khai sinh" in text and "Nguyễn Thị Hoa" in text
    assert f"{new_due:%d/%m/%Y} 16:00" in text
    refusal = run_here(axis, CLERK, "slip", code, "refusal", "-o", str(tmp_path / "r.pdf"))
    assert refusal.returncode == 1 and refusal.stderr.count("\n") == 1
    assert "not refused" in refusal.stderr and not (tmp_path / "r.pdf").exists()
    other = run_here(axis, "TOKEN_G22", "slip", code, "receipt", "-o", str(tmp_path / "o.pdf"))
    assert other.returncode == 1 and "Not found" in other.stderr


def test_transfer_and_steps(axis: Axis, tmp_path: Path) -> None:
    """2.000806 (demo): step 1 the commune (2 days), step 2 the district (13):
    ``steps`` shows their due dates, ``transfer`` sends the dossier over the axis."""
    files = []
    for component in ("TK", "XNHN", "SK", "HC"):
        path = tmp_path / f"{component}.pdf"
        path.write_bytes(b"%PDF-1.7 " + component.encode())
        files += ["--file", f"{component}={path}"]
    code = intake_code(
        axis, "--procedure", "2.000806", "--name", "Đỗ Thị Lan", "--id-number", "040203001111",
        "--phone", "0987654321", *files,
    )  # fmt: skip
    before = ok_here(axis, CLERK, "steps", code)
    lines = before.splitlines()
    assert lines[0].split() == ["STEP", "AGENCY", "DAYS", "DUE", "(+07)", "TRANSFER"]
    assert lines[2].split()[:3] == ["1", XA, "2"] and lines[3].split()[:3] == ["2", SO, "13"]
    assert "sent" not in before

    elsewhere = run_here(axis, CLERK, "transfer", code, "--agency", "000.00.00.G22")
    assert elsewhere.returncode == 1 and elsewhere.stderr.count("\n") == 1
    assert "agency" in elsewhere.stderr
    out = ok(axis, CLERK, "transfer", code, "--agency", SO)
    assert out.startswith(f"{code}: step 2 sent to {SO}, due ") and "package " in out
    twice = run_here(axis, CLERK, "transfer", code, "--agency", SO)
    assert twice.returncode == 1 and twice.stderr.count("\n") == 1

    after = ok_here(axis, CLERK, "steps", code)
    assert "sent: 2 Được tiếp nhận" in after.splitlines()[3]
    steps = json.loads(ok_here(axis, CLERK, "steps", code, "--json"))
    assert [t["agency"] for t in steps["transfers"]] == [SO]
    unknown = run_here(axis, CLERK, "steps", f"{XA}-200101-0001")
    assert unknown.returncode == 1 and "Not found" in unknown.stderr
