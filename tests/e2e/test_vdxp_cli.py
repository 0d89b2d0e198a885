"""``lienthong agency add --system-id``, ``agency secret rotate`` and ``lienthong vdxp ...``
against a real ``lienthong serve`` subprocess on a free loopback port (real SQLite and files).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

import edxml
from edxml import Code, Envelope, MessageHeader, Organization, PromulgationInfo

LIENTHONG = Path(sys.executable).parent / "lienthong"
G22, H41 = "000.00.00.G22", "000.00.00.H41"


def run(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(LIENTHONG), *args],
        capture_output=True, text=True, encoding="utf-8", timeout=60,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"lienthong {' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class Served:
    url: str
    data: Path
    secrets: dict[str, str]

    def vdxp(
        self, organ_id: str, *args: str, secret: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        system_id = "sys-" + organ_id.replace(".", "")
        env = {"LIENTHONG_VDXP_SECRET": secret or self.secrets[organ_id]}
        return run(
            "vdxp", *args, "--endpoint", self.url + "/vdxp", "--system-id", system_id,
            env=env, check=check,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    data = tmp_path / "data"
    run("init", "--data-dir", str(data))
    secrets: dict[str, str] = {}
    for organ_id, name in ((G22, "Văn phòng Chính phủ"), (H41, "UBND tỉnh Nghệ An")):
        system_id = "sys-" + organ_id.replace(".", "")
        added = run(
            "agency", "add", organ_id, "--name", name, "--system-id", system_id,
            "--data-dir", str(data),
        )  # fmt: skip
        # the secret is stdout's only line, so that SECRET=$(lienthong agency add ...) works
        secret = added.stdout.removesuffix("\n")
        assert len(secret) >= 40 and " " not in secret and "\n" not in secret
        assert "shown only this once" in added.stderr and f"Added agency {organ_id}" in added.stderr
        secrets[organ_id] = secret
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(LIENTHONG), "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "LIENTHONG_SERVER_LOG_JSON": "false"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError((tmp_path / "serve.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield Served(url, data, secrets)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_secret_is_stored_encrypted_with_a_0600_key(served: Served) -> None:
    key = served.data / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    database = (served.data / "lienthong.sqlite3").read_bytes()
    for secret in served.secrets.values():
        assert secret.encode() not in database


def test_vdxp_commands_round_trip_and_rotation(served: Served, tmp_path: Path) -> None:
    package = tmp_path / "cong-van.edxml"
    package.write_bytes(
        edxml.serialize(
            Envelope(
                header=MessageHeader(
                    from_=Organization(G22, organ_name="Văn phòng Chính phủ"),
                    to=(Organization(H41, organ_name="UBND tỉnh Nghệ An"),),
                    document_id=f"{G22},2024/05/01,1/VPCP-TEST",
                    subject="Thử lệnh lienthong vdxp",
                    code=Code("1", "VPCP-TEST"),
                    promulgation_info=PromulgationInfo("Hà Nội", date(2024, 5, 1)),
                )
            )
        )
    )
    sent = served.vdxp(G22, "send", str(package))
    doc_id = sent.stdout.strip().rsplit(" ", 1)[-1]
    assert len(doc_id) == 32, sent.stdout

    listed = served.vdxp(H41, "list")
    assert doc_id in listed.stdout and G22 in listed.stdout
    out = tmp_path / "got.edxml"
    served.vdxp(H41, "get", doc_id, "-o", str(out))
    got = edxml.parse(out.read_bytes())
    assert isinstance(got, Envelope)
    assert got.header.subject == "Thử lệnh lienthong vdxp"
    served.vdxp(H41, "ack", doc_id)
    assert "Nothing waiting" in served.vdxp(H41, "list").stdout
    assert "UBND tỉnh Nghệ An" in served.vdxp(G22, "agencies").stdout
    assert doc_id in served.vdxp(G22, "sent").stdout

    # rotation: the old secret stops working at once, the new one works
    old = served.secrets[H41]
    rotated = run("agency", "secret", "rotate", H41, "--data-dir", str(served.data))
    new = rotated.stdout.removesuffix("\n")
    assert new != old and len(new) >= 40 and "\n" not in new
    refused = served.vdxp(H41, "list", secret=old, check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("lienthong: error: getReceivedEdocList: FAIL 1003")
    assert len(refused.stderr.strip().splitlines()) == 1
    served.secrets[H41] = new
    assert "Nothing waiting" in served.vdxp(H41, "list").stdout


def test_cli_errors_are_one_line(served: Served, tmp_path: Path) -> None:
    missing = run("vdxp", "list", "--endpoint", served.url + "/vdxp", "--system-id", "x",
                  env={"LIENTHONG_VDXP_SECRET": ""}, check=False)  # fmt: skip
    assert missing.returncode == 1
    assert "LIENTHONG_VDXP_SECRET" in missing.stderr
    taken = run("agency", "secret", "create", H41, "--system-id", "sys-other",
                "--data-dir", str(served.data), check=False)  # fmt: skip
    assert taken.returncode == 1
    assert "already has a system id" in taken.stderr
    unknown = run("agency", "secret", "rotate", "000.00.00.G17", "--data-dir",
                  str(served.data), check=False)  # fmt: skip
    assert unknown.returncode == 1 and "no VDXP system id" in unknown.stderr
    bad = run("agency", "add", "000.00.00.G17", "--name", "Bộ TT&TT", "--system-id",
              "has space", "--data-dir", str(served.data), check=False)  # fmt: skip
    assert bad.returncode == 1 and "system id" in bad.stderr
    # nothing was added when the system id was refused
    assert "000.00.00.G17" not in run("agency", "list", "--data-dir", str(served.data)).stdout
    unreachable = run("vdxp", "agencies", "--endpoint", "http://127.0.0.1:9/vdxp",
                      "--system-id", "x", env={"LIENTHONG_VDXP_SECRET": "s"},
                      check=False)  # fmt: skip
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
