"""The version book of the S3 store in the metadata database (object_versions, migration 0010)."""

from __future__ import annotations

from storage.db import Database
from storage.objects.base import ObjectRef, VersionBook
from storage.repos.object_versions import ObjectVersion, ObjectVersionRepo


class DatabaseVersionBook(VersionBook):
    """Versions recorded in ``object_versions``, shared by every process on the database."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def versions(self, sha256: str) -> list[ObjectRef]:
        """The versions recorded for ``sha256``, the first recorded first."""
        async with self.database.reader() as tx:
            rows = await ObjectVersionRepo(tx).versions(sha256)
        return [ObjectRef(v.sha256, v.size, v.version_id) for v in rows]

    async def record(self, ref: ObjectRef) -> None:
        """Record a version in its own committed transaction (durable when this returns)."""
        if ref.version_id is None:
            raise ValueError("only a version can be recorded")
        async with self.database.transaction() as tx:
            await ObjectVersionRepo(tx).record(ObjectVersion(ref.sha256, ref.version_id, ref.size))
