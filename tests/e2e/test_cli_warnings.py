"""The installed ``lienthong`` script prints our messages on stderr, never a library's warning.

Under cryptography 51, importing pyHanko warns ``CryptographyDeprecationWarning: DSA is
deprecated`` (issue 13): these tests run the real console script, in fresh processes, on commands
that import pyHanko in the main process and in the verifier's worker processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

LIENTHONG = Path(sys.executable).parent / "lienthong"
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "pyhanko"


def lienthong(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(
        [str(LIENTHONG), *argv],
        capture_output=True, text=True, encoding="utf-8", timeout=120, check=False,
        env={**environ, **(env or {})},
    )  # fmt: skip


def test_help_prints_nothing_on_stderr() -> None:
    result = lienthong("--help")
    assert result.returncode == 0
    assert "usage: lienthong" in result.stdout
    assert result.stderr == ""


def test_agency_list_prints_nothing_on_stderr(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert lienthong("init", "--data-dir", str(data)).returncode == 0
    result = lienthong("agency", "list", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert "No agencies yet" in result.stdout
    assert result.stderr == ""


def test_an_error_is_one_line_and_nothing_else(tmp_path: Path) -> None:
    result = lienthong("agency", "list", "--data-dir", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert result.stderr.startswith("lienthong: error: no database at ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_verify_in_worker_processes_prints_nothing_on_stderr() -> None:
    """``verify`` imports pyHanko in the CLI process and in its forkserver workers."""
    files = sorted(CORPUS.glob("*.pdf"))[:2]
    result = lienthong("verify", "--json", *map(str, files))
    assert result.returncode == 1  # untrusted test signatures: not TOTAL_PASSED
    reports = json.loads(result.stdout)
    assert [r["file"]["name"] for r in reports] == [f.name for f in files]
    assert result.stderr == ""


def test_python_warnings_option_still_shows_library_warnings() -> None:
    """Whoever sets PYTHONWARNINGS asked to see warnings: the filter stands aside."""
    script = "import server.cli.console, pyhanko.sign.signers.pdf_cms"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONWARNINGS": "always"},
    )  # fmt: skip
    shown = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import pyhanko.sign.signers.pdf_cms"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and shown.returncode == 0
    # the same warnings as without the console module (none, if the library has none today)
    assert result.stderr == shown.stderr


def test_our_warnings_still_show_and_libraries_do_not() -> None:
    script = textwrap.dedent(
        """
        import warnings
        import server.cli.console
        warnings.warn_explicit("library says", DeprecationWarning, "lib.py", 1, module="pyhanko.x")
        warnings.warn_explicit("ours says", DeprecationWarning, "ours.py", 1, module="server.demo")
        warnings.warn_explicit("edxml says", UserWarning, "e.py", 1, module="edxml.reader")
        warnings.warn_explicit("lookalike", UserWarning, "l.py", 1, module="serverless.x")
        """
    )
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=environ
    )
    assert result.returncode == 0
    assert "ours says" in result.stderr and "edxml says" in result.stderr
    assert "library says" not in result.stderr and "lookalike" not in result.stderr
