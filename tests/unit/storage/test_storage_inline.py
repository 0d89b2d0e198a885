"""Small objects kept in the database (storage/objects/inline.py), on real SQLite and real files.

The store hides where the bytes live: reads, ranges and stat answer the same for an object kept
in the database as for one on the filesystem; an object written with its row commits or rolls
back with it; the orphan sweep deletes a row of an abandoned intake.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from server.exchange.delivery import sweep_orphans
from server.runtime.staging import stage_package
from storage.db import Database
from storage.errors import IntegrityError, NotFound, StorageError
from storage.ids import utcnow
from storage.objects.fs import FilesystemObjectStore
from storage.objects.inline import InlineObjectStore
from storage.repos.pending_objects import PendingObjectRepo

LIMIT = 4096


async def one(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), 1000):
        yield data[at : at + 1000]


async def read_all(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Database, InlineObjectStore]]:
    database = await Database.open(tmp_path / "meta.db")
    try:
        yield (
            database,
            InlineObjectStore(FilesystemObjectStore(tmp_path / "objects"), database, LIMIT),
        )
    finally:
        await database.close()


def files(store: InlineObjectStore) -> list[Path]:
    backing = store.backing
    assert isinstance(backing, FilesystemObjectStore)
    return [p for p in backing.root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


async def test_reads_do_not_depend_on_where_the_bytes_live(
    stores: tuple[Database, InlineObjectStore],
) -> None:
    database, store = stores
    small, large = bytes(range(256)) * 16, bytes(range(256)) * 17  # 4096 and 4352 bytes
    async with database.transaction() as tx:
        small_ref = await store.put_in(tx, small, sha256=digest(small))
    large_ref = await store.put(one(large))
    assert (small_ref.sha256, small_ref.size) == (digest(small), len(small))
    assert (large_ref.sha256, large_ref.size) == (digest(large), len(large))
    assert [p.name for p in files(store)] == [digest(large)]
    assert store.local_path(small_ref.sha256) is None
    assert store.local_path(large_ref.sha256) is not None
    for ref, data in ((small_ref, small), (large_ref, large)):
        assert await store.stat(ref.sha256) == ref
        assert await store.exists(ref.sha256)
        assert await store.require(ref.sha256) == ref
        assert await read_all(store.open(ref.sha256)) == data
        assert await read_all(store.open(ref.sha256, 10, 20)) == data[10:20]
        assert await read_all(store.open(ref.sha256, 4000)) == data[4000:]
        assert await read_all(store.open(ref.sha256, 5, 10**9)) == data[5:]
        assert await read_all(store.open(ref.sha256, 10**6)) == b""
    # The same bytes again write nothing new.
    async with database.transaction() as tx:
        assert await store.put_in(tx, small, sha256=digest(small)) == small_ref
    async with database.reader() as tx:
        assert [tuple(r) for r in await tx.fetchall("SELECT count(*) FROM inline_objects")] == [
            (1,)
        ]


async def test_put_and_put_file_go_behind_whatever_the_size(
    stores: tuple[Database, InlineObjectStore], tmp_path: Path
) -> None:
    database, store = stores
    spool = tmp_path / "spool"
    spool.write_bytes(b"a small signed PDF")
    # Inside a transaction too: put and put_file never open one of their own.
    async with database.transaction():
        ref = await store.put_file(spool)
        other = await store.put(one(b"a small report"))
    assert not spool.exists()
    assert sorted(p.name for p in files(store)) == sorted([ref.sha256, other.sha256])
    assert await read_all(store.open(ref.sha256)) == b"a small signed PDF"
    with pytest.raises(NotFound):
        await store.put_file(tmp_path / "absent")


async def test_put_in_commits_and_rolls_back_with_its_transaction(
    stores: tuple[Database, InlineObjectStore],
) -> None:
    database, store = stores
    kept, dropped = b"kept with its row", b"rolled back with its row"

    async with database.transaction() as tx:
        ref = await store.put_in(tx, kept, sha256=digest(kept))
    assert await read_all(store.open(ref.sha256)) == kept

    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await store.put_in(tx, dropped, sha256=digest(dropped))
            raise RuntimeError("the row insert failed")
    assert await store.stat(digest(dropped)) is None
    with pytest.raises(NotFound):
        await read_all(store.open(digest(dropped)))

    async with database.transaction() as tx:
        with pytest.raises(ValueError, match="inline_max_bytes"):
            await store.put_in(tx, b"x" * (LIMIT + 1), sha256=digest(b"x" * (LIMIT + 1)))


async def test_whole_read_of_changed_bytes_is_an_integrity_error(
    stores: tuple[Database, InlineObjectStore],
) -> None:
    database, store = stores
    data = b"the bytes the name promises"
    async with database.transaction() as tx:
        ref = await store.put_in(tx, data, sha256=digest(data))
    async with database.transaction() as tx:
        await tx.execute(
            "UPDATE inline_objects SET data = ? WHERE sha256 = ?", (b"other", ref.sha256)
        )
    with pytest.raises(IntegrityError):
        await read_all(store.open(ref.sha256))


async def test_stage_package_writes_small_ones_with_the_row_only(
    stores: tuple[Database, InlineObjectStore], tmp_path: Path
) -> None:
    database, store = stores
    small, large = b"s" * 100, b"L" * (LIMIT + 100)
    staged = {}
    for name, data in (("small", small), ("large", large)):
        spool = tmp_path / name
        spool.write_bytes(data)
        staged[name] = await stage_package(database, store, spool, digest(data))
    # The small one: read, nothing written, no intent record; the large one: stored now,
    # behind its intent record.
    assert staged["small"].data == small and await store.stat(digest(small)) is None
    assert staged["large"].data is None and await store.stat(digest(large)) is not None
    async with database.reader() as tx:
        assert await PendingObjectRepo(tx).get(digest(small)) is None
        assert await PendingObjectRepo(tx).get(digest(large)) is not None
    async with database.transaction() as tx:
        await staged["small"].save(tx)
        await staged["large"].save(tx)
    assert await read_all(store.open(digest(small))) == small
    # A store that keeps nothing in the database refuses put_in.
    async with database.transaction() as tx:
        with pytest.raises(StorageError):
            await store.backing.put_in(tx, small, sha256=digest(small))


async def test_orphan_sweep_deletes_an_abandoned_row(
    stores: tuple[Database, InlineObjectStore],
) -> None:
    database, store = stores
    orphan, other = b"kept in the database, its row never named", b"an object without a record"
    async with database.transaction() as tx:
        await PendingObjectRepo(tx).record(digest(orphan), utcnow() - timedelta(seconds=10))
        await store.put_in(tx, orphan, sha256=digest(orphan))
        await store.put_in(tx, other, sha256=digest(other))
    assert await sweep_orphans(database, store, grace=5) == 1
    assert await store.stat(digest(orphan)) is None
    assert await store.stat(digest(other)) is not None


async def test_with_no_inline_size_new_packages_go_behind_old_rows_stay_readable(
    stores: tuple[Database, InlineObjectStore], tmp_path: Path
) -> None:
    # The axis after `storage migrate --to s3`: nothing new is kept in the database, what was
    # kept there before is still served.
    database, before = stores
    old = b"a package kept in the database while on the filesystem"
    async with database.transaction() as tx:
        await before.put_in(tx, old, sha256=digest(old))
    after = InlineObjectStore(before.backing, database, 0)
    assert after.inline_max_bytes == 0
    spool = tmp_path / "spool"
    spool.write_bytes(b"a new small package")
    staged = await stage_package(database, after, spool, digest(b"a new small package"))
    assert staged.data is None
    assert after.local_path(staged.ref.sha256) is not None
    assert await read_all(after.open(digest(old))) == old
