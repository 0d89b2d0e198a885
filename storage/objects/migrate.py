"""Copy every object of a filesystem store into another store (S3), checked and resumable.

Each object is streamed from the source, stored in the target (which hashes it on the way in),
then read back whole through the target's hash-checked ``open``: an object counts as moved only
when the target gave back exactly the bytes whose SHA-256 is its name. Moved objects are
appended to a journal file (one digest a line, fsynced), a record of what was moved. An object
the target already holds with the same size is skipped (it was checked when it was copied, by
this tool or by the server writing it there), so an interrupted run resumes where it stopped.
On S3 the target records the version id of every object it stores or finds (its version book,
``object_versions`` in the axis's database) and reads that version from then on.

The source is never modified: it stays the read fallback of the server (see
storage/objects/tiered.py) until an operator removes it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from storage.errors import IntegrityError
from storage.objects.base import ObjectStore, is_sha256
from storage.objects.fs import FilesystemObjectStore
from storage.private import create_file


@dataclass
class MigrationReport:
    """What one run did: objects copied, skipped (already there) and left (by ``limit``)."""

    total: int = 0
    copied: int = 0
    skipped: int = 0
    remaining: int = 0
    bytes_copied: int = 0

    @property
    def complete(self) -> bool:
        """True when every object of the source is now in the target."""
        return self.remaining == 0


def filesystem_objects(root: Path) -> Iterator[tuple[str, int]]:
    """(sha256, size) of every object file under a filesystem store's root, in name order."""
    for first in sorted(root.iterdir()) if root.is_dir() else []:
        if not first.is_dir() or len(first.name) != 2:
            continue  # tmp/ and anything else that is not a fan-out directory
        for second in sorted(first.iterdir()):
            if not second.is_dir():
                continue
            for entry in sorted(second.iterdir()):
                if is_sha256(entry.name) and entry.is_file():
                    yield entry.name, entry.stat().st_size


def read_journal(path: Path) -> set[str]:
    """The digests recorded as moved by earlier runs (a torn last line is ignored)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        return set()
    return {line.strip() for line in lines if is_sha256(line.strip())}


def _append(journal: Path, sha256: str) -> None:
    with os.fdopen(create_file(journal, os.O_WRONLY | os.O_APPEND), "a", encoding="ascii") as fh:
        fh.write(sha256 + "\n")
        fh.flush()
        os.fsync(fh.fileno())


async def copy_verified(source: ObjectStore, target: ObjectStore, sha256: str) -> int:
    """Copy one object and read it back whole from the target; return its size.

    Raises IntegrityError when the source's bytes do not hash to their name or the target
    gives back other bytes.
    """
    ref = await target.put(source.open(sha256))
    if ref.sha256 != sha256:
        raise IntegrityError(f"object {sha256} in the source hashes to {ref.sha256}")
    size = 0
    async for chunk in target.open(sha256):  # hash-checked: IntegrityError at the end
        size += len(chunk)
    if size != ref.size:
        raise IntegrityError(f"object {sha256} read back with {size} of {ref.size} bytes")
    return size


async def migrate_objects(
    source: FilesystemObjectStore,
    target: ObjectStore,
    journal: Path,
    *,
    limit: int | None = None,
    on_object: Callable[[str, int, bool], None] | None = None,
) -> MigrationReport:
    """Move every object of ``source`` into ``target`` (see the module docstring).

    ``limit`` stops after that many copies (the rest is left for the next run);
    ``on_object(sha256, size, copied)`` is called after each object, for a progress bar.
    """
    objects = await asyncio.to_thread(lambda: list(filesystem_objects(source.root)))
    done = await asyncio.to_thread(read_journal, journal)
    report = MigrationReport(total=len(objects))
    for sha256, size in objects:
        # Asked even for journalled objects: the target's stat records the version holding
        # the bytes (on S3, hashing it whole once when none is recorded yet, e.g. moved by an
        # earlier release), so every moved object has its version id in the database.
        there = await target.stat(sha256)
        if there is not None and there.size == size:
            report.skipped += 1
            copied = False
        elif limit is not None and report.copied >= limit:
            report.remaining += 1
            continue
        else:
            report.bytes_copied += await copy_verified(source, target, sha256)
            report.copied += 1
            copied = True
        if sha256 not in done:
            await asyncio.to_thread(_append, journal, sha256)
        if on_object is not None:
            on_object(sha256, size, copied)
    return report
