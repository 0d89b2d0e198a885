"""VDXP credentials: each agency's system id and secret, the secret encrypted at rest.

The protocol signs requests with HMAC-SHA256 keyed by the secret itself, so the axis must be
able to recover it: a one-way hash (as for bearer tokens) would not do. The secret is stored
encrypted with AES-256-GCM; the ciphertext is bound to its row (organ id + system id are the
associated data), so copying one agency's ciphertext onto another row does not decrypt.

The key and the sealing are shared with the other secrets at rest (:mod:`server.runtime.secretbox`:
``LIENTHONG_SECRETS_KEY``, ``LIENTHONG_SECRETS_KEY_FILE`` or ``<data_dir>/secrets.key``); this
module keeps its own associated data and maps failures to :class:`CredentialsError`.

Losing the key means every agency needs a new secret (``lienthong agency secret rotate``), and
webhooks and axis links must be registered again. Keep it out of database backups, or back it
up separately.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from server.runtime import secretbox
from server.runtime.secretbox import KEY_ENV as KEY_ENV
from server.runtime.secretbox import KEY_FILE_ENV as KEY_FILE_ENV
from server.runtime.secretbox import KEY_FILE_NAME as KEY_FILE_NAME
from server.runtime.secretbox import SecretsError
from server.vdxp.errors import CredentialsError, ErrorCode
from storage.db import Database, Tx
from storage.errors import Conflict, MissingReference
from storage.repos.agencies import AgencyRepo
from storage.repos.vdxp import CredentialRepo

# System ids are sent in a header the SDK does not escape: printable ASCII without ';' or '"'.
_SYSTEM_ID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")


def key_path(data_dir: Path) -> Path:
    """The default key file of a data directory."""
    return secretbox.key_path(data_dir)


def load_key(data_dir: Path, *, env: Mapping[str, str] = os.environ, create: bool = False) -> bytes:
    """The AES-256 key that encrypts secrets (:func:`server.runtime.secretbox.load_key`).

    With ``create`` the default key file is made (mode 0600, never overwritten) when no key is
    configured; without it a missing key raises :class:`CredentialsError`.
    """
    try:
        return secretbox.load_key(data_dir, env=env, create=create)
    except SecretsError as exc:
        code = ErrorCode.UNAVAILABLE if exc.missing else None
        raise CredentialsError(str(exc), code) from None


def _aad(organ_id: str, system_id: str) -> bytes:
    return f"lienthong-vdxp\x00{organ_id}\x00{system_id}".encode()


def encrypt_secret(key: bytes, secret: str, *, organ_id: str, system_id: str) -> str:
    """The stored form of a secret: ``v1:`` + base64(nonce ‖ AES-GCM ciphertext)."""
    return secretbox.seal(key, secret, _aad(organ_id, system_id))


def decrypt_secret(key: bytes, stored: str, *, organ_id: str, system_id: str) -> str:
    """The secret of a stored ciphertext; :class:`CredentialsError` if the key does not fit."""
    if not stored.startswith("v1:"):
        raise CredentialsError(f"stored secret of {organ_id} has an unknown format")
    try:
        return secretbox.unseal(key, stored, _aad(organ_id, system_id))
    except SecretsError:
        raise CredentialsError(
            f"the stored secret of {organ_id} cannot be decrypted with this key "
            "(wrong LIENTHONG_SECRETS_KEY?)",
            ErrorCode.UNAVAILABLE,
        ) from None


def new_secret() -> str:
    """A fresh secret: 32 random bytes as URL-safe base64 text (ASCII, 43 characters)."""
    return secrets.token_urlsafe(32)


def check_system_id(system_id: str) -> str:
    """The system id, or :class:`CredentialsError` when it cannot travel in a VDXP header."""
    if not _SYSTEM_ID_RE.match(system_id):
        raise CredentialsError(
            f"system id {system_id!r} must be 1-100 characters among A-Z a-z 0-9 . _ : @ -"
        )
    return system_id


@dataclass(frozen=True)
class Caller:
    """A VDXP caller resolved from its system id: its agency and its (decrypted) secret."""

    organ_id: str
    system_id: str
    secret: str


async def create_credentials(db: Database, organ_id: str, system_id: str, key: bytes) -> str:
    """Give an existing agency a system id and a new secret; return the secret (show it once).

    :class:`CredentialsError` when the agency is unknown, already has a system id, or the
    system id is taken by another agency.
    """
    check_system_id(system_id)
    secret = new_secret()
    stored = encrypt_secret(key, secret, organ_id=organ_id, system_id=system_id)
    try:
        async with db.transaction() as tx:
            if await AgencyRepo(tx).get(organ_id) is None:
                raise CredentialsError(f"agency {organ_id} is not known")
            await CredentialRepo(tx).add(organ_id, system_id, stored)
    except Conflict:
        raise CredentialsError(
            f"agency {organ_id} already has a system id, or system id {system_id} is taken "
            f"(use `lienthong agency secret rotate {organ_id}` for a new secret)",
            ErrorCode.CONFLICT,
        ) from None
    except MissingReference:
        raise CredentialsError(f"agency {organ_id} is not known") from None
    return secret


async def rotate_secret(db: Database, organ_id: str, key: bytes) -> tuple[str, str]:
    """Replace an agency's secret; return ``(system_id, new_secret)``. The old one stops working."""
    secret = new_secret()
    async with db.transaction() as tx:
        repo = CredentialRepo(tx)
        current = await repo.by_organ(organ_id)
        if current is None:
            raise CredentialsError(
                f"agency {organ_id} has no VDXP system id "
                f"(give it one with `lienthong agency add {organ_id} ... --system-id ID`)"
            )
        stored = encrypt_secret(key, secret, organ_id=organ_id, system_id=current.system_id)
        await repo.replace_secret(organ_id, stored)
    return current.system_id, secret


async def reseal_credentials(tx: Tx, old_key: bytes, new_key: bytes) -> int:
    """Seal every agency's VDXP secret with ``new_key`` instead of ``old_key`` (secrets key
    rotation, inside the caller's transaction); return how many. The secrets themselves do not
    change. :class:`CredentialsError` when a row does not open with ``old_key``."""
    repo = CredentialRepo(tx)
    count = 0
    for found in await repo.all():
        ids = {"organ_id": found.organ_id, "system_id": found.system_id}
        secret = decrypt_secret(old_key, found.secret_ciphertext, **ids)
        stored = encrypt_secret(new_key, secret, **ids)
        count += await repo.replace_ciphertext(found.organ_id, found.secret_ciphertext, stored)
    return count


async def find_caller(db: Database, system_id: str, key: bytes) -> Caller | None:
    """The agency and secret behind a system id, or None when the system id is unknown."""
    async with db.reader() as tx:
        found = await CredentialRepo(tx).by_system_id(system_id)
    if found is None:
        return None
    secret = decrypt_secret(
        key, found.secret_ciphertext, organ_id=found.organ_id, system_id=found.system_id
    )
    return Caller(organ_id=found.organ_id, system_id=found.system_id, secret=secret)
