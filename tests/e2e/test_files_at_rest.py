"""Files at rest are private: after ``demo``/``init``, ``serve`` (documents sent and fetched),
``backup`` and ``restore``, run as real processes under umask 022 and 000, every directory under
the data directory (and the backup) is 0700 and every file 0600 or tighter; a data directory made
by an older version is tightened at start-up (``init``, ``serve``) and keeps working."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_client import free_port, stop_process
from test_demo import exports

from server.demo.content import DEMO_PACKAGE_NAME, DEMO_STATUS_NAME
from storage.private import MARKER

LIENTHONG = Path(sys.executable).parent / "lienthong"
DB = "lienthong.sqlite3"


def _run(umask: int, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(LIENTHONG), *args], capture_output=True, text=True, encoding="utf-8", timeout=120,
        umask=umask, env={**os.environ, "LIENTHONG_SERVER_PORT": str(free_port())},
    )  # fmt: skip
    assert result.returncode == 0, f"lienthong {' '.join(args)}: {result.stderr}"
    return result


class Served:
    """``lienthong serve`` on a free loopback port, run under a given umask."""

    def __init__(self, data: Path, umask: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(LIENTHONG), "serve", "--data-dir", str(data), "--port", port],
                stdout=out, stderr=subprocess.STDOUT, umask=umask,
                env={**os.environ, "LIENTHONG_SERVER_LOG_JSON": "false"},
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(log.read_text("utf-8", "replace"))
            time.sleep(0.1)

    def call(self, method: str, path: str, token: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            self.url + path, data=body, method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as resp:
            return bytes(resp.read())

    def stop(self) -> None:
        stop_process(self.process, timeout=30)


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and of everything under it (symbolic links excluded)."""
    found = {".": stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode):
            found[str(path.relative_to(root))] = stat.S_IMODE(st.st_mode)
    return found


def assert_private(root: Path) -> dict[str, int]:
    """Nothing under ``root`` is open to group or others; what the axis itself makes is exactly
    0700 (directories) or 0600 (files)."""
    modes = _modes(root)
    loose = {name: oct(mode) for name, mode in modes.items() if mode & 0o077}
    assert not loose, f"open to group or others under {root}: {loose}"
    for name, mode in modes.items():
        top = name.split("/", 1)[0]
        if top in (".", "objects", "spool", "metrics") or top.startswith(DB):
            path = root / name
            assert mode == (0o700 if path.is_dir() else 0o600), (name, oct(mode))
    return modes


def _loosen(root: Path) -> None:
    """What an older version under umask 022 left: directories 0755, files 0644."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "serve.log"  # outside the data directory
    yield path


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_every_file_is_private_after_init_serve_backup_restore(
    tmp_path: Path, log: Path, umask: int
) -> None:
    data = tmp_path / "data"
    tokens = exports(_run(umask, "demo", "--data-dir", str(data)).stdout)
    served = Served(data, umask, log)
    try:
        package_bytes = (data / "demo" / DEMO_PACKAGE_NAME).read_bytes()
        sent = json.loads(
            served.call("POST", "/api/v1/documents", tokens["TOKEN_G22"], package_bytes)
        )
        doc_id = sent["id"]
        package = served.call("GET", f"/api/v1/documents/{doc_id}", tokens["TOKEN_H41"])
        served.call("GET", f"/api/v1/documents/{doc_id}/attachments/0", tokens["TOKEN_H41"])
        served.call(
            "POST", "/api/v1/statuses", tokens["TOKEN_H41"],
            (data / "demo" / DEMO_STATUS_NAME).read_bytes(),
        )  # fmt: skip
        # While serving: the database, its WAL and shared memory, the objects.
        modes = assert_private(data)
        assert {DB, f"{DB}-wal", f"{DB}-shm"} <= set(modes)
        assert any(name.startswith("objects/") and len(name) > 70 for name in modes)
    finally:
        served.stop()
    assert_private(data)
    assert (data / MARKER).is_file()

    backup = tmp_path / "backup"
    _run(umask, "backup", str(backup), "--data-dir", str(data), "--with-secrets-key")
    backed = assert_private(backup)
    assert {DB, "backup.json", "secrets.key"} <= set(backed)
    assert all(backed[n] == (0o700 if (backup / n).is_dir() else 0o600) for n in backed)

    restored = tmp_path / "restored"
    _run(umask, "restore", str(backup), "--data-dir", str(restored))
    assert all(
        mode == (0o700 if (restored / n).is_dir() else 0o600)
        for n, mode in assert_private(restored).items()
    )

    # A data directory of an older version (0755/0644 under umask 022) is tightened when the
    # axis starts, and serves what it held byte for byte.
    _loosen(data)
    (data / MARKER).unlink()
    served = Served(data, umask, log)
    try:
        again = served.call("GET", f"/api/v1/documents/{doc_id}", tokens["TOKEN_H41"])
        assert again == package
        assert_private(data)
    finally:
        served.stop()


def test_init_tightens_an_existing_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _run(0o022, "init", "--data-dir", str(data))
    _run(0o022, "agency", "add", "000.00.00.G22", "--name", "VPCP", "--data-dir", str(data))
    assert_private(data)
    _loosen(data)
    (data / MARKER).unlink()
    (data / "objects" / "ab" / "cd").mkdir(parents=True)  # as an older store made them
    (data / "objects" / "ab" / "cd" / ("abcd" + "0" * 60)).write_bytes(b"x")
    os.chmod(data / "objects" / "ab" / "cd" / ("abcd" + "0" * 60), 0o644)

    out = _run(0o000, "init", "--data-dir", str(data)).stdout
    assert "already initialised" in out and "private (0600/0700)" in out
    assert_private(data)
    assert (data / MARKER).is_file()
    listed = _run(0o022, "agency", "list", "--data-dir", str(data)).stdout
    assert "000.00.00.G22" in listed
