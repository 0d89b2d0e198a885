"""The CLI as a client of the REAL server: ``lienthong serve`` runs as a subprocess on a free
loopback port with its own data directory (real SQLite, real files); ``send``, ``inbox``,
``fetch``, ``ack`` and ``status send`` drive the whole round trip. The README's curl round trip
is run as written, with the real ``curl``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import edxml
from server.cli import main
from server.demo.content import DEMO_ATTACHMENT, DEMO_DOCUMENT_ID

LIENTHONG = Path(sys.executable).parent / "lienthong"
README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class Axis:
    """A running ``lienthong serve`` with the demo agencies and their tokens."""

    url: str
    data: Path
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]

    def api(self, path: str, token: str) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_axis(data: Path, *serve_options: str) -> Axis:
    """``lienthong demo`` then ``lienthong serve`` (with ``serve_options``, e.g. ``--workers``)."""
    demo = subprocess.run(
        [str(LIENTHONG), "demo", "--data-dir", str(data)],
        capture_output=True, text=True, encoding="utf-8", timeout=60, check=True,
    )  # fmt: skip
    tokens = dict(
        line.removeprefix("export ").split("=", 1)
        for line in demo.stdout.splitlines()
        if line.startswith("export ")
    )
    port = free_port()
    log = (data / "serve.log").open("wb")
    env = {**os.environ, "LIENTHONG_SERVER_LOG_JSON": "false"}
    process = subprocess.Popen(
        [str(LIENTHONG), "serve", "--data-dir", str(data), "--port", str(port), *serve_options],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # TimeoutError: a worker
            # still starting holds the connection in its backlog (serve --workers N)
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError((data / "serve.log").read_text("utf-8", "replace"))
        time.sleep(0.1)
    return Axis(url, data, tokens, process)


def stop_axis(axis: Axis) -> None:
    stop_process(axis.process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a ``lienthong serve`` (SIGTERM; SIGKILL if it has not exited after ``timeout``)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def axis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Axis]:
    running = start_axis(tmp_path_factory.mktemp("axis"))
    yield running
    stop_axis(running)


class Cli:
    """Runs ``lienthong`` in process as one agency against the axis."""

    def __init__(
        self, axis: Axis, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ):
        self.axis = axis
        self.capsys = capsys
        monkeypatch.setenv("LIENTHONG_SERVER", axis.url)
        monkeypatch.delenv("LIENTHONG_TOKEN", raising=False)

    def __call__(self, token_var: str, *argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--token", self.axis.tokens[token_var]])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, token_var: str, *argv: str) -> str:
        code, out, err = self(token_var, *argv)
        assert code == 0, err
        assert "Traceback" not in err
        return out


@pytest.fixture
def cli(axis: Axis, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(axis, capsys, monkeypatch)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lienthong: error: ")
    return lines[0]


def receipt_field(out: str, name: str) -> str:
    match = re.search(rf"^\s*{name}:\s+(\S.*)$", out, re.MULTILINE)
    assert match, out
    return match.group(1).strip()


def test_round_trip_through_the_cli(
    cli: Cli, axis: Axis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    package = axis.data / "demo" / "demo.edxml"
    out = cli.ok("TOKEN_G22", "send", str(package))
    assert out.startswith("Accepted: id ")
    doc_id = out.split()[2]
    sha = receipt_field(out, "sha256")
    assert receipt_field(out, "document_id") == DEMO_DOCUMENT_ID
    assert receipt_field(out, "recipients") == "000.00.00.H41"
    again = cli.ok("TOKEN_G22", "send", str(package))
    assert again.startswith(f"Already accepted earlier (same bytes): id {doc_id}")

    table = cli.ok("TOKEN_H41", "inbox")
    assert doc_id in table and "15/VPCP-HC" in table and "000.00.00.G22" in table
    assert "V/v thử nghiệm trục liên thông" in table
    items = [json.loads(line) for line in cli.ok("TOKEN_H41", "inbox", "--json").splitlines()]
    assert [i["document_id"] for i in items] == [doc_id]
    delivery = items[0]["delivery_id"]
    # Another agency of the same province sees nothing and cannot fetch it.
    assert "No new deliveries" in cli.ok("TOKEN_12_H41", "inbox")
    code, _, err = cli("TOKEN_12_H41", "fetch", doc_id, "-o", str(tmp_path / "x.edxml"))
    assert code == 1 and one_error_line(err).startswith("lienthong: error: Not found: ")
    assert not (tmp_path / "x.edxml").exists()

    target = tmp_path / "received.edxml"
    out = cli.ok("TOKEN_H41", "fetch", doc_id, "-o", str(target))
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha  # byte for byte what the axis stored
    assert f"sha256 {sha}" in out
    received = edxml.parse(data)
    assert isinstance(received, edxml.Envelope)
    assert received.header.document_id == DEMO_DOCUMENT_ID
    assert received.attachments[0].data == DEMO_ATTACHMENT
    original = edxml.parse(package)
    assert isinstance(original, edxml.Envelope)
    assert received.header == original.header
    # The axis appended its own TraceHeader after the sender's.
    assert len(received.trace_headers) == len(original.trace_headers) + 1

    monkeypatch.chdir(tmp_path)
    cli.ok("TOKEN_H41", "fetch", doc_id, "--attachment", "0")
    assert (tmp_path / "Công văn mẫu.txt").read_bytes() == DEMO_ATTACHMENT

    out = cli.ok("TOKEN_H41", "ack", delivery)
    assert f"Acknowledged delivery {delivery}" in out
    assert cli.ok("TOKEN_H41", "ack", delivery)  # idempotent
    assert doc_id not in cli.ok("TOKEN_H41", "inbox")
    acked = cli.ok("TOKEN_H41", "inbox", "--all")
    assert doc_id in acked and "acked" in acked

    out = cli.ok("TOKEN_H41", "status", "send", doc_id, "3", "--note", "Đã tiếp nhận, chuyển HC")
    assert "Status 03 (Đã tiếp nhận) sent as 000.00.00.H41" in out
    assert out.rstrip().endswith("to 000.00.00.G22")

    sender_inbox = cli.ok("TOKEN_G22", "inbox", "--kind", "status")
    assert "[03 Đã tiếp nhận]" in sender_inbox and "000.00.00.H41" in sender_inbox
    statuses = [
        json.loads(line) for line in cli.ok("TOKEN_G22", "inbox", "--json", "--all").splitlines()
    ]
    assert [(s["kind"], s["status_code"]) for s in statuses] == [("status", "03")]
    assert statuses[0]["status_description"] == "Đã tiếp nhận, chuyển HC"
    sent = axis.api("/api/v1/sent", axis.tokens["TOKEN_G22"])["items"]
    mine = next(s for s in sent if s["id"] == doc_id)
    assert mine["recipients"][0]["status"]["code"] == "03"
    assert mine["recipients"][0]["state"] == "acked"

    # The sender asks for it back (13); a recipient may not send 13.
    code, _, err = cli("TOKEN_H41", "status", "send", doc_id, "13")
    assert code == 1
    assert one_error_line(err).startswith("lienthong: error: Status code not allowed")
    out = cli.ok("TOKEN_G22", "status", "send", doc_id, "13", "--note", "Xin lấy lại")
    assert "sent as 000.00.00.G22" in out and "to 000.00.00.H41" in out


def test_large_transfer_shows_progress(cli: Cli, axis: Axis, tmp_path: Path):
    blob = tmp_path / "bao-cao.bin"
    blob.write_bytes(os.urandom(3 * 1024 * 1024))
    package = tmp_path / "large.edxml"
    code = main(
        ["edxml", "new", "--from", "000.00.31.H41", "--to", "000.00.00.H41", "--subject",
         "Báo cáo lớn", "--attach", str(blob), "-o", str(package)]
    )  # fmt: skip
    assert code == 0
    cli.capsys.readouterr()
    code, out, err = cli("TOKEN_31_H41", "send", str(package))
    assert code == 0, err
    assert re.search(r"send large\.edxml \[#+\] 100\.0% .* MB/s", err), err
    doc_id = out.split()[2]
    target = tmp_path / "back.edxml"
    code, out, err = cli("TOKEN_H41", "fetch", doc_id, "-o", str(target))
    assert code == 0
    assert re.search(r"fetch back\.edxml \[#+\] 100\.0%", err), err
    assert hashlib.sha256(target.read_bytes()).hexdigest() in out
    code, _, err = cli("TOKEN_H41", "fetch", doc_id, "--attachment", "0", "-o", str(tmp_path / "a"))
    assert code == 0
    assert (tmp_path / "a").read_bytes() == blob.read_bytes()


def test_errors_are_one_line(cli: Cli, axis: Axis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    package = axis.data / "demo" / "demo.edxml"
    code, _, err = cli("TOKEN_H41", "send", str(package))  # From is G22, token is H41's
    assert code == 1
    assert one_error_line(err).startswith("lienthong: error: Sender is not the caller: ")

    bad = tmp_path / "bad.edxml"
    bad.write_text("<edXML><unclosed></edXML>", "utf-8")
    code, _, err = cli("TOKEN_G22", "send", str(bad))
    assert code == 1
    assert one_error_line(err).startswith("lienthong: error: Malformed XML: ")

    code, _, err = cli("TOKEN_G22", "send", str(tmp_path / "missing.edxml"))
    assert code == 1 and "no such file" in one_error_line(err)

    code, _, err = cli("TOKEN_G22", "ack", "0" * 32)
    assert code == 1 and one_error_line(err).startswith("lienthong: error: Not found")

    code, _, err = cli("TOKEN_G22", "status", "send", "0" * 32, "99")
    assert code == 1 and "unknown status code '99'" in one_error_line(err)

    assert main(["inbox", "--token", "lt_not-a-real-token"]) == 1
    err = cli.capsys.readouterr().err
    assert one_error_line(err).startswith("lienthong: error: Authentication required: ")

    assert main(["inbox"]) == 1  # no --token and no LIENTHONG_TOKEN
    assert "no token" in one_error_line(cli.capsys.readouterr().err)

    monkeypatch.setenv("LIENTHONG_SERVER", f"http://127.0.0.1:{free_port()}")
    code, _, err = cli("TOKEN_G22", "inbox")
    assert code == 1 and "connection refused" in one_error_line(err)


def json_documents(text: str) -> list[Any]:
    """The JSON answers curl printed one after the other (with or without newlines between)."""
    decoder = json.JSONDecoder()
    found, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        found.append(value)
    return found


def readme_round_trip() -> str:
    """The shell block of the README's "Round trip with curl" section."""
    text = README.read_text("utf-8")
    section = text.split("## Round trip with curl", 1)[1]
    match = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert match, "the README lost its curl round trip"
    return match.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is in the Makefile APT_PACKAGES")
