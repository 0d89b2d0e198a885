"""The /api/v1 round trip with the object store on a real S3 server (Ceph RGW)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from axis_client import NGHE_AN, SO_TTTT, VPCP, Axis, document, sha256
from fixtures_s3 import S3Endpoint
from s3_axis import raw_client, s3_config

import edxml
from server.app.application import build_app
from server.runtime.config import Config, ConfigError, load_config
from server.runtime.objectstore import open_object_store, s3_settings
from storage.errors import StorageUnavailable
from storage.objects.s3 import parse_s3_time


@pytest.fixture
def axis_config(s3_server: S3Endpoint, tmp_path: Path) -> Config:
    """The API tests' axis on S3; the keys come from files (the environment is tried too)."""
    (tmp_path / "ak").write_text(s3_server.access_key + "\n")
    (tmp_path / "sk").write_text(s3_server.secret_key + "\n")
    return s3_config(
        s3_server,
        tmp_path / "data",
        LIENTHONG_S3_ACCESS_KEY_FILE=str(tmp_path / "ak"),
        LIENTHONG_S3_SECRET_KEY_FILE=str(tmp_path / "sk"),
    )


async def test_send_fetch_round_trip_on_s3(axis: Axis, s3_server: S3Endpoint) -> None:
    pdf = b"%PDF-1.4 van ban tren S3 " * 1000
    package = document(
        VPCP, [NGHE_AN, SO_TTTT], attachments=[("Văn bản.pdf", "application/pdf", pdf)]
    )
    receipt = await axis.send_ok(VPCP, package)

    [item] = (await axis.inbox(NGHE_AN))["items"]
    assert item["document_id"] == receipt["id"]
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN)
    assert resp.status == 200
    stored = await resp.read()
    assert sha256(stored) == receipt["sha256"]
    parsed = edxml.parse(stored)
    assert isinstance(parsed, edxml.Envelope)
    assert parsed.header == package.header

    # A range read and the decoded attachment come from S3 as well.
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}", NGHE_AN, Range="bytes=10-99")
    assert resp.status == 206
    assert await resp.read() == stored[10:100]
    resp = await axis.get(f"/api/v1/documents/{receipt['id']}/attachments/0", SO_TTTT)
    assert resp.status == 200, await resp.text()
    assert await resp.read() == pdf

    # The bytes are in the bucket, locked (COMPLIANCE), and not on the local disk.
    assert (await axis.snapshot())["objects"] == []
    settings = s3_settings(axis.config, {})
    key = f"{settings.prefix}{receipt['sha256'][:2]}/{receipt['sha256'][2:4]}/{receipt['sha256']}"
    stat = raw_client(s3_server).stat_object(settings.bucket, key)
    assert stat.size == receipt["size"]
    meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
    assert meta["x-amz-object-lock-mode"] == "COMPLIANCE"
    until = parse_s3_time(str(meta["x-amz-object-lock-retain-until-date"]))
    assert until > datetime.now(UTC) + timedelta(days=360)  # retention_years = 1

    # The same bytes again: an idempotent answer, nothing new stored.
    again = await axis.send(VPCP, package)
    assert again.status == 200
    assert (await again.json())["duplicate"] is True


async def test_healthz_checks_the_bucket(axis: Axis) -> None:
    resp = await axis.client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["checks"]["objects"] == "ok"


def test_s3_backend_needs_endpoint_and_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"s3\.endpoint"):
        load_config(env={"LIENTHONG_STORAGE_BACKEND": "s3"}, data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"storage\.backend"):
        load_config(env={"LIENTHONG_STORAGE_BACKEND": "ftp"}, data_dir=tmp_path)
    config = load_config(
        env={"LIENTHONG_STORAGE_BACKEND": "s3", "LIENTHONG_S3_ENDPOINT": "127.0.0.1:9"},
        data_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match="LIENTHONG_S3_ACCESS_KEY"):
        s3_settings(config, {})
    settings = s3_settings(
        config, {"LIENTHONG_S3_ACCESS_KEY": "AKSECRET1", "LIENTHONG_S3_SECRET_KEY": "SKSECRET2"}
    )
    assert settings.access_key == "AKSECRET1"
    assert "SECRET" not in repr(settings) and "SECRET" not in repr(config)


async def test_unreachable_s3_stops_the_start(tmp_path: Path, unused_tcp_port: int) -> None:
    config = load_config(
        env={
            "LIENTHONG_STORAGE_BACKEND": "s3",
            "LIENTHONG_S3_ENDPOINT": f"http://127.0.0.1:{unused_tcp_port}",
        },
        data_dir=tmp_path,
    )
    env = {"LIENTHONG_S3_ACCESS_KEY": "a", "LIENTHONG_S3_SECRET_KEY": "b"}
    with pytest.raises(StorageUnavailable):
        await open_object_store(config, env)
    assert build_app(config) is not None
