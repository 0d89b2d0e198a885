"""Object Lock protects a version, not a key (issue 15), on the real S3 server (Ceph RGW).

Whoever holds the bucket's write credentials can put other bytes under an object's key (S3
keeps the locked version and makes the new one the latest) or a delete marker over it. The axis
must go on serving exactly the bytes it stored (whole, by range, as an attachment, in the
BagIt package), raise an integrity alarm (ERROR log, metric, audit entry), and answer a clean
problem when no version of its own is left, never a 200 followed by something else.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from axis_client import NGHE_AN, SO_TTTT, VPCP, Axis, document, sha256
from fixtures_s3 import S3Endpoint
from s3_axis import raw_client, s3_config

import edxml
from server.http.metrics import METRICS
from server.runtime.config import Config
from server.runtime.objectstore import open_s3_store, s3_settings
from storage.db import Database

NOTE = "Ghi chú gửi Sở Thông tin và Truyền thông.\n".encode() * 300


@pytest.fixture
def axis_config(
    s3_server: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Config:
    """The API tests' axis on S3 (a fresh bucket), keys from the environment; retention in
    years as the test's parameter (default 1; 0 writes versions that can be deleted)."""
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    years = str(getattr(request, "param", 1))
    return s3_config(s3_server, tmp_path / "data", LIENTHONG_S3_RETENTION_YEARS=years)


def _key(config: Config, digest: str) -> str:
    prefix = s3_settings(config).prefix
    return f"{prefix}{digest[:2]}/{digest[2:4]}/{digest}"


def _put_behind(axis: Axis, s3: S3Endpoint, digest: str, data: bytes) -> str:
    """Put ``data`` under object ``digest``'s key with the bucket's credentials; its version."""
    bucket = s3_settings(axis.config).bucket
    result = raw_client(s3).put_object(
        bucket, _key(axis.config, digest), io.BytesIO(data), len(data)
    )
    return str(result.version_id)


def _forged(package: bytes) -> bytes:
    """The package with its subject changed: same length, other bytes (a plausible forgery)."""
    forged = package.replace(b"Cong van goc", b"Cong van GIA", 1)
    assert len(forged) == len(package) and forged != package
    return forged


def _package(subject: str = "Cong van goc") -> bytes:
    return edxml.serialize(
        document(
            VPCP,
            [NGHE_AN, SO_TTTT],
            subject=subject,
            attachments=[("ghi-chu.txt", "text/plain", NOTE)],
        )
    )


async def _send(axis: Axis, subject: str = "Cong van goc") -> tuple[dict[str, Any], bytes]:
    receipt = await axis.send_ok(VPCP, _package(subject))
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)
    assert resp.status == 200
    stored = await resp.read()
    assert sha256(stored) == receipt["sha256"]
    return receipt, stored


