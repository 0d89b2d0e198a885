"""Secrets at rest: the one AES-256-GCM key of an axis and what it seals.

Some secrets must be recovered by the axis itself, so a one-way hash (as for bearer tokens)
will not do: the VDXP secrets (the axis checks each agency's HMAC), the webhook secrets (the
axis signs its pushes) and the tokens this axis presents to other axes. They are stored sealed
with AES-256-GCM; the associated data names the row and the purpose of the secret, so a
ciphertext copied onto another row, or into another table, does not open.

Stored form: ``v1:`` + base64(12-byte nonce ‖ ciphertext ‖ tag).

Where the key comes from (first found wins):

1. ``LIENTHONG_SECRETS_KEY``: 32 bytes in URL-safe base64 (never logged);
2. ``LIENTHONG_SECRETS_KEY_FILE``: a file holding that base64 text;
3. ``<data_dir>/secrets.key``: created with mode 0600 the first time a secret is sealed.

Losing the key means every sealed secret must be set again (VDXP secrets rotated, webhooks and
axis links registered again). Keep it out of database backups, or back it up separately.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.runtime.problems import DomainError, problem_type

KEY_ENV = "LIENTHONG_SECRETS_KEY"
KEY_FILE_ENV = "LIENTHONG_SECRETS_KEY_FILE"
KEY_FILE_NAME = "secrets.key"
_VERSION = "v1"
_NONCE = 12


SECRETS_UNAVAILABLE = problem_type(
    "secrets-unavailable",
    503,
    "Secrets key unavailable",
    "The key that protects stored secrets is missing or wrong; the operator must fix it.",
    retry=True,
)


class SecretsError(DomainError):
    """The key cannot be loaded, or a stored secret cannot be opened with it. One line, never
    the key or the secret. ``missing`` is True when no key is configured at all."""

    problem = SECRETS_UNAVAILABLE

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SecretsError(f"{where} is not base64") from None
    if len(key) != 32:
        raise SecretsError(f"{where} must hold 32 bytes (AES-256), found {len(key)}")
    return key


def key_path(data_dir: Path) -> Path:
    """The default key file of a data directory."""
    return data_dir / KEY_FILE_NAME


def load_key(data_dir: Path, *, env: Mapping[str, str] = os.environ, create: bool = False) -> bytes:
    """The AES-256 key that seals secrets (see the module docstring for where it comes from).

    With ``create`` the default key file is made (mode 0600, never overwritten) when no key is
    configured; without it a missing key raises :class:`SecretsError` with ``missing`` set.
    """
    if env.get(KEY_ENV):
        return _decode_key(env[KEY_ENV], KEY_ENV)
    if env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
        try:
            return _decode_key(path.read_text("ascii"), f"key file {path}")
        except OSError as exc:
            raise SecretsError(f"key file {path} cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SecretsError(f"key file {path} is not base64 text") from None
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
        raise SecretsError(
            f"no secrets key: set {KEY_ENV} or {KEY_FILE_ENV}, or let the axis create {path} "
            "by storing a first secret",
            missing=True,
        ) from None
    except OSError as exc:
        raise SecretsError(f"key file {path} cannot be read: {exc.strerror}") from None


def seal(key: bytes, secret: str, aad: bytes) -> str:
    """The stored form of ``secret``, bound to ``aad`` (which row, which purpose)."""
    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, secret.encode("utf-8"), aad)
    return f"{_VERSION}:" + base64.b64encode(nonce + sealed).decode("ascii")


def unseal(key: bytes, stored: str, aad: bytes) -> str:
    """The secret in ``stored``; :class:`SecretsError` if it has another format, another key
    sealed it, or it was sealed for another ``aad`` (another row or purpose)."""
    version, _, body = stored.partition(":")
    if version != _VERSION:
        raise SecretsError("the stored secret has an unknown format")
    try:
        raw = base64.b64decode(body, validate=True)
        plain = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], aad)
    except (binascii.Error, ValueError, InvalidTag):
        raise SecretsError(
            f"a stored secret cannot be opened with this key (wrong {KEY_ENV}?)"
        ) from None
    return plain.decode("utf-8")


class SecretBox:
    """The key of one data directory, loaded on first use and kept: ``seal`` and ``open``
    satisfy ``storage.repos.routes.SecretCipher``. Sealing creates the default key file when no
    key is configured; opening never does (a missing key is then a :class:`SecretsError`)."""

    def __init__(self, data_dir: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self._env = env
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self, *, create: bool = False) -> bytes:
        """The key (blocking file read the first time only)."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    env = os.environ if self._env is None else self._env
                    self._key = load_key(self.data_dir, env=env, create=create)
        return self._key

    def seal(self, secret: str, aad: bytes) -> str:
        """The stored form of ``secret`` bound to ``aad``."""
        return seal(self.key(create=True), secret, aad)

    def open(self, stored: str, aad: bytes) -> str:
        """The secret sealed in ``stored`` for ``aad``; :class:`SecretsError` otherwise."""
        return unseal(self.key(), stored, aad)
