"""``lienthong open311 key create|revoke|list``: the API keys of Open311 apps (docs/open311.md).

An app (a city's mobile app, a FixMyStreet-style client) posts service requests for many
citizens with one key, sent as ``api_key``; the axis rate-limits its posts per key. The key is
printed once, alone on its stdout line; only its SHA-256 hex is stored. These commands open the
database of a data directory, like ``lienthong token``.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from typing import Any

from edxml.model import VN_TZ
from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.runtime.audit import ADMIN, record
from server.runtime.tokens import hash_token
from storage.db import Database
from storage.repos.open311_keys import Open311Key, Open311KeyRepo

KEY_PREFIX = "o311_"  # marks Open311 API keys (not agency tokens, lt_)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def register(sub: Any) -> None:
    """Add ``open311`` and its sub-commands."""
    open311 = sub.add_parser("open311", help="Open311 GeoReport v2: the API keys of apps")
    groups = open311.add_subparsers(dest="open311_command", metavar="SUBCOMMAND")
    groups.required = True
    key = groups.add_parser("key", help="API keys of apps posting service requests")
    keys = key.add_subparsers(dest="key_command", metavar="SUBCOMMAND")
    keys.required = True
    create = keys.add_parser("create", help="create an app's key and print it once")
    create.add_argument("--name", required=True, metavar="APP", help="the app, e.g. hanoi-app")
    add_local_options(create)
    create.set_defaults(func=cmd_key_create)
    revoke = keys.add_parser("revoke", help="revoke an app's key")
    revoke.add_argument("name", metavar="APP")
    add_local_options(revoke)
    revoke.set_defaults(func=cmd_key_revoke)
    listing = keys.add_parser("list", help="list the apps' keys (never the keys)")
    add_local_options(listing)
    listing.set_defaults(func=cmd_key_list)


def app_name(text: str) -> str:
    """An app's name: 1–64 letters, digits, ``.``, ``_`` or ``-``, starting with one of the
    first two; CliError otherwise."""
    if not _NAME.match(text):
        raise CliError(
            f"app name {text!r}: use 1-64 letters, digits, '.', '_' or '-' (e.g. hanoi-app)"
        )
    return text


def new_api_key() -> tuple[str, str]:
    """A fresh API key and its hash ``(key, key_hash)``; show the key once only."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_token(key)


def cmd_key_create(args: argparse.Namespace) -> int:
    """Create the app's key: the key alone on stdout, the words around it on stderr."""
    config = local_config(args)
    name = app_name(args.name)
    key, key_hash = new_api_key()

    async def create(database: Database) -> None:
        async with database.transaction() as tx:
            await Open311KeyRepo(tx).create(name, key_hash)
            await record(tx, ADMIN, "open311.key.create", [name])

    with_database(config, create)
    print(
        f"Open311 API key created for {name}. It is shown only this once; only its hash is "
        "stored. The app sends it as api_key:",
        file=sys.stderr,
    )
    print(key)
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    """Revoke the app's active key; error if it has none."""
    config = local_config(args)
    name = app_name(args.name)

    async def revoke(database: Database) -> bool:
        async with database.transaction() as tx:
            revoked = await Open311KeyRepo(tx).revoke(name)
            if revoked:
                await record(tx, ADMIN, "open311.key.revoke", [name])
            return revoked

    if not with_database(config, revoke):
        raise CliError(f"app {name} has no active Open311 key (see `lienthong open311 key list`)")
    print(f"Revoked the Open311 key of {name}.")
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    """The apps and their keys' dates (never a key)."""
    config = local_config(args)

    async def load(database: Database) -> list[Open311Key]:
        async with database.reader() as tx:
            return await Open311KeyRepo(tx).list()

    keys = with_database(config, load)
    if not keys:
        print("No Open311 keys yet: create one with `lienthong open311 key create --name APP`.")
        return 0

    def shown(moment: Any) -> str:
        return "" if moment is None else moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")

    rows = [(k.name, shown(k.created_at), shown(k.revoked_at)) for k in keys]
    print(render_table(("APP", "CREATED (+07)", "REVOKED (+07)"), rows))
    return 0
