"""Files of an axis are private to the user it runs as: directories 0700, files 0600.

Whatever the umask: the mode is given when a file or directory is created (``os.open`` and
``mkdir`` with the mode; a umask can only take bits away), so the hot path pays no ``chmod``.
What others create under the data directory (SQLite's WAL and shared-memory files take the
database file's mode; the metric files of ``serve --workers N``; files libraries write in the
spool) is covered by the creating process's umask: ``lienthong serve`` runs with
:func:`private_umask`.

Data directories made before this rule are tightened once at start-up (``serve`` and ``init``):
:func:`tighten` takes the group and other bits off everything under the data directory (owner
bits are kept), then leaves :data:`MARKER` so that later starts check only the data directory
and its direct entries. Symbolic links are never followed: nothing outside is changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077
MARKER = ".private-modes"
_OTHERS = 0o077
_COPY_CHUNK = 1 << 20


def make_dir(path: Path) -> Path:
    """Create ``path`` with mode 0700 if missing (its missing parents with the default mode:
    create the data directory itself with this first). An existing directory is left as it is
    (:func:`tighten` handles those at start-up)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(DIR_MODE, exist_ok=True)
    return path


def create_file(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Open ``path`` for writing, created with mode 0600 if missing; return the descriptor.
    ``flags`` are added to ``O_CREAT`` (``O_EXCL`` to refuse an existing file)."""
    return os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created 0600, truncated if it exists)."""
    with os.fdopen(create_file(path), "wb") as out:
        out.write(data)


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (created 0600 whatever the source's mode), keeping its
    modification time."""
    with open(source, "rb") as src:
        st = os.fstat(src.fileno())
        with os.fdopen(create_file(target, os.O_WRONLY | os.O_TRUNC), "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the block with umask 077 (what libraries create is private too), then restore."""
    previous = os.umask(UMASK)
    try:
        yield
    finally:
        os.umask(previous)


@dataclass
class Tightened:
    """What :func:`tighten` did: entries whose mode it changed, and those it could not change
    (owned by another user: ``first_failure`` names one)."""

    changed: int = 0
    failed: int = 0
    first_failure: str | None = None
    walked: bool = False


def _tighten_one(path: str, result: Tightened) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # removed meanwhile (a spool file, a swept object)
        return
    except OSError as exc:
        _failed(result, path, exc)
        return
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & _OTHERS:
        return
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~_OTHERS)
    except FileNotFoundError:
        return
    except OSError as exc:
        _failed(result, path, exc)
        return
    result.changed += 1


def _failed(result: Tightened, path: str, exc: OSError) -> None:
    result.failed += 1
    if result.first_failure is None:
        result.first_failure = f"{path}: {exc.strerror or exc}"


def tighten(data_dir: Path) -> Tightened:
    """Take the group and other bits off ``data_dir`` and everything under it (see the module
    docstring); after one complete pass (:data:`MARKER` present) only ``data_dir`` and its
    direct entries are checked. Never raises for a file it cannot change: see the result."""
    root = Path(data_dir)
    result = Tightened()
    if not root.is_dir():
        return result
    _tighten_one(str(root), result)
    marker = root / MARKER
    if marker.exists():
        with os.scandir(root) as entries:
            for entry in entries:
                _tighten_one(entry.path, result)
        return result
    result.walked = True
    for directory, subdirs, files in os.walk(root):  # never follows symbolic links
        for name in subdirs + files:
            _tighten_one(os.path.join(directory, name), result)
    if result.failed == 0:
        with contextlib.suppress(OSError):
            write_file(marker, b"directories 0700, files 0600 (see docs/operations.md)\n")
    return result
