"""The S3 versions the axis wrote, by object digest (migration 0010; storage/objects/s3.py).

An S3 key can get new versions behind the axis's back (a forged overwrite, a delete marker);
the version recorded here is the one the axis reads, always. See the migration for what a row
promises.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Tx
from storage.ids import to_db_time, utcnow


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an object the axis wrote (or verified whole), with the object's size."""

    sha256: str
    version_id: str
    size: int


class ObjectVersionRepo:
    """Reads and writes the object_versions table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def versions(self, sha256: str) -> list[ObjectVersion]:
        """The versions recorded for ``sha256``, the first recorded (the one read) first."""
        rows = await self.tx.fetchall(
            "SELECT version_id, size FROM object_versions WHERE sha256 = ? ORDER BY rowid",
            (sha256,),
        )
        return [ObjectVersion(sha256, str(r[0]), int(r[1])) for r in rows]

    async def record(self, version: ObjectVersion) -> None:
        """Record a version (recording it again changes nothing)."""
        await self.tx.execute(
            "INSERT INTO object_versions (sha256, version_id, size, recorded_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (version.sha256, version.version_id, version.size, to_db_time(utcnow())),
        )
