"""Signing sessions (phiên ký) of officers and the attachment versions they and seals produce.

Two aggregates that live and die together: a finished session on an attachment adds an
attachment version in the same transaction, so one module holds both repositories.

A session's JWT secret is kept sealed (migration 0011): the repository seals it on write and
opens it on read through the :class:`SecretCipher` the server gives it, bound to the session id.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.ids import from_db_time, new_id, to_db_time, utcnow
from storage.repos import sealed
from storage.repos.sealed import SealedColumn, SecretCipher

PENDING = "pending"
SIGNED = "signed"


@dataclass(frozen=True)
class SessionRow:
    """One stored signing session (see migration 0005 for the meaning of each column)."""

    id: str
    organ_id: str
    state: str
    level: str
    profile: str
    certificate_sha256: str
    subject: str
    source_sha256: str
    source_size: int
    prepared_sha256: str
    session_json: str
    jwt_secret: str
    document_id: str | None
    attachment_index: int | None
    name: str | None
    signed_sha256: str | None
    signed_size: int | None
    signed_via: str | None
    created_at: datetime
    expires_at: datetime
    signed_at: datetime | None

    def expired(self, now: datetime | None = None) -> bool:
        """True once the session can no longer be signed (a signed session never expires)."""
        return self.state == PENDING and (now or utcnow()) >= self.expires_at


def _jwt_aad(session_id: str) -> bytes:
    return f"lienthong-signing-session-jwt\x00{session_id}".encode()


# The sealed column of this module, for re-sealing and the start-up sealing.
SESSION_SECRETS = (SealedColumn("signing_sessions", "id", "jwt_secret", "jwt_sealed", _jwt_aad),)


def _session(row: sqlite3.Row, cipher: SecretCipher) -> SessionRow:
    stored = row["jwt_secret"]
    # jwt_sealed = 0: a row written before migration 0011, not yet sealed at start-up.
    jwt_secret = cipher.open(stored, _jwt_aad(row["id"])) if row["jwt_sealed"] else str(stored)
    return SessionRow(
        id=row["id"],
        organ_id=row["organ_id"],
        state=row["state"],
        level=row["level"],
        profile=row["profile"],
        certificate_sha256=row["certificate_sha256"],
        subject=row["subject"],
        source_sha256=row["source_sha256"],
        source_size=int(row["source_size"]),
        prepared_sha256=row["prepared_sha256"],
        session_json=row["session"],
        jwt_secret=jwt_secret,
        document_id=row["document_id"],
        attachment_index=row["attachment_index"],
        name=row["name"],
        signed_sha256=row["signed_sha256"],
        signed_size=row["signed_size"],
        signed_via=row["signed_via"],
        created_at=from_db_time(row["created_at"]),
        expires_at=from_db_time(row["expires_at"]),
        signed_at=None if row["signed_at"] is None else from_db_time(row["signed_at"]),
    )


class SigningSessionRepo:
    """Reads and writes the signing_sessions table through a Tx; ``cipher`` seals and opens
    the sessions' JWT secrets."""

    def __init__(self, tx: Tx, cipher: SecretCipher) -> None:
        self.tx = tx
        self.cipher = cipher

    async def add(self, row: SessionRow) -> None:
        """Insert a new session (state pending), its JWT secret sealed."""
        await self.tx.execute(
            "INSERT INTO signing_sessions (id, organ_id, state, level, profile, "
            "certificate_sha256, subject, source_sha256, source_size, prepared_sha256, session, "
            "jwt_secret, jwt_sealed, document_id, attachment_index, name, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            (
                row.id, row.organ_id, row.state, row.level, row.profile,
                row.certificate_sha256, row.subject, row.source_sha256, row.source_size,
                row.prepared_sha256, row.session_json,
                self.cipher.seal(row.jwt_secret, _jwt_aad(row.id)), row.document_id,
                row.attachment_index, row.name, to_db_time(row.created_at),
                to_db_time(row.expires_at),
            ),
        )  # fmt: skip

    async def get(self, session_id: str) -> SessionRow | None:
        """The session, or None (the cipher's error if its JWT secret does not open)."""
        row = await self.tx.fetchone("SELECT * FROM signing_sessions WHERE id = ?", (session_id,))
        return None if row is None else _session(row, self.cipher)

    async def mark_signed(
        self, session_id: str, sha256: str, size: int, via: str, at: datetime
    ) -> bool:
        """Record the signed PDF of a pending session; False if it was no longer pending (a
        concurrent finish won: the caller must not report success twice)."""
        changed = await self.tx.execute(
            "UPDATE signing_sessions SET state = ?, signed_sha256 = ?, signed_size = ?, "
            "signed_via = ?, signed_at = ? WHERE id = ? AND state = ?",
            (SIGNED, sha256, size, via, to_db_time(at), session_id, PENDING),
        )
        return changed == 1

    async def reseal(self, new: SecretCipher) -> int:
        """Every sealed JWT secret from this repository's cipher to ``new`` (secrets key
        rotation; see :func:`storage.repos.sealed.reseal`); return how many rows."""
        return await sealed.reseal(self.tx, SESSION_SECRETS, self.cipher, new)

    async def seal_plaintext(self) -> int:
        """Seal the JWT secrets of sessions created before migration 0011; return how many."""
        return await sealed.seal_plaintext(self.tx, SESSION_SECRETS, self.cipher)


