"""The filesystem object store, on real files (and a real, tiny tmpfs for the full-disk case)."""

import asyncio
import hashlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.errors import NotFound, StorageFull
from storage.objects import FilesystemObjectStore, ObjectRef
from storage.objects.base import CHUNK_SIZE


async def chunks_of(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def payload(n: int, seed: int = 0) -> bytes:
    # Deterministic, non-repeating bytes (a repeated pattern could hide offset bugs).
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def object_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")


def tmp_files(store: FilesystemObjectStore) -> list[Path]:
    return list(store.tmp_dir.iterdir())


async def read_all(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


@pytest.fixture
def store(tmp_path: Path) -> FilesystemObjectStore:
    return FilesystemObjectStore(tmp_path / "objects")


async def test_put_stores_content_addressed(store: FilesystemObjectStore) -> None:
    data = payload(3 * CHUNK_SIZE + 12345)
    ref = await store.put(chunks_of(data))
    digest = hashlib.sha256(data).hexdigest()
    assert ref == ObjectRef(digest, len(data))
    path = store.root / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert store.local_path(digest) == path
    assert object_files(store.root) == [path]
    assert tmp_files(store) == []


async def test_same_bytes_twice_store_nothing_new(store: FilesystemObjectStore) -> None:
    data = payload(200_000)
    ref = await store.put(chunks_of(data, 1000))
    path = store.local_path(ref.sha256)
    assert path is not None
    before = path.stat()
    again = await store.put(chunks_of(data, 7777))  # other chunking, same bytes
    assert again == ref
    after = path.stat()
    # The same file (inode), not a second copy; its mtime may be freshened on purpose (the
    # orphan sweep spares recently referenced objects).
    assert after.st_ino == before.st_ino
    assert path.read_bytes() == data
    assert len(object_files(store.root)) == 1
    assert tmp_files(store) == []


async def test_concurrent_puts_of_same_and_different_bytes(store: FilesystemObjectStore) -> None:
    same = payload(300_000, seed=1)
    refs = await asyncio.gather(
        *(store.put(chunks_of(same)) for _ in range(10)),
        *(store.put(chunks_of(payload(50_000, seed=i))) for i in range(2, 12)),
    )
    assert len({r.sha256 for r in refs[:10]}) == 1
    assert len(object_files(store.root)) == 11
    assert tmp_files(store) == []


async def test_empty_object(store: FilesystemObjectStore) -> None:
    ref = await store.put(chunks_of(b""))
    assert ref == ObjectRef(hashlib.sha256(b"").hexdigest(), 0)
    assert await read_all(store.open(ref.sha256)) == b""


async def test_open_ranges(store: FilesystemObjectStore) -> None:
    data = payload(2 * CHUNK_SIZE + 100)
    ref = await store.put(chunks_of(data))
    chunks = [c async for c in store.open(ref.sha256)]
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= CHUNK_SIZE and len(chunks) == 3
    assert await read_all(store.open(ref.sha256, 5)) == data[5:]
    assert await read_all(store.open(ref.sha256, 5, 10)) == data[5:10]
    start, end = CHUNK_SIZE - 3, CHUNK_SIZE + 4  # across a chunk boundary
    assert await read_all(store.open(ref.sha256, start, end)) == data[start:end]
    assert await read_all(store.open(ref.sha256, 7, 7)) == b""
    assert await read_all(store.open(ref.sha256, len(data) - 1, 10**12)) == data[-1:]
    assert await read_all(store.open(ref.sha256, len(data) + 5)) == b""
    with pytest.raises(ValueError):
        store.open(ref.sha256, -1)
    with pytest.raises(ValueError):
        store.open(ref.sha256, 10, 5)


async def test_open_absent_or_bad_name_raises_not_found(store: FilesystemObjectStore) -> None:
    with pytest.raises(NotFound):
        store.open("0" * 64)
    with pytest.raises(NotFound):
        store.open("../../etc/passwd")
    with pytest.raises(NotFound):
        store.open("A" * 64)  # names are lowercase hex only


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_open_closes_file_when_reader_stops_early(store: FilesystemObjectStore) -> None:
    ref = await store.put(chunks_of(payload(3 * CHUNK_SIZE)))
    baseline = _open_fds()
    it = store.open(ref.sha256)
    first = await it.__anext__()
    assert len(first) == CHUNK_SIZE
    assert _open_fds() == baseline + 1
    await it.aclose()  # type: ignore[attr-defined]
    assert _open_fds() == baseline


async def test_stat_exists_local_path(store: FilesystemObjectStore) -> None:
    ref = await store.put(chunks_of(b"hello"))
    assert await store.stat(ref.sha256) == ref
    assert await store.exists(ref.sha256)
    missing = hashlib.sha256(b"other").hexdigest()
    assert await store.stat(missing) is None
    assert not await store.exists(missing)
    assert store.local_path(missing) is None
    assert await store.stat("not-a-digest") is None
    await store.ping()


async def test_put_file_moves_spool_in(store: FilesystemObjectStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    data = payload(1_500_000)
    f = spool / "upload-1"
    f.write_bytes(data)
    inode = f.stat().st_ino
    ref = await store.put_file(f)
    assert ref == ObjectRef(hashlib.sha256(data).hexdigest(), len(data))
    assert not f.exists()
    path = store.local_path(ref.sha256)
    assert path is not None and path.read_bytes() == data
    assert path.stat().st_ino == inode  # renamed, not copied

    # The same bytes again: nothing new stored, the spool file is consumed anyway.
    g = spool / "upload-2"
    g.write_bytes(data)
    assert await store.put_file(g) == ref
    assert not g.exists()
    assert path.stat().st_ino == inode
    assert len(object_files(store.root)) == 1

    # A digest computed by the caller while spooling skips re-hashing.
    h = spool / "upload-3"
    h.write_bytes(b"abc")
    digest = hashlib.sha256(b"abc").hexdigest()
    assert await store.put_file(h, sha256=digest) == ObjectRef(digest, 3)

    with pytest.raises(NotFound):
        await store.put_file(spool / "missing")


def _mount_tmpfs(target: Path, size: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
            check=True,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs to test a full disk (needs root): {exc}")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs), unmounted afterwards."""
    target = tmp_path / "small"
    _mount_tmpfs(target, "1m")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False, timeout=10)


async def test_full_disk_raises_storage_full_and_leaves_nothing(small_fs: Path) -> None:
    store = FilesystemObjectStore(small_fs / "objects")
    with pytest.raises(StorageFull):
        await store.put(chunks_of(payload(3 * CHUNK_SIZE)))
    assert tmp_files(store) == []
    assert object_files(store.root) == []
    # Space is back: a small object still goes in.
    ref = await store.put(chunks_of(b"small"))
    assert await read_all(store.open(ref.sha256)) == b"small"


async def test_put_file_from_another_filesystem_copies(
    store: FilesystemObjectStore, small_fs: Path
) -> None:
    spool_file = small_fs / "upload"
    data = payload(300_000)
    spool_file.write_bytes(data)
    ref = await store.put_file(spool_file)
    assert not spool_file.exists()
    assert await read_all(store.open(ref.sha256)) == data
    assert tmp_files(store) == []


async def test_failing_stream_leaves_no_partial_file(store: FilesystemObjectStore) -> None:
    class ClientGone(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield payload(CHUNK_SIZE + 10)
        yield b"more"
        raise ClientGone

    with pytest.raises(ClientGone):
        await store.put(broken())
    assert tmp_files(store) == []
    assert object_files(store.root) == []


async def test_cancelled_put_leaves_no_partial_file(store: FilesystemObjectStore) -> None:
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield payload(2 * CHUNK_SIZE)
        gate.set()
        await asyncio.sleep(30)
        yield b"never"

    task = asyncio.create_task(store.put(slow()))
    await gate.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # a write still running in a thread finishes, then cleans up
        if not tmp_files(store):
            break
        await asyncio.sleep(0.01)
    assert tmp_files(store) == []
    assert object_files(store.root) == []


async def test_stale_temp_files_removed_on_start(tmp_path: Path) -> None:
    store = FilesystemObjectStore(tmp_path / "objects")
    old = store.tmp_dir / "put-old.tmp"
    fresh = store.tmp_dir / "put-fresh.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1_000_000, 1_000_000))
    FilesystemObjectStore(tmp_path / "objects")
    assert not old.exists()
    assert fresh.exists()  # may belong to another process writing right now
