"""The filesystem store's directory fsyncs batched with the database's group commit (issue 21).

Real files and real SQLite: a put's directories are fsynced by the hook the database runs before
each COMMIT, so a row naming an object never commits unless the directory entries of that object
were fsynced first; a failed directory fsync fails the COMMIT and stays due for the next one.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from storage.errors import StorageError
from storage.objects.fs import FilesystemObjectStore


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open(tmp_path / "meta.db")
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE named (sha256 TEXT PRIMARY KEY)")
        yield db
    finally:
        await db.close()


def test_first_level_of_the_fan_out_is_made_when_the_store_opens(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path / "objects")
    made = sorted(p.name for p in store.root.iterdir() if p.is_dir())
    assert made == sorted([f"{n:02x}" for n in range(256)] + ["tmp"])
    assert all(not any((store.root / f"{n:02x}").iterdir()) for n in range(256))
    # Opened again: nothing changes (and nothing fails).
    FilesystemObjectStore(tmp_path / "objects")


async def test_row_commits_only_after_its_directories_are_fsynced(
    database: Database, tmp_path: Path
) -> None:
    store = FilesystemObjectStore(tmp_path / "objects", defer_dir_syncs=True)
    database.add_before_commit(store.sync_dirs)
    data = b"a large package, stored before its row"
    ref = await store.put(chunks(data))
    digest = hashlib.sha256(data).hexdigest()
    assert ref.sha256 == digest
    directory = store.root / digest[:2] / digest[2:4]
    assert (directory / digest).read_bytes() == data

    # The directory cannot be fsynced (moved away): the COMMIT of the row naming the object
    # must not happen.
    moved = directory.with_name("moved-away")
    directory.rename(moved)
    with pytest.raises(StorageError, match="fsync a directory"):
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO named (sha256) VALUES (?)", (digest,))
    async with database.reader() as tx:
        assert await tx.fetchall("SELECT sha256 FROM named") == []

    # Still due: once it can be fsynced, the next COMMIT does it, and the row commits.
    moved.rename(directory)
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO named (sha256) VALUES (?)", (digest,))
    async with database.reader() as tx:
        assert [r[0] for r in await tx.fetchall("SELECT sha256 FROM named")] == [digest]
    # Nothing left due: a COMMIT with the directory gone again succeeds.
    directory.rename(moved)
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO named (sha256) VALUES ('other')")


async def test_without_deferral_a_put_fsyncs_before_it_returns(
    database: Database, tmp_path: Path
) -> None:
    store = FilesystemObjectStore(tmp_path / "objects")
    database.add_before_commit(store.sync_dirs)
    data = b"a put that is durable on return"
    digest = hashlib.sha256(data).hexdigest()
    await store.put(chunks(data))
    # Nothing was left for the COMMIT: moving the directory away does not fail it.
    (store.root / digest[:2] / digest[2:4]).rename(store.root / "moved-away")
    async with database.transaction() as tx:
        await tx.execute("INSERT INTO named (sha256) VALUES (?)", (digest,))
