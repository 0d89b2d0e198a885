"""Options shared by several ``lienthong`` commands, and how they become settings.

Two families:

- *local* commands (``init``, ``agency``, ``token``, ``demo``, ``serve``) work on a data
  directory: ``--config FILE`` and ``--data-dir DIR``, handed to
  :func:`server.runtime.config.load_config`;
- *client* commands (``send``, ``inbox``, ``fetch``, ``ack``, ``status``) talk to a running axis
  over HTTP: ``--server URL`` and ``--token TOKEN``, defaulting to ``LIENTHONG_SERVER`` and
  ``LIENTHONG_TOKEN``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.cli import CliError
from server.runtime.config import Config, ConfigError, load_config

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "LIENTHONG_SERVER"
TOKEN_ENV = "LIENTHONG_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


def add_local_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and ``--data-dir`` to a command that works on a data directory."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: conf/lienthong.toml when it exists)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="data directory (overrides storage.data_dir and LIENTHONG_STORAGE_DATA_DIR)",
    )


def local_config(args: argparse.Namespace) -> Config:
    """The configuration named by ``--config``/``--data-dir`` and the environment."""
    try:
        return load_config(args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--server`` and ``--token`` to a command that calls a running axis."""
    parser.add_argument(
        "--server",
        metavar="URL",
        help=f"base URL of the axis (default: ${SERVER_ENV} or {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"bearer token of your agency (default: ${TOKEN_ENV})",
    )


@dataclass(frozen=True)
class ClientSettings:
    """Where the axis is and which token to present."""

    server: str
    token: str


def client_settings(
    args: argparse.Namespace, env: Mapping[str, str] = os.environ
) -> ClientSettings:
    """The server URL and token from the options, else the environment; CliError if unusable."""
    server = (args.server or env.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
    parts = urlsplit(server)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise CliError(f"the server URL {server!r} is not an http:// or https:// URL")
    token = args.token or env.get(TOKEN_ENV)
    if not token:
        raise CliError(f"no token: pass --token or set {TOKEN_ENV} (see `lienthong token create`)")
    return ClientSettings(server=server, token=token.strip())


def resolve_pin(args: argparse.Namespace) -> Any:
    """The token's PIN from ``--pin-file``, else ``LIENTHONG_PIN``, else a prompt (a
    :class:`signing.Pin`); a prompt on a closed stdin (a script, a pipe) is one line."""
    from signing import Pin

    try:
        return Pin.resolve(pin_file=args.pin_file, label=args.token_label or args.token_serial)
    except EOFError:
        raise CliError("no PIN: give --pin-file or set LIENTHONG_PIN") from None
