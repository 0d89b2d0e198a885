"""A real S3 server for the tests: a throwaway Ceph RADOS Gateway on 127.0.0.1.

Started once per test session by tests/services/s3/start-rgw.sh (adapted from the proven
reference scripts; Debian packages ceph-mon ceph-osd radosgw ceph-common, installed by
`make test`), stopped after. When LIENTHONG_TEST_S3_ENDPOINT (with _ACCESS_KEY and _SECRET_KEY)
is already set, that endpoint is used instead (MinIO, for example) and nothing is started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures_pki import free_port, start_service
from minio import Minio

SCRIPTS = Path(__file__).resolve().parent / "services" / "s3"
ENV_PREFIX = "LIENTHONG_TEST_S3_"


@dataclass(frozen=True)
class S3Endpoint:
    """How to reach the test S3 server, and (for a gateway we started) its directory."""

    endpoint: str
    access_key: str
    secret_key: str
    directory: Path | None = None


def start_gateway(directory: Path) -> S3Endpoint:
    """Start a gateway in `directory` (empty); stop it with stop_gateway."""
    port = free_port()
    out = start_service(
        [str(SCRIPTS / "start-rgw.sh"), str(directory), str(port)],
        [str(SCRIPTS / "stop-rgw.sh"), str(directory)],
    )
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    return S3Endpoint(
        env[ENV_PREFIX + "ENDPOINT"],
        env[ENV_PREFIX + "ACCESS_KEY"],
        env[ENV_PREFIX + "SECRET_KEY"],
        directory,
    )


def stop_gateway(endpoint: S3Endpoint) -> None:
    """Stop a gateway started by start_gateway (and remove its directory)."""
    if endpoint.directory is not None:
        subprocess.run(
            [str(SCRIPTS / "stop-rgw.sh"), str(endpoint.directory)],
            capture_output=True,
            check=True,
        )


def s3_endpoint_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """Body of the session fixture `s3_server` (registered in tests/conftest.py)."""
    given = os.environ.get(ENV_PREFIX + "ENDPOINT")
    if given:
        yield S3Endpoint(
            given,
            os.environ.get(ENV_PREFIX + "ACCESS_KEY", ""),
            os.environ.get(ENV_PREFIX + "SECRET_KEY", ""),
        )
        return
    if shutil.which("radosgw") is None or shutil.which("ceph-mon") is None:
        pytest.skip(
            "S3 tests need Ceph's RADOS Gateway (apt-get install ceph-mon ceph-osd radosgw "
            "ceph-common; `make test` does it) or LIENTHONG_TEST_S3_ENDPOINT"
        )
    # Admin sockets need a short path (quirk 12): use a short temp dir, not pytest's deep one.
    directory = Path(tmp_path_factory.mktemp("rgw", numbered=True))
    endpoint = start_gateway(directory)
    try:
        yield endpoint
    finally:
        stop_gateway(endpoint)


def raw_client(s3: S3Endpoint) -> Minio:
    """A plain minio client on the test S3 server (to look behind the store's back)."""
    return Minio(
        s3.endpoint.removeprefix("http://"),
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=False,
        region="us-east-1",
    )
