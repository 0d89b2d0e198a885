"""Verification reports on a real S3 server (Ceph RGW): each report is an object in the bucket
under COMPLIANCE Object Lock, like the signed original it is about; a re-verification adds an
object and a row and leaves the first object (and its version) untouched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document, sha256
from fixtures_s3 import S3Endpoint
from s3_axis import raw_client, s3_config

from server.http.appkeys import VERIFIER
from server.runtime.config import Config
from server.runtime.objectstore import s3_settings
from server.signatures.verdicts import report_bytes
from storage.objects.s3 import parse_s3_time

# Corpus PDFs name Internet hosts in their certificates: no fetching (127.0.0.1 only).
pytestmark = pytest.mark.usefixtures("offline_verification")
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "pdf" / "esig-dss"
ORIGINAL = (CORPUS / "pdf-signed-original.pdf").read_bytes()


@pytest.fixture
def axis_config(s3_server: S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The API tests' axis on S3 (a fresh bucket), keys from the environment."""
    monkeypatch.setenv("LIENTHONG_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("LIENTHONG_S3_SECRET_KEY", s3_server.secret_key)
    return s3_config(s3_server, tmp_path / "data")


def _stat(axis: Axis, s3: S3Endpoint, digest: str) -> Any:
    settings = s3_settings(axis.config)
    key = f"{settings.prefix}{digest[:2]}/{digest[2:4]}/{digest}"
    return raw_client(s3).stat_object(settings.bucket, key)


def _locked_until(stat: Any) -> datetime:
    meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
    assert meta["x-amz-object-lock-mode"] == "COMPLIANCE"
    return parse_s3_time(str(meta["x-amz-object-lock-retain-until-date"]))


async def test_reports_are_locked_objects_in_the_bucket(axis: Axis, s3_server: S3Endpoint) -> None:
    verifier = axis.client.app[VERIFIER]
    receipt = await axis.send_ok(
        VPCP,
        document(VPCP, [NGHE_AN], attachments=[("Quyết định.pdf", "application/pdf", ORIGINAL)]),
    )
    await verifier.drain()
    [first] = await verifier.history(sha256(ORIGINAL))

    stat = await asyncio.to_thread(_stat, axis, s3_server, first.report_sha256)
    assert stat.size == first.report_size
    assert _locked_until(stat) > datetime.now(UTC) + timedelta(days=360)  # retention_years = 1
    assert (await axis.snapshot())["objects"] == []  # nothing on the local disk
    url = f"/api/v1/documents/{receipt['id']}/attachments/0/verification"
    at_arrival = await (await axis.get(url, NGHE_AN)).json()
    assert report_bytes(at_arrival) and sha256(report_bytes(at_arrival)) == first.report_sha256

    # A re-verification: a second locked object and row; the first object is unchanged.
    verifier.refresh_min_interval = 0
    await asyncio.sleep(1.05)  # verified_at has one-second resolution
    resp = await axis.get(f"{url}?refresh=1", NGHE_AN)
    assert resp.status == 200
    again = await resp.json()
    first_row, second = await verifier.history(sha256(ORIGINAL))
    assert first_row == first and second.report_sha256 == sha256(report_bytes(again))
    later = await asyncio.to_thread(_stat, axis, s3_server, second.report_sha256)
    _locked_until(later)
    still = await asyncio.to_thread(_stat, axis, s3_server, first.report_sha256)
    assert (still.etag, still.version_id, still.last_modified) == (
        stat.etag,
        stat.version_id,
        stat.last_modified,
    )
    assert await verifier.stored(sha256(ORIGINAL)) == again
    record = await (await axis.get(f"/api/v1/archive/{receipt['id']}", NGHE_AN)).json()
    [entry] = record["verification"]
    assert entry["report"] == at_arrival and entry["later"] == [again]
