"""``lienthong serve --workers 2`` over HTTPS with required client certificates: each worker
wraps its socket of the SO_REUSEPORT group with the ``[server.tls]`` context (the key
decrypted with LIENTHONG_SERVER_TLS_KEY_PASSWORD); a bound certificate acts as its agency on
either worker, no certificate gets no connection; a wrong key password is one line, not a
traceback."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fixtures_pki import free_port
from tls_fixtures import VPCP, TlsFiles, tls_env, tls_files

from server.cli import main as cli_main

__all__ = ["tls_files"]

LIENTHONG = Path(sys.executable).with_name("lienthong")
PASSWORD = "mật-khẩu-khoá-tls"


def _encrypted_key(tls_files: TlsFiles, path: Path) -> Path:
    key = serialization.load_pem_private_key(tls_files.keys["tls-server"].read_bytes(), None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    return path


def _env(tls_files: TlsFiles, key: Path, password: str) -> dict[str, str]:
    env = {
        **os.environ,
        **tls_env(tls_files, "require"),
        "LIENTHONG_SERVER_TLS_KEY": str(key),
        "LIENTHONG_SERVER_TLS_KEY_PASSWORD": password,
        "LIENTHONG_VERIFY_ONLINE": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = cwd / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LIENTHONG), "serve", *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
        )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=90)


def _get(url: str, context: ssl.SSLContext) -> tuple[int, str, dict[str, str]]:
    # A new connection each time, so the kernel spreads them over the workers.
    with urllib.request.urlopen(url, timeout=10, context=context) as resp:
        return resp.status, resp.headers["X-Lienthong-Worker"], json.loads(resp.read())


def test_https_with_client_certificates_on_two_workers(tmp_path: Path, tls_files: TlsFiles) -> None:
    data = tmp_path / "data"
    where = ["--data-dir", str(data)]
    assert cli_main(["init", *where]) == 0
    assert cli_main(["agency", "add", VPCP, "--name", "Văn phòng Chính phủ", *where]) == 0
    chain = str(tls_files.chains["tls-agency"])
    assert cli_main(["agency", "cert", "add", VPCP, chain, "--data-dir", str(data)]) == 0
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = _env(tls_files, _encrypted_key(tls_files, tmp_path / "server.key"), PASSWORD)
    agency = tls_files.client("tls-agency")
    args = ["--data-dir", str(data), "--port", str(port), "--workers", "2"]
    with _serving(args, env, tmp_path) as proc:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url + "/healthz", agency)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        workers = set()
        for _ in range(20):
            status, worker, body = _get(url + "/api/v1/me", agency)
            assert (status, body["organ_id"]) == (200, VPCP)
            workers.add(worker)
        assert workers == {"0", "1"}, "the kernel sent every connection to one worker"
        # no certificate: no connection (TLS 1.3 ends it just after the handshake: a reset)
        with pytest.raises(OSError):
            _get(url + "/healthz", tls_files.client(None))


def test_a_wrong_key_password_is_one_line(tmp_path: Path, tls_files: TlsFiles) -> None:
    env = _env(tls_files, _encrypted_key(tls_files, tmp_path / "server.key"), "wrong")
    args = ["--data-dir", str(tmp_path / "data"), "--port", str(free_port()), "--workers", "2"]
    with _serving(args, env, tmp_path) as proc:
        assert proc.wait(timeout=60) == 1
    output = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in output
    [error] = [line for line in output.splitlines() if line.startswith("lienthong: error:")]
    assert "server.tls.certificate" in error
    assert PASSWORD not in output and "wrong" not in error