def _alarms(axis: Axis) -> list[dict[str, Any]]:
    """The audit entries of integrity alarms, details decoded."""
    conn = sqlite3.connect(axis.config.db_path)
    try:
        rows = conn.execute(
            "SELECT actor, objects, details FROM audit_log "
            "WHERE action = 'object.integrity-alarm' ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [{"actor": a, "objects": json.loads(o), **json.loads(d)} for a, o, d in rows]


def _alarm_count(axis: Axis, kind: str) -> float:
    metrics = axis.client.app[METRICS]
    value = metrics.registry.get_sample_value(
        "lienthong_object_integrity_alarms_total", {"kind": kind}
    )
    return value or 0.0


async def _archive_package(axis: Axis, document_id: str) -> bytes:
    resp = await axis.get(f"/api/v1/archive/{document_id}/package", SO_TTTT)
    assert resp.status == 200, await resp.text()
    body = await resp.read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        [name] = [n for n in zf.namelist() if n.endswith("data/package.edxml")]
        return zf.read(name)


async def _serves_original(axis: Axis, receipt: dict[str, Any], stored: bytes) -> None:
    """Every way of reading the document gives the stored bytes (or a part of them)."""
    doc = f"/api/v1/documents/{receipt['id']}"
    resp = await axis.get(doc, NGHE_AN)
    assert resp.status == 200
    assert await resp.read() == stored
    resp = await axis.get(doc, NGHE_AN, Range="bytes=10-99")
    assert resp.status == 206
    assert await resp.read() == stored[10:100]
    resp = await axis.get(doc, NGHE_AN, Range=f"bytes=-{len(stored) // 3}")
    assert resp.status == 206
    assert await resp.read() == stored[-(len(stored) // 3) :]
    resp = await axis.get(f"{doc}/attachments/0", SO_TTTT)
    assert resp.status == 200, await resp.text()
    assert await resp.read() == NOTE
    assert await _archive_package(axis, receipt["id"]) == stored


async def test_forged_overwrite_is_never_served(
    axis: Axis, s3_server: S3Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    receipt, stored = await _send(axis)
    forged = _forged(stored)
    forged_version = await asyncio.to_thread(
        _put_behind, axis, s3_server, receipt["sha256"], forged
    )

    # The latest version of the key is the forgery; the axis reads its own, whole and ranges.
    with caplog.at_level(logging.ERROR, logger="lienthong.storage"):
        await _serves_original(axis, receipt, stored)
        await _serves_original(axis, receipt, stored)  # and again (one alarm, not one a read)

    [alarm] = _alarms(axis)
    assert alarm["actor"] == "axis" and alarm["objects"] == [receipt["sha256"]]
    assert alarm["kind"] == "overwritten" and alarm["latest"] == forged_version
    assert alarm["key"] == _key(axis.config, receipt["sha256"]) and alarm["ours"]
    assert alarm["ours"] != forged_version
    assert _alarm_count(axis, "overwritten") == 1
    [logged] = [r for r in caplog.records if "integrity alarm" in r.getMessage()]
    assert logged.levelno == logging.ERROR and receipt["sha256"] in logged.getMessage()


async def test_bytes_of_another_object_put_over_a_key(axis: Axis, s3_server: S3Endpoint) -> None:
    """A forged version made of bytes the axis itself stored under a different key."""
    first, stored_first = await _send(axis, "Công văn thứ nhất")
    second, stored_second = await _send(axis, "Công văn thứ hai")
    assert first["sha256"] != second["sha256"]
    await asyncio.to_thread(_put_behind, axis, s3_server, first["sha256"], stored_second)
    await _serves_original(axis, first, stored_first)
    await _serves_original(axis, second, stored_second)
    [alarm] = _alarms(axis)
    assert alarm["objects"] == [first["sha256"]] and alarm["kind"] == "overwritten"


async def test_version_planted_before_the_store_writes_the_bytes(
    s3_server: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other bytes put under a key before the axis ever stores the bytes it names: the store
    writes and records its own version, never takes the planted one for it; ranges, whole
    reads and the retention all go to that version."""
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    config = s3_config(s3_server, tmp_path / "data")
    config.spool_dir.mkdir(parents=True)
    database = await Database.open(config.db_path)
    store = open_s3_store(config, database=database)
    try:
        await store.ensure_bucket()
        data = _package()
        digest = sha256(data)
        settings = store.settings
        planted = await asyncio.to_thread(
            lambda: raw_client(s3_server).put_object(
                settings.bucket, _key(config, digest), io.BytesIO(b"planted" * 9), 63
            )
        )
        ref = await store.put(_chunks(data))
        assert (ref.sha256, ref.size) == (digest, len(data))
        assert ref.version_id not in (None, planted.version_id)
        assert await store.stat(digest) == ref
        assert b"".join([c async for c in store.open(digest)]) == data
        assert b"".join([c async for c in store.open(digest, 7, 70)]) == data[7:70]
        assert await store.put(_chunks(data)) == ref  # recorded: nothing new is stored
        async with database.reader() as tx:
            rows = await tx.fetchall("SELECT sha256, version_id, size FROM object_versions")
        assert [tuple(r) for r in rows] == [(digest, ref.version_id, len(data))]
        mode, _ = await store.retention(digest) or ("", None)
        assert mode == "COMPLIANCE"  # ours is locked (the planted one never was)
    finally:
        await store.close()
        await database.close()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_delete_marker_hides_nothing(axis: Axis, s3_server: S3Endpoint) -> None:
    receipt, stored = await _send(axis)
    settings = s3_settings(axis.config)
    client = raw_client(s3_server)
    key = _key(axis.config, receipt["sha256"])
    await asyncio.to_thread(client.remove_object, settings.bucket, key)  # a delete marker
    await _serves_original(axis, receipt, stored)
    resp = await axis.client.head(f"/api/v1/documents/{receipt['id']}", headers=axis.auth(NGHE_AN))
    assert resp.status == 200 and resp.content_length == len(stored)
    [alarm] = _alarms(axis)
    assert alarm["kind"] == "delete-marker" and alarm["latest"] is None
    assert _alarm_count(axis, "delete-marker") == 1


async def test_objects_stored_before_versions_were_recorded_are_adopted(
    axis: Axis, s3_server: S3Endpoint
) -> None:
    """An object stored by an earlier release has no recorded version: its own version is
    found (hashed whole, once) and recorded, even under a forgery and a delete marker."""
    receipt, stored = await _send(axis)
    conn = sqlite3.connect(axis.config.db_path)
    with conn:
        [(ours,)] = conn.execute(
            "SELECT version_id FROM object_versions WHERE sha256 = ?", (receipt["sha256"],)
        ).fetchall()
        conn.execute("DELETE FROM object_versions")  # as before migration 0010
    conn.close()
    forged_version = await asyncio.to_thread(
        _put_behind, axis, s3_server, receipt["sha256"], _forged(stored)
    )
    settings = s3_settings(axis.config)
    key = _key(axis.config, receipt["sha256"])
    await asyncio.to_thread(raw_client(s3_server).remove_object, settings.bucket, key)
    await _serves_original(axis, receipt, stored)
    conn = sqlite3.connect(axis.config.db_path)
    try:
        rows = conn.execute(
            "SELECT version_id FROM object_versions WHERE sha256 = ?", (receipt["sha256"],)
        ).fetchall()
    finally:
        conn.close()
    assert rows == [(ours,)] and ours != forged_version
    assert [a["kind"] for a in _alarms(axis)] == ["delete-marker"]


def _versions(axis: Axis, digest: str) -> list[str]:
    conn = sqlite3.connect(axis.config.db_path)
    try:
        rows = conn.execute(
            "SELECT version_id FROM object_versions WHERE sha256 = ? ORDER BY rowid", (digest,)
        ).fetchall()
    finally:
        conn.close()
    return [str(r[0]) for r in rows]


async def _refused(axis: Axis, document_id: str) -> None:
    """Whole reads, ranges, the attachment and the BagIt package: a clean 503 problem (the
    test client would fail on a 200 followed by a second response or a short body)."""
    doc = f"/api/v1/documents/{document_id}"
    for path, organ, headers in (
        (doc, NGHE_AN, {}),
        (doc, NGHE_AN, {"Range": "bytes=0-9"}),
        (f"{doc}/attachments/0", SO_TTTT, {}),
        (f"/api/v1/archive/{document_id}/package", SO_TTTT, {}),
    ):
        resp = await axis.get(path, organ, **headers)
        assert resp.status == 503, (path, headers, resp.status)
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["type"] == "/problems/object-unavailable"


@pytest.mark.parametrize("axis_config", [0], indirect=True)  # versions without retention
async def test_missing_or_forged_only_object_is_a_clean_problem(
    axis: Axis, s3_server: S3Endpoint
) -> None:
    """Our version deleted outright (possible only without retention), or the key holding
    nothing but other bytes: 503 problem+json before any status line, and an alarm."""
    settings = s3_settings(axis.config)
    client = raw_client(s3_server)
    missing, _ = await _send(axis, "Cong van mot")
    [ours] = _versions(axis, missing["sha256"])
    key = _key(axis.config, missing["sha256"])
    await asyncio.to_thread(client.remove_object, settings.bucket, key, version_id=ours)
    await _refused(axis, missing["id"])

    # An object of an earlier release (no version recorded) whose only version is forged.
    forged, _ = await _send(axis, "Cong van hai")
    [ours] = _versions(axis, forged["sha256"])
    conn = sqlite3.connect(axis.config.db_path)
    with conn:
        conn.execute("DELETE FROM object_versions WHERE sha256 = ?", (forged["sha256"],))
    conn.close()
    key = _key(axis.config, forged["sha256"])
    await asyncio.to_thread(client.remove_object, settings.bucket, key, version_id=ours)
    await asyncio.to_thread(_put_behind, axis, s3_server, forged["sha256"], b"forged " * 90)
    await _refused(axis, forged["id"])
    assert _versions(axis, forged["sha256"]) == []  # a forged version is never adopted

    kinds = [(a["objects"], a["kind"]) for a in _alarms(axis)]
    assert kinds == [([missing["sha256"]], "missing"), ([forged["sha256"]], "forged")]