@dataclass(frozen=True)
class AttachmentVersion:
    """A version of an attachment made by one agency (signed or sealed); never altered."""

    id: str
    document_id: str
    attachment_index: int
    organ_id: str
    kind: str
    sha256: str
    size: int
    base_sha256: str
    name: str | None
    session_id: str | None
    created_at: datetime


def _version(row: sqlite3.Row) -> AttachmentVersion:
    return AttachmentVersion(
        id=row["id"],
        document_id=row["document_id"],
        attachment_index=int(row["attachment_index"]),
        organ_id=row["organ_id"],
        kind=row["kind"],
        sha256=row["sha256"],
        size=int(row["size"]),
        base_sha256=row["base_sha256"],
        name=row["name"],
        session_id=row["session_id"],
        created_at=from_db_time(row["created_at"]),
    )


class AttachmentVersionRepo:
    """Reads and writes the attachment_versions table through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(
        self,
        document_id: str,
        index: int,
        organ_id: str,
        kind: str,
        sha256: str,
        size: int,
        base_sha256: str,
        name: str | None,
        session_id: str | None = None,
    ) -> AttachmentVersion:
        """Insert a new version (ids sort in creation order, so the last is the newest)."""
        version = AttachmentVersion(
            new_id(), document_id, index, organ_id, kind, sha256, size, base_sha256, name,
            session_id, utcnow(),
        )  # fmt: skip
        await self.tx.execute(
            "INSERT INTO attachment_versions (id, document_id, attachment_index, organ_id, kind, "
            "sha256, size, base_sha256, name, session_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version.id, document_id, index, organ_id, kind, sha256, size, base_sha256, name,
                session_id, to_db_time(version.created_at),
            ),
        )  # fmt: skip
        return version

    async def list(self, document_id: str, index: int, organ_id: str) -> list[AttachmentVersion]:
        """The versions ``organ_id`` made of one attachment, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM attachment_versions WHERE document_id = ? AND attachment_index = ? "
            "AND organ_id = ? ORDER BY id",
            (document_id, index, organ_id),
        )
        return [_version(r) for r in rows]

    async def get(self, version_id: str) -> AttachmentVersion | None:
        """One version by id, or None."""
        row = await self.tx.fetchone(
            "SELECT * FROM attachment_versions WHERE id = ?", (version_id,)
        )
        return None if row is None else _version(row)