def test_readme_curl_round_trip(tmp_path_factory: pytest.TempPathFactory):
    """The README commands, as written, against a fresh demo axis (only URL and path adapted)."""
    fresh = start_axis(tmp_path_factory.mktemp("readme-axis"))
    try:
        script = readme_round_trip()
        assert "AXIS=http://127.0.0.1:8080" in script and "@data/demo/demo.edxml" in script
        script = script.replace("http://127.0.0.1:8080", fresh.url)
        workdir = tmp_path_factory.mktemp("readme-cwd")
        (workdir / "data").symlink_to(fresh.data)
        env = {**os.environ, **fresh.tokens}
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir, env=env, capture_output=True, text=True, encoding="utf-8",
            timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        assert "problem" not in result.stdout, result.stdout
        answers = json_documents(result.stdout)
        receipt = answers[0]
        assert receipt["recipients"] == ["000.00.00.H41"]
        assert receipt["document_id"] == DEMO_DOCUMENT_ID
        received = (workdir / "received.edxml").read_bytes()
        assert hashlib.sha256(received).hexdigest() == receipt["sha256"]
        attachment = [p for p in workdir.iterdir() if p.suffix == ".txt"]
        assert [p.read_bytes() for p in attachment] == [DEMO_ATTACHMENT]
        acked = next(a for a in answers if "acked_at" in a and "delivery_id" in a)
        assert acked["state"] == "acked"
        status_receipt = next(a for a in answers if a.get("kind") == "status")
        assert status_receipt["recipients"] == ["000.00.00.G22"]
        sent = answers[-1]["items"]
        assert sent[0]["id"] == receipt["id"]
        assert sent[0]["recipients"][0]["status"]["code"] == "03"
        history = answers[-2]["items"]
        assert [h["code"] for h in history] == ["03"]
        status_inbox = answers[-3]["items"]
        assert [i["status_code"] for i in status_inbox] == ["03"]
    finally:
        stop_axis(fresh)
