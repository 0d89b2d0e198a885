"""``lienthong storage migrate --to s3`` on a data directory with several documents, against
the real S3 server: interrupted by --limit, resumed, checked, switched, then served from S3."""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from axis_client import NGHE_AN, VPCP, Axis, document, sha256
from fixtures_s3 import S3Endpoint
from s3_axis import raw_client

import edxml
from server.app.application import build_app
from server.cli import main
from server.cli.storage_cmd import JOURNAL_NAME, set_backend
from server.http.appkeys import VERIFIER
from server.runtime.config import Config, load_config
from server.runtime.objectstore import s3_settings
from server.signatures.verdicts import report_bytes
from storage.objects.migrate import read_journal

# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = pytest.mark.sqlite_only


def _write_config(path: Path, data_dir: Path, s3: S3Endpoint, bucket: str) -> None:
    path.write_text(
        "# axis settings (comments survive the switch)\n"
        "[server]\n"
        "log_json = false\n"
        f"max_body_bytes = {8 * 1024 * 1024}\n\n"
        "[storage]\n"
        f'data_dir = "{data_dir}"\n'
        'backend = "fs"  # switched by migrate\n\n'
        "[s3]\n"
        f'endpoint = "{s3.endpoint}"\n'
        f'bucket = "{bucket}"\n'
        "secure = false\n"
        "retention_years = 1\n",
        encoding="utf-8",
    )


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def axis_config(axis_config: Config, request: pytest.FixtureRequest) -> Config:
    """The filesystem axis with its packages as object files (what the migration moves),
    unless a test asks for them kept in the database (an indirect parameter: the size)."""
    inline = int(getattr(request, "param", 0))
    return replace(axis_config, storage=replace(axis_config.storage, inline_max_bytes=inline))


async def test_migrate_resume_switch_and_serve_from_s3(
    axis: Axis,
    s3_server: S3Endpoint,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.delenv("LIENTHONG_STORAGE_BACKEND", raising=False)
    data_dir = axis.config.storage.data_dir
    receipts = []
    for i in range(5):
        pdf = f"%PDF-1.4 van ban {i} ".encode() * (200 * (i + 1))
        package = document(VPCP, [NGHE_AN], attachments=[(f"{i}.pdf", "application/pdf", pdf)])
        receipts.append(await axis.send_ok(VPCP, package))
    await axis.client.app[VERIFIER].drain()
    objects = (await axis.snapshot())["objects"]
    assert len(objects) == 10  # 5 packages and the verification report of each attachment
    config_path = tmp_path / "lienthong.toml"
    _write_config(config_path, data_dir, s3_server, f"lt-{uuid.uuid4().hex[:12]}")

    # Interrupted after two objects: nothing switched, the journal holds the two.
    assert (
        await _cli("storage", "migrate", "--to", "s3", "--config", str(config_path), "--limit", "2")
        == 3
    )
    out = capsys.readouterr().out
    assert "2 copied" in out and "8 left" in out
    assert len(read_journal(data_dir / JOURNAL_NAME)) == 2
    assert load_config(config_path).storage.backend == "fs"

    # Resumed while the (filesystem) server keeps serving every document.
    migration = asyncio.create_task(
        _cli("storage", "migrate", "--to", "s3", "--config", str(config_path))
    )
    served = 0
    while not migration.done() or served == 0:
        for receipt in receipts:
            resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)
            assert resp.status == 200
            assert sha256(await resp.read()) == receipt["sha256"]
            served += 1
    assert await migration == 0
    out = capsys.readouterr().out
    assert "8 copied" in out and "2 already in" in out and "0 left" in out
    assert f"Switched {config_path}" in out
    switched = load_config(config_path)
    assert switched.storage.backend == "s3"
    assert "# axis settings (comments survive the switch)" in config_path.read_text()

    # Again: nothing to copy, nothing to switch.
    assert await _cli("storage", "migrate", "--to", "s3", "--config", str(config_path)) == 0
    assert "0 copied" in capsys.readouterr().out

    # The server on S3, with the filesystem objects moved away: every byte comes from S3.
    shutil.move(str(data_dir / "objects"), str(tmp_path / "objects-old"))
    app = build_app(switched)
    async with TestClient(TestServer(app)) as client:
        for receipt in receipts:
            resp = await client.get(
                f"/api/v1/documents/{receipt['id']}", headers=axis.auth(NGHE_AN)
            )
            assert resp.status == 200, await resp.text()
            body = await resp.read()
            assert sha256(body) == receipt["sha256"] and len(body) == receipt["size"]
            # the verification reports moved too: read from S3, not verified again
            resp = await client.get(
                f"/api/v1/documents/{receipt['id']}/attachments/0/verification",
                headers=axis.auth(NGHE_AN),
            )
            assert resp.status == 200, await resp.text()
            report = await resp.json()
            rows = await axis.client.app[VERIFIER].history(report["file"]["sha256"])
            assert [sha256(report_bytes(report))] == [r.report_sha256 for r in rows]


