"""The S3 object store against a real S3 server (Ceph RGW started by the suite)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fixtures_s3 import S3Endpoint, raw_client
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from storage.errors import IntegrityError, NotFound, StorageUnavailable
from storage.objects.s3 import S3ObjectStore, S3Settings, parse_s3_time


def _settings(s3: S3Endpoint, bucket: str, **kw: object) -> S3Settings:
    return S3Settings(
        endpoint=s3.endpoint,
        bucket=bucket,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def store(s3_server: S3Endpoint, tmp_path: Path):
    # Locked buckets can never be emptied: every test gets a bucket of its own.
    s = S3ObjectStore(
        _settings(s3_server, f"lt-{uuid.uuid4().hex[:12]}", retention_years=1, part_size=5 << 20),
        spool_dir=tmp_path,
    )
    await s.ensure_bucket()
    yield s
    await s.close()


async def _chunks(data: bytes, size: int = 1 << 20):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _read_all(store: S3ObjectStore, sha: str, start: int = 0, end: int | None = None):
    return b"".join([chunk async for chunk in store.open(sha, start, end)])


async def test_put_read_dedup_and_ranges(store: S3ObjectStore) -> None:
    data = os.urandom(300_000)
    ref = await store.put(_chunks(data, 65536))
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert await store.exists(ref.sha256)
    assert await store.stat(ref.sha256) == ref
    assert await _read_all(store, ref.sha256) == data
    assert await _read_all(store, ref.sha256, 1000, 2000) == data[1000:2000]
    assert await store.put(_chunks(data)) == ref  # same bytes: same object, nothing new
    assert store.local_path(ref.sha256) is None


async def test_missing_objects(store: S3ObjectStore) -> None:
    absent = hashlib.sha256(b"never stored").hexdigest()
    assert await store.stat(absent) is None
    assert not await store.exists(absent)
    with pytest.raises(NotFound):
        await _read_all(store, absent)
    assert await store.stat("not-a-hash") is None


async def test_multipart_upload_is_locked_despite_rgw_dropping_headers(
    store: S3ObjectStore, s3_server: S3Endpoint, tmp_path: Path
) -> None:
    # 12 MiB with 5 MiB parts: a multipart upload, where RGW drops Object Lock headers and
    # answers an empty ETag (reference quirks 1-2). The store must still lock the object.
    spool = tmp_path / "spool.bin"
    data = os.urandom(12 << 20)
    spool.write_bytes(data)
    ref = await store.put_file(spool)
    assert not spool.exists()
    assert ref.size == len(data)
    mode, until = await store.retention(ref.sha256) or ("", datetime.min)
    assert mode == "COMPLIANCE"
    assert until > datetime.now(UTC) + timedelta(days=360)
    assert hashlib.sha256(await _read_all(store, ref.sha256)).hexdigest() == ref.sha256

    # The store itself refuses to delete or shorten the lock of that version.
    client = raw_client(s3_server)
    key = store._key(ref.sha256)
    version = client.stat_object(store.settings.bucket, key).version_id
    with pytest.raises(S3Error):
        client.remove_object(store.settings.bucket, key, version_id=version)
    with pytest.raises(S3Error):
        client.set_object_retention(
            store.settings.bucket,
            key,
            Retention(COMPLIANCE, datetime.now(UTC) + timedelta(days=2)),
            version_id=version,
        )


async def test_retain_extends_never_shortens(store: S3ObjectStore) -> None:
    ref = await store.put(_chunks(b"ban goc da ky"))
    _, before = await store.retention(ref.sha256) or ("", datetime.min)
    later = before + timedelta(days=400)
    await store.retain(ref.sha256, later)
    _, after = await store.retention(ref.sha256) or ("", datetime.min)
    assert abs((after - later).total_seconds()) < 1
    await store.retain(ref.sha256, before)  # asking for less is a no-op, not an error
    _, still = await store.retention(ref.sha256) or ("", datetime.min)
    assert still == after


async def test_corrupt_object_is_detected_on_read(
    store: S3ObjectStore, s3_server: S3Endpoint
) -> None:
    # Put other bytes under an object's name behind the store's back (a new version): a
    # whole-object read must not pass them off as the original.
    good = b"the original document"
    sha = hashlib.sha256(good).hexdigest()
    client = raw_client(s3_server)
    client.put_object(store.settings.bucket, store._key(sha), io.BytesIO(b"forged"), 6)
    with pytest.raises(IntegrityError):
        await _read_all(store, sha)


async def test_unreachable_store_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket closes
    s3 = S3ObjectStore(
        S3Settings(
            endpoint=f"http://127.0.0.1:{port}",
            bucket="absent",
            access_key="k",
            secret_key="s",
            timeout_seconds=1,
        ),
        spool_dir=tmp_path,
    )
    with pytest.raises(StorageUnavailable):
        await s3.ping()
    with pytest.raises(StorageUnavailable):
        await s3.put(_chunks(b"x"))
    assert list(tmp_path.iterdir()) == []  # the local spool copy is gone too
    await s3.close()


def test_settings_never_show_keys() -> None:
    s = S3Settings(endpoint="http://127.0.0.1:1", bucket="b", access_key="AK", secret_key="SK")
    assert "SK" not in repr(s) and "AK" not in repr(s)
    assert s.host == ("127.0.0.1:1", False)


def test_parse_s3_time_takes_nine_fraction_digits() -> None:
    assert parse_s3_time("2026-11-25T06:22:53.123456789Z") == datetime(
        2026, 11, 25, 6, 22, 53, 123456, tzinfo=UTC
    )
    assert parse_s3_time("2026-11-25T06:22:53Z").tzinfo is not None
