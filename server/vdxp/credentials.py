"""VDXP credentials: each agency's system id and secret, the secret encrypted at rest.

The protocol signs requests with HMAC-SHA256 keyed by the secret itself, so the axis must be
able to recover it: a one-way hash (as for bearer tokens) would not do. The secret is stored
encrypted with AES-256-GCM; the ciphertext is bound to its row (organ id + system id are the
associated data), so copying one agency's ciphertext onto another row does not decrypt.

Where the key comes from (first found wins):

1. ``LIENTHONG_SECRETS_KEY``: 32 bytes in URL-safe base64 (``lienthong`` never logs it);
2. ``LIENTHONG_SECRETS_KEY_FILE``: a file holding that base64 text;
3. ``<data_dir>/secrets.key``: created with mode 0600 the first time a secret is stored
   (``lienthong agency add --system-id`` or ``lienthong agency secret rotate``).

Losing the key means every agency needs a new secret (``lienthong agency secret rotate``);
nothing else is encrypted with it. Keep it out of database backups, or back it up separately.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.vdxp.errors import CredentialsError, ErrorCode
from storage.db import Database
from storage.errors import Conflict, MissingReference
from storage.repos.agencies import AgencyRepo
from storage.repos.vdxp import CredentialRepo

KEY_ENV = "LIENTHONG_SECRETS_KEY"
KEY_FILE_ENV = "LIENTHONG_SECRETS_KEY_FILE"
KEY_FILE_NAME = "secrets.key"
_CIPHER_VERSION = "v1"
# System ids are sent in a header the SDK does not escape: printable ASCII without ';' or '"'.
_SYSTEM_ID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise CredentialsError(f"{where} is not base64") from None
    if len(key) != 32:
        raise CredentialsError(f"{where} must hold 32 bytes (AES-256), found {len(key)}")
    return key


def key_path(data_dir: Path) -> Path:
    """The default key file of a data directory."""
    return data_dir / KEY_FILE_NAME


def load_key(data_dir: Path, *, env: Mapping[str, str] = os.environ, create: bool = False) -> bytes:
    """The AES-256 key that encrypts secrets (see the module docstring for where it comes from).

    With ``create`` the default key file is made (mode 0600, never overwritten) when no key is
    configured; without it a missing key raises :class:`CredentialsError`.
    """
    if env.get(KEY_ENV):
        return _decode_key(env[KEY_ENV], KEY_ENV)
    if env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
        try:
            return _decode_key(path.read_text("ascii"), f"key file {path}")
        except OSError as exc:
            raise CredentialsError(f"key file {path} cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CredentialsError(f"key file {path} is not base64 text") from None
    path = key_path(data_dir)
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
        try:
            # O_EXCL: two processes creating the key at once must not end with two keys.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(text + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    try:
        return _decode_key(path.read_text("ascii"), f"key file {path}")
    except FileNotFoundError:
        raise CredentialsError(
            f"no secrets key: set {KEY_ENV} or {KEY_FILE_ENV}, or create VDXP credentials "
            f"with the CLI (which makes {path})",
            ErrorCode.UNAVAILABLE,
        ) from None
    except OSError as exc:
        raise CredentialsError(f"key file {path} cannot be read: {exc.strerror}") from None


def _aad(organ_id: str, system_id: str) -> bytes:
    return f"lienthong-vdxp\x00{organ_id}\x00{system_id}".encode()


def encrypt_secret(key: bytes, secret: str, *, organ_id: str, system_id: str) -> str:
    """The stored form of a secret: ``v1:`` + base64(nonce ‖ AES-GCM ciphertext)."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode("utf-8"), _aad(organ_id, system_id))
    return f"{_CIPHER_VERSION}:" + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt_secret(key: bytes, stored: str, *, organ_id: str, system_id: str) -> str:
    """The secret of a stored ciphertext; :class:`CredentialsError` if the key does not fit."""
    version, _, body = stored.partition(":")
    if version != _CIPHER_VERSION:
        raise CredentialsError(f"stored secret of {organ_id} has an unknown format")
    try:
        raw = base64.b64decode(body, validate=True)
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(organ_id, system_id))
    except (binascii.Error, ValueError, InvalidTag):
        raise CredentialsError(
            f"the stored secret of {organ_id} cannot be decrypted with this key "
            "(wrong LIENTHONG_SECRETS_KEY?)",
            ErrorCode.UNAVAILABLE,
        ) from None
    return plain.decode("utf-8")


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
