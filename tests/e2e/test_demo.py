"""``make run`` as a user meets it: ``lienthong demo``, then ``lienthong serve`` with the demo
config, then the printed guide's commands, run by bash exactly as printed (only the axis port
is changed, since 8080 may be taken on a test machine).

Real parts throughout: SQLite and files, the certomancer test PKI served by ``serve`` itself
([devpki]), SoftHSM2 tokens made by the demo, the installed ``lienthong`` console script, curl.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from fixtures_pki import clean_env, free_port

LIENTHONG = Path(sys.executable).parent / "lienthong"
DEFAULT_AXIS = "http://127.0.0.1:8080"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None
    or shutil.which("softhsm2-util") is None
    or shutil.which("pkcs11-tool") is None,
    reason="curl, softhsm2 and opensc are in the Makefile's RUN_APT_PACKAGES",
)


def run_demo(cwd: Path, *extra: str) -> str:
    result = subprocess.run(
        [str(LIENTHONG), "demo", "--data-dir", "data", *extra],
        cwd=cwd, env=clean_env(), capture_output=True, text=True, encoding="utf-8",
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def exports(out: str) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export TOKEN_")
    )


def open311_exports(out: str) -> str:
    """The demo app's Open311 key the demo printed."""
    [line] = [line for line in out.splitlines() if line.startswith("export OPEN311_KEY=")]
    return line.removeprefix("export OPEN311_KEY=")


