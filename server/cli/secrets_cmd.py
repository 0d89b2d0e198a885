"""``lienthong secrets rotate``: a new secrets key, every sealed secret sealed again with it.

What is sealed (server/runtime/secretbox.py): the VDXP secrets, the webhook secrets, the
axis-link tokens and the signing sessions' JWT secrets. The secrets themselves do not change;
only the key that seals them does.

Order, so that a crash at any point leaves a key that opens every row:

1. the new key is written to ``<key file>.new`` (0600, fsynced) and the current key copied to
   ``<key file>.old`` (0600, fsynced);
2. every sealed row is opened with the current key and sealed with the new one in ONE database
   transaction (all or nothing: one row that does not open changes nothing);
3. after the commit, ``.new`` is renamed over the key file (atomic) and the directory fsynced.

A crash before 3 leaves the old key in place. Run the command again: if the rows open with
``.new`` (the commit happened) it finishes the rename; otherwise (no commit) it discards ``.new``
and rotates afresh. ``.old`` stays until the operator deletes it.

The axis must be stopped: a running server keeps the key it loaded and would seal new secrets
with the old key, or fail to open the re-sealed ones. The command refuses when something
answers on the configured ``server.host:server.port``. A key given in ``LIENTHONG_SECRETS_KEY``
cannot be replaced by this command (it cannot change the environment): use a key file.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.runtime import secretbox
from server.runtime.config import Config
from server.runtime.secretbox import SecretsError
from server.vdxp.credentials import decrypt_secret, reseal_credentials
from server.vdxp.errors import CredentialsError
from storage.db import Database
from storage.repos.routes import RouteRepo
from storage.repos.sealed import open_all
from storage.repos.signing_sessions import SESSION_SECRETS, SigningSessionRepo
from storage.repos.vdxp import CredentialRepo


def register(sub: Any) -> None:
    """Add ``secrets rotate`` to the ``lienthong`` parser."""
    group = sub.add_parser("secrets", help="the key that seals secrets at rest")
    cmds = group.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")
    cmds.required = True
    rotate = cmds.add_parser(
        "rotate",
        help="new secrets key; re-seal every stored secret with it (stop the axis first)",
    )
    add_local_options(rotate)
    rotate.set_defaults(func=cmd_rotate)


class KeyCipher:
    """Seals and opens with one given key (``storage.repos.routes.SecretCipher``)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def seal(self, secret: str, aad: bytes) -> str:
        """The stored form of ``secret`` bound to ``aad``, under this key."""
        return secretbox.seal(self.key, secret, aad)

    def open(self, stored: str, aad: bytes) -> str:
        """The secret sealed in ``stored`` for ``aad``; :class:`SecretsError` otherwise."""
        return secretbox.unseal(self.key, stored, aad)


def key_file(config: Config, env: Any = os.environ) -> Path:
    """The key file this command would replace; CliError when the key is in the environment."""
    if env.get(secretbox.KEY_ENV):
        raise CliError(
            f"the secrets key comes from {secretbox.KEY_ENV}, which this command cannot change: "
            f"use a key file instead ({secretbox.KEY_FILE_ENV} or "
            f"{secretbox.key_path(config.storage.data_dir)}), unset {secretbox.KEY_ENV}, "
            "then rotate"
        )
    if env.get(secretbox.KEY_FILE_ENV):
        return Path(env[secretbox.KEY_FILE_ENV])
    return secretbox.key_path(config.storage.data_dir)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _read_key(path: Path) -> bytes:
    if not path.exists():
        raise CliError(f"no secrets key at {path}: nothing is sealed yet, nothing to rotate")
    try:
        return secretbox.load_key(path.parent, env={secretbox.KEY_FILE_ENV: str(path)})
    except SecretsError as exc:
        raise CliError(str(exc)) from None


def _write_key(path: Path, key: bytes) -> None:
    """Write ``key`` to a new file ``path`` (mode 0600 from creation), fsynced."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_if_serving(config: Config) -> None:
    """CliError when something answers on the configured server address (the axis runs)."""
    host = config.server.host
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 (an address compared, not bound)
        host = "127.0.0.1" if host != "::" else "::1"
    try:
        with socket.create_connection((host, config.server.port), timeout=0.5):
            pass
    except OSError:
        return
    raise CliError(
        f"something answers on {host}:{config.server.port}: stop `lienthong serve` before "
        "rotating the secrets key (a running axis keeps the old key)"
    )


async def _opens_with(db: Database, key: bytes) -> bool:
    """Whether every sealed secret in the database opens with ``key``."""
    cipher = KeyCipher(key)
    try:
        async with db.reader() as tx:
            repo = RouteRepo(tx, cipher)
            await repo.webhooks()
            await repo.links()
            await open_all(tx, SESSION_SECRETS, cipher)
            for found in await CredentialRepo(tx).all():
                decrypt_secret(
                    key, found.secret_ciphertext, organ_id=found.organ_id,
                    system_id=found.system_id,
                )  # fmt: skip
    except (SecretsError, CredentialsError):
        return False
    return True


async def _reseal(db: Database, old: bytes, new: bytes) -> tuple[int, int, int]:
    """Every sealed row from ``old`` to ``new`` in one transaction: (routes, credentials,
    signing sessions). Rows still in plain text (written before migrations 0007 and 0011) are
    left to the server, which seals them at start-up."""
    async with db.transaction() as tx:
        routes = await RouteRepo(tx, KeyCipher(old)).reseal(KeyCipher(new))
        creds = await reseal_credentials(tx, old, new)
        sessions = await SigningSessionRepo(tx, KeyCipher(old)).reseal(KeyCipher(new))
    return routes, creds, sessions


def cmd_rotate(args: argparse.Namespace) -> int:
    """Rotate the secrets key (see the module docstring for the order and the recovery)."""
    config = local_config(args)
    path = key_file(config)
    _refuse_if_serving(config)
    pending, old_copy = _sibling(path, ".new"), _sibling(path, ".old")
    current = _read_key(path)

    if pending.exists():
        new = _read_key(pending)
        if with_database(config, lambda db: _opens_with(db, new)):
            # The re-sealing committed, the rename did not happen: finish it.
            os.replace(pending, path)
            _fsync_dir(path.parent)
            print(f"finished an interrupted rotation: {path} now holds the new key")
            print(f"the previous key is in {old_copy}: delete it once the axis works")
            return 0
        pending.unlink()  # the earlier attempt did not commit: its key sealed nothing
    elif old_copy.exists():
        raise CliError(
            f"{old_copy} is still there from a previous rotation: once the axis works with the "
            "current key, delete it, then rotate again"
        )

    try:
        new = secrets.token_bytes(32)
        _write_key(pending, new)
        _write_key(old_copy, current)
        _fsync_dir(path.parent)
        routes, creds, sessions = with_database(config, lambda db: _reseal(db, current, new))
    except CliError:
        pending.unlink(missing_ok=True)
        old_copy.unlink(missing_ok=True)
        raise
    except (SecretsError, CredentialsError) as exc:
        pending.unlink(missing_ok=True)
        old_copy.unlink(missing_ok=True)
        raise CliError(f"nothing changed: {exc}") from None
    os.replace(pending, path)
    _fsync_dir(path.parent)
    print(
        f"re-sealed {creds} VDXP secret(s), {routes} webhook secret(s)/axis token(s) and "
        f"{sessions} signing-session secret(s); {path} holds the new key"
    )
    print(f"the previous key is in {old_copy}: delete it once the axis works; start the axis now")
    return 0
