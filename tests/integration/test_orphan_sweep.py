"""The start-up orphan sweep deletes only objects of sends that died half-way (intent records).

Real SQLite and real files: objects another feature stores (no intent record, named by no
document) survive; a pending object whose send never committed is swept with its record; a
pending record whose digest a document names only loses the record; a young record is kept.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document

from server.exchange.delivery import sweep_orphans
from server.http.appkeys import DATABASE, OBJECTS
from storage.db import Database
from storage.ids import utcnow
from storage.objects.fs import FilesystemObjectStore
from storage.repos.pending_objects import PendingObjectRepo

# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = pytest.mark.sqlite_only


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Database, FilesystemObjectStore]]:
    database = await Database.open(tmp_path / "meta.db")
    try:
        yield database, FilesystemObjectStore(tmp_path / "objects")
    finally:
        await database.close()


async def test_object_of_another_feature_survives_the_sweep(
    stores: tuple[Database, FilesystemObjectStore],
) -> None:
    database, objects = stores
    # e.g. the signed PDF of a signing session: stored, named by no document, no intent record.
    ref = await objects.put(one_chunk(b"%PDF-1.7 signed by the officer"))
    assert await sweep_orphans(database, objects, grace=0) == 0
    assert await objects.exists(ref.sha256)


async def test_pending_orphan_is_swept_with_its_record(
    stores: tuple[Database, FilesystemObjectStore],
) -> None:
    database, objects = stores
    data = b"<edXMLEnvelope>a send killed before its row committed</edXMLEnvelope>"
    digest = hashlib.sha256(data).hexdigest()
    async with database.transaction() as tx:
        await PendingObjectRepo(tx).record(digest, utcnow() - timedelta(seconds=10))
    ref = await objects.put(one_chunk(data))
    assert ref.sha256 == digest
    other = await objects.put(one_chunk(b"an attachment version"))

    # Younger than the grace period: an upload that may still be in flight.
    assert await sweep_orphans(database, objects, grace=3600) == 0
    assert await objects.exists(digest)

    assert await sweep_orphans(database, objects, grace=5) == 1
    assert not await objects.exists(digest)
    assert await objects.exists(other.sha256)
    async with database.reader() as tx:
        assert await PendingObjectRepo(tx).get(digest) is None
    # A record whose object was never written (killed before the store) just goes.
    async with database.transaction() as tx:
        await PendingObjectRepo(tx).record("ab" * 32, utcnow() - timedelta(seconds=10))
    assert await sweep_orphans(database, objects, grace=5) == 0
    async with database.reader() as tx:
        assert await PendingObjectRepo(tx).older_than(utcnow()) == []


async def test_send_settles_its_record_and_named_objects_are_never_swept(axis: Axis) -> None:
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    db_path = axis.config.db_path
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM pending_objects").fetchone() == (0,)
        (sha,) = conn.execute(
            "SELECT sha256 FROM documents WHERE id = ?", (receipt["id"],)
        ).fetchone()
    app = axis.client.app
    assert app is not None
    database, objects = app[DATABASE], app[OBJECTS]
    assert objects.sweepable
    # A resend of the same bytes renews a record, then dies before (or loses) its insert: the
    # sweep sees the record, finds the digest named by a document, keeps the object.
    async with database.transaction() as tx:
        await PendingObjectRepo(tx).record(sha, utcnow() - timedelta(seconds=10))
    assert await sweep_orphans(database, objects, grace=5) == 0
    assert await objects.exists(sha)
    async with database.reader() as tx:
        assert await PendingObjectRepo(tx).get(sha) is None
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)
    assert resp.status == 200
