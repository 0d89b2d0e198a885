"""``lienthong receipt verify RECEIPT [PACKAGE]``: check an axis receipt offline.

A valid receipt is one line, ``VALID receipt: ...`` (exit 0). Otherwise one line per failed
check, naming it (``content``, ``content digest``, ``signature``, ``chain``, ``timestamp``,
``package``) and what failed, then ``INVALID receipt: <checks> failed`` (exit 1); a file that is
no readable CMS receipt is the one line ``INVALID receipt: ...``. The checks are those of
:mod:`server.exchange.receipt_check`.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from server.cli import CliError
from server.cli.audit_cmd import add_trust_options, trust_material
from server.exchange.receipt_check import verify_receipt


def register(sub: Any) -> None:
    """Add the ``receipt`` command group to the ``lienthong`` parser."""
    parser = sub.add_parser("receipt", help="signed receipts (biên nhận) of the axis")
    cmds = parser.add_subparsers(dest="receipt_command", metavar="SUBCOMMAND")
    cmds.required = True
    verify = cmds.add_parser("verify", help="check a receipt (and its package) offline")
    verify.add_argument("receipt", type=Path, metavar="RECEIPT", help="the .p7m receipt file")
    verify.add_argument(
        "package", type=Path, nargs="?", metavar="PACKAGE", help="the package it is for"
    )
    add_trust_options(verify)
    verify.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Print each failed check and the verdict (one line when valid); exit 1 when any fails."""
    roots, crls = trust_material(args)
    if not roots:
        raise CliError("give the trust root(s) of the seal and the TSA with --trust FILE")
    try:
        data = args.receipt.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.receipt}: {exc.strerror}") from None
    if args.package is not None and not args.package.is_file():
        raise CliError(f"no package file {args.package}")
    verdict = asyncio.run(verify_receipt(data, roots, args.package, crls))
    print(verdict.summary())
    return 0 if verdict.ok else 1
