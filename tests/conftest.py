"""Fixtures shared by the whole suite (services started once per test session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixtures_s3 import S3Endpoint, s3_endpoint_fixture


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A real S3 endpoint: a throwaway Ceph RGW on 127.0.0.1, or LIENTHONG_TEST_S3_ENDPOINT."""
    yield from s3_endpoint_fixture(tmp_path_factory)