async def test_fallback_reads_unmigrated_objects(
    axis: Axis, s3_server: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switched to S3 before moving anything: the filesystem still serves the old documents,
    new ones go to S3."""
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    old = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    env: dict[str, Any] = {
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_STORAGE_BACKEND": "s3",
        "LIENTHONG_S3_ENDPOINT": s3_server.endpoint,
        "LIENTHONG_S3_BUCKET": f"lt-{uuid.uuid4().hex[:12]}",
        "LIENTHONG_S3_SECURE": "0",
        "LIENTHONG_S3_RETENTION_YEARS": "1",
    }
    config = load_config(env=env, data_dir=axis.config.storage.data_dir)
    async with TestClient(TestServer(build_app(config))) as client:
        resp = await client.get(f"/api/v1/documents/{old['id']}", headers=axis.auth(NGHE_AN))
        assert resp.status == 200
        assert sha256(await resp.read()) == old["sha256"]
        before = (await axis.snapshot())["objects"]
        body = edxml.serialize(document(VPCP, [NGHE_AN]))
        resp = await client.post(
            "/api/v1/documents",
            data=body,
            headers=axis.auth(VPCP, **{"Content-Type": "application/xml"}),
        )
        assert resp.status == 201
        assert (await axis.snapshot())["objects"] == before  # the new package went to S3 only


def test_set_backend_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text('[server]\nport = 9000\n# note\n[s3]\nendpoint = "h:1"\n')
    set_backend(path, "s3")
    config = load_config(path, env={})
    assert config.storage.backend == "s3" and config.server.port == 9000
    assert "# note" in path.read_text()
    path.write_text('[storage]\ndata_dir = "x"\n\n[server]\nport = 1\n')
    set_backend(path, "s3")
    assert path.read_text().startswith('[storage]\nbackend = "s3"\ndata_dir')


@pytest.fixture
def s3_keys(s3_server: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """The S3 server, its keys in the environment (as an operator's shell would have them)."""
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.delenv("LIENTHONG_STORAGE_BACKEND", raising=False)
    return s3_server


async def test_migrate_records_versions_and_the_server_reads_them(
    axis: Axis, s3_keys: S3Endpoint, tmp_path: Path
) -> None:
    """Every object moved gets its S3 version id recorded in the database (issue 15): the
    server on S3 then reads that version, even after someone puts other bytes on top."""
    s3_server = s3_keys
    data_dir = axis.config.storage.data_dir
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    bucket = f"lt-{uuid.uuid4().hex[:12]}"
    config_path = tmp_path / "lienthong.toml"
    _write_config(config_path, data_dir, s3_server, bucket)
    assert await _cli("storage", "migrate", "--to", "s3", "--config", str(config_path)) == 0

    switched = load_config(config_path)
    settings = s3_settings(switched)
    client = raw_client(s3_server)
    digest = receipt["sha256"]
    key = f"{settings.prefix}{digest[:2]}/{digest[2:4]}/{digest}"
    conn = sqlite3.connect(switched.db_path)
    try:
        recorded = dict(conn.execute("SELECT sha256, version_id FROM object_versions"))
    finally:
        conn.close()
    moved = {name.rsplit("/", 1)[-1] for name in (await axis.snapshot())["objects"]}
    assert set(recorded) == moved and digest in recorded
    assert recorded[digest] == client.stat_object(bucket, key).version_id

    shutil.move(str(data_dir / "objects"), str(tmp_path / "objects-old"))
    await asyncio.to_thread(client.put_object, bucket, key, io.BytesIO(b"forged"), 6)
    async with TestClient(TestServer(build_app(switched))) as http:
        resp = await http.get(f"/api/v1/documents/{receipt['id']}", headers=axis.auth(NGHE_AN))
        assert resp.status == 200, await resp.text()
        assert sha256(await resp.read()) == digest


@pytest.mark.parametrize("axis_config", [256 * 1024], indirect=True)
async def test_packages_kept_in_the_database_stay_there_and_are_served_on_s3(
    axis: Axis, s3_keys: S3Endpoint, tmp_path: Path
) -> None:
    """Small packages kept in the database on the filesystem (docs/storage.md) are not moved:
    the server on S3 still serves them, from the database."""
    receipt = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    assert (await axis.snapshot())[
        "objects"
    ] == []  # no object file: the package is in the database
    config_path = tmp_path / "lienthong.toml"
    _write_config(config_path, axis.config.storage.data_dir, s3_keys, f"lt-{uuid.uuid4().hex[:12]}")
    assert await _cli("storage", "migrate", "--to", "s3", "--config", str(config_path)) == 0
    switched = load_config(config_path)
    assert switched.storage.backend == "s3"
    shutil.move(str(axis.config.objects_dir), str(tmp_path / "objects-old"))
    async with TestClient(TestServer(build_app(switched))) as http:
        resp = await http.get(f"/api/v1/documents/{receipt['id']}", headers=axis.auth(NGHE_AN))
        assert resp.status == 200, await resp.text()
        body = await resp.read()
        assert sha256(body) == receipt["sha256"] and len(body) == receipt["size"]
