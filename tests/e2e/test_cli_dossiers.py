"""``lienthong dossier intake | list | show | advance`` through the installed console script
against a real ``lienthong serve`` (demo data: the procedures of server/demo/procedures.json)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.cli.http_client import AxisClient, FormPart
from tests.e2e.test_cli_client import LIENTHONG, Axis, start_axis, stop_axis

XA = "000.05.31.H41"  # UBND xã Kim Liên: receives, and is competent for 1.001193


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