def guide_script(out: str) -> str:
    """The shell block of the guide: the two-space-indented lines after its heading."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Then, in a second terminal"))
    block: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line[2:])
    return "\n".join(block)


def vdxp_credentials(out: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^  (\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})  (demo-\S+)\s+(\S+)$", out, re.M)
    return {organ: (sid, secret) for organ, sid, secret in rows}


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("lienthong serve did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.1)


def test_make_run_demo_guide_end_to_end(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    pki_port = free_port()
    first = run_demo(work, "--pki-port", str(pki_port))
    data = work / "data"
    root = data / "pki" / "trust" / "root.cert.pem"
    token_files = sorted(p.name for p in (data / "pki" / "softhsm" / "tokens").rglob("*"))
    root_bytes = root.read_bytes()
    for pin in ("agency-hsm.pin", "officer-usb.pin"):
        assert (data / "pki" / "softhsm" / pin).stat().st_mode & 0o777 == 0o600
        assert (data / "pki" / "softhsm" / pin).read_text().strip() not in first  # never printed
    assert "5 agencies added" in first

    # A second run (a second `make run`) reuses the PKI and tokens, and gives fresh secrets.
    out = run_demo(work)
    assert "0 agencies added" in out
    assert root.read_bytes() == root_bytes
    assert sorted(p.name for p in (data / "pki" / "softhsm" / "tokens").rglob("*")) == token_files
    tokens = exports(out)
    assert set(tokens) == {
        "TOKEN_G22",
        "TOKEN_H41",
        "TOKEN_12_H41",
        "TOKEN_31_H41",
        "TOKEN_05_31_H41",
    }
    assert tokens["TOKEN_G22"] not in first
    credentials = vdxp_credentials(out)
    assert len(credentials) == 5 and credentials["000.00.00.H41"][0] == "demo-h41"
    assert f"{DEFAULT_AXIS}/xac-minh" in out
    # The citizens' page, the Open311 endpoint and a fresh demo app key (shown once).
    assert f"{DEFAULT_AXIS}/phan-anh" in out
    assert f"{DEFAULT_AXIS}/open311/v2/discovery.json" in out
    open311_key = open311_exports(out)
    assert open311_key.startswith("o311_") and open311_key not in first
    assert open311_exports(first) != open311_key
    open311_call = next(line for line in out.splitlines() if "e.g. curl" in line and "311" in line)

    # `lienthong serve` exactly as the guide says (make run's second command), on a free port.
    serve_line = next(line for line in out.splitlines() if line.startswith("Start the axis: "))
    serve_args = serve_line.removeprefix("Start the axis: ").split("   ")[0].split()
    assert serve_args == [
        "lienthong",
        "serve",
        "--config",
        "data/lienthong.toml",
        "--data-dir",
        "data",
    ]
    port = free_port()
    axis = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(LIENTHONG), *serve_args[1:], "--port", str(port)],
            cwd=work, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_healthy(axis, process, log_path)
        script = guide_script(out)
        assert script.count(DEFAULT_AXIS) == 1  # AXIS=...; everything else goes through $AXIS
        script = script.replace(DEFAULT_AXIS, axis)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=work, env={**clean_env(), **tokens}, capture_output=True, text=True,
            encoding="utf-8", timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        output = result.stdout

        # 1. send: 201 with a receipt_url
        sent = json.loads(output.split("\nHTTP ", 1)[0])
        assert output.split("\nHTTP ", 1)[1].startswith("201")
        assert sent["receipt_url"] == f"/api/v1/documents/{sent['id']}/receipt"
        # 3-5: fetched as stored, acked, status 03 back and in the sender's history
        received = (data / "demo" / "received.edxml").read_bytes()
        assert b"000.00.00.G22,2025/01/15,15/VPCP-HC" in received
        # (the API's JSON is compact with orjson, spaced without: either is the same answer)
        assert re.search(r'"state":\s?"acked"', output), output
        assert re.search(r'"code":\s?"03"', output), output
        # 6. the receipt, sealed on the token, verifies offline against the demo root
        assert (data / "demo" / "receipt.p7m").stat().st_size > 1000
        assert re.search(r"^VALID receipt: document " + sent["id"], output, re.M), output
        assert "package matches" in output
        # 7. the officer's signed PDF, and `lienthong verify` (exit 0 = TOTAL_PASSED)
        signed = data / "demo" / "cong-van-mau-da-ky.pdf"
        assert "signed (B-T): data/demo/cong-van-mau-da-ky.pdf" in output
        assert "tất cả hợp lệ" in output and "Nguyễn Văn Ánh" in output
        report = subprocess.run(
            [str(LIENTHONG), "verify", str(signed), "--trust", str(root), "--online", "--json"],
            env=clean_env(), capture_output=True, text=True, encoding="utf-8", timeout=60,
            check=False,
        )  # fmt: skip
        doc = json.loads(report.stdout)
        assert doc["indication"] == "TOTAL_PASSED", doc
        assert doc["signatures"][0]["signer"]["name"] == "Nguyễn Văn Ánh"
        # 8. the audit chain is intact
        assert "audit log OK" in output

        # The verification page (and its API) trusts the demo root while serve runs.
        with urllib.request.urlopen(axis + "/xac-minh", timeout=10) as resp:
            assert resp.status == 200
        verdict = post_pdf(axis + "/api/v1/public/verify", signed)
        assert verdict["indication"] == "TOTAL_PASSED", verdict

        # The Open311 example call, as printed, with the printed key: a request is made.
        made = subprocess.run(
            ["bash", "-euo", "pipefail", "-c",
             open311_call.strip().removeprefix("e.g. ").replace(DEFAULT_AXIS, axis)],
            env={**clean_env(), "OPEN311_KEY": open311_key}, capture_output=True, text=True,
            encoding="utf-8", timeout=60, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        [request] = json.loads(made.stdout)
        assert request["service_request_id"].startswith("PA-"), made.stdout
        with urllib.request.urlopen(axis + "/open311/v2/discovery.json", timeout=10) as resp:
            assert json.load(resp)["endpoints"][0]["url"].endswith("/open311/v2")

        # VDXP credentials printed by the demo work against this axis.
        system_id, secret = credentials["000.00.00.H41"]
        vdxp = subprocess.run(
            [str(LIENTHONG), "vdxp", "list", "--endpoint", axis + "/vdxp",
             "--system-id", system_id],
            env={**clean_env(), "LIENTHONG_VDXP_SECRET": secret}, capture_output=True,
            text=True, encoding="utf-8", timeout=60, check=False,
        )  # fmt: skip
        assert vdxp.returncode == 0, vdxp.stderr
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log_text = log_path.read_text(errors="replace")
    assert "DEVELOPMENT test PKI (OCSP, CRL, TSA) served on" in log_text
    assert process.returncode == 0, log_text

    # At shutdown the audit head was anchored with the demo TSA (served until the end).
    audit = subprocess.run(
        [str(LIENTHONG), "audit", "verify", "--data-dir", "data", "--trust", str(root)],
        cwd=work, env=clean_env(), capture_output=True, text=True, encoding="utf-8",
        timeout=60, check=False,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr
    match = re.search(r"(\d+) anchor\(s\) verified", audit.stdout)
    assert match and int(match.group(1)) >= 1, audit.stdout


def post_pdf(url: str, path: Path) -> dict[str, object]:
    """POST a file as multipart/form-data (field ``file``) and return the JSON answer."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    )
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        answer: dict[str, object] = json.loads(resp.read())
    return answer
