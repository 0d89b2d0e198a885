"""Helpers of the S3 integration tests: an axis config on a fresh bucket of a real S3 server."""

from __future__ import annotations

import uuid
from pathlib import Path

from fixtures_s3 import S3Endpoint, raw_client

from server.runtime.config import Config, load_config

__all__ = ["raw_client", "s3_config"]


def s3_config(s3: S3Endpoint, data_dir: Path, *, bucket: str | None = None, **env: str) -> Config:
    """Defaults, backend S3 on a new bucket (locked buckets can never be emptied)."""
    values = {
        "LIENTHONG_SERVER_MAX_BODY_BYTES": str(8 * 1024 * 1024),
        "LIENTHONG_SERVER_LOG_JSON": "0",
        "LIENTHONG_STORAGE_BACKEND": "s3",
        "LIENTHONG_S3_ENDPOINT": s3.endpoint,
        "LIENTHONG_S3_BUCKET": bucket or f"lt-{uuid.uuid4().hex[:12]}",
        "LIENTHONG_S3_SECURE": "false",
        "LIENTHONG_S3_RETENTION_YEARS": "1",
        "LIENTHONG_S3_PART_SIZE": str(5 * 1024 * 1024),
    }
    values.update(env)
    return load_config(env=values, data_dir=data_dir)
