"""A fresh ``lienthong demo`` + ``lienthong serve``, as the attack of issue 18 met it, with the
real ids a client would hold: the demo package sent and received, a signing session open, a
dossier code, an admin token. Started once per test session for the fuzzing tests.

Real parts only: the installed ``lienthong`` console script, SQLite and files in a temporary
directory, the demo's SoftHSM2 tokens and test PKI (served by ``serve`` itself on 127.0.0.1).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from fixtures_pki import clean_env, free_port

LIENTHONG = Path(sys.executable).parent / "lienthong"
SENDER = "000.00.00.G22"
RECIPIENT = "000.00.00.H41"


def _run(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [str(LIENTHONG), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
        encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"lienthong {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@dataclass
class DemoAxis:
    """The served demo: its URL, data directory, tokens and the ids of what it holds."""

    url: str
    work: Path
    tokens: dict[str, str]
    admin_token: str
    vdxp: dict[str, tuple[str, str]]
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.work / "data"

    def auth(self, organ_id: str = RECIPIENT) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[organ_id]}"}

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        """One request to the served axis (never anywhere but 127.0.0.1)."""
        return requests.request(method, self.url + path, timeout=60, **kw)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
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


def _populate(axis: DemoAxis) -> None:
    """Send the demo package, open a signing session: the ids a real client holds."""
    sender = {"Authorization": f"Bearer {axis.tokens[SENDER]}"}
    package = (axis.data / "demo" / "demo.edxml").read_bytes()
    sent = axis.request(
        "POST", "/api/v1/documents", data=package,
        headers={**sender, "Content-Type": "application/xml"},
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    axis.ids["document"] = sent.json()["id"]
    inbox = axis.request("GET", "/api/v1/inbox", headers=axis.auth()).json()
    axis.ids["delivery"] = inbox["items"][0]["delivery_id"]
    pdf = (axis.data / "demo" / "cong-van-mau.pdf").read_bytes()
    cert = (axis.data / "pki" / "certs" / "officer.cert.pem").read_bytes()
    session = axis.request(
        "POST", "/api/v1/signing-sessions", headers=axis.auth(),
        files={"pdf": ("cong-van.pdf", pdf, "application/pdf"),
               "certificate": ("officer.pem", cert, "application/x-pem-file")},
    )  # fmt: skip
    assert session.status_code == 201, session.text
    opened = session.json()
    axis.ids["signing_session"] = opened["session_id"]
    # the VGCA plugin's JWTs: its download URL's ?token= and its upload token
    axis.ids["download_token"] = opened["download_url"].split("?token=", 1)[1]
    axis.ids["upload_token"] = opened["upload_token"]


@pytest.fixture(scope="session")
def demo_axis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoAxis]:
    """``lienthong demo`` then ``lienthong serve`` on free ports, populated by :func:`_populate`."""
    work = tmp_path_factory.mktemp("demo-axis")
    out = _run(work, "demo", "--data-dir", "data", "--pki-port", str(free_port()))
    tokens_by_var = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export TOKEN_")
    )
    tokens = {SENDER: tokens_by_var["TOKEN_G22"], RECIPIENT: tokens_by_var["TOKEN_H41"]}
    admin = _run(work, "token", "create", RECIPIENT, "--role", "admin", "--data-dir", "data")
    admin_token = re.search(r"\blt_[A-Za-z0-9_-]+", admin)
    assert admin_token is not None, admin
    vdxp = {
        organ: (sid, secret)
        for organ, sid, secret in re.findall(
            r"^  (\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})  (demo-\S+)\s+(\S+)$", out, re.M
        )
    }
    dossier_codes = re.findall(r"tra-cuu\?ma=(\S+)", out)
    port = free_port()
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(LIENTHONG), "serve", "--config", "data/lienthong.toml", "--data-dir", "data",
             "--port", str(port)],
            cwd=work, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    axis = DemoAxis(f"http://127.0.0.1:{port}", work, tokens, admin_token.group(0), vdxp)
    try:
        _wait_healthy(axis.url, process, log_path)
        axis.ids["dossier"] = dossier_codes[0]
        _populate(axis)
        yield axis
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_log(axis: DemoAxis) -> str:
    """What ``serve`` has logged so far."""
    return (axis.work / "serve.log").read_text(errors="replace")


def problem(resp: requests.Response) -> dict[str, Any]:
    """The problem+json body of a refusal (asserting its media type)."""
    assert resp.headers["Content-Type"].startswith("application/problem+json"), (
        resp.status_code,
        resp.headers.get("Content-Type"),
        resp.text[:500],
    )
    return dict(json.loads(resp.text))
