"""The ``lienthong`` command: one module per command group, each exposing ``register(sub)``.

A command handler returns an exit code. Expected failures raise :class:`CliError` (or an error
of the libraries listed in :data:`EXPECTED_ERRORS`) and print one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edxml.errors import EdxmlError
from server.runtime.library_warnings import quiet_library_warnings
from server.runtime.problems import DomainError

# Each module registers its sub-commands; keep one module per command group.
COMMAND_MODULES = [
    "server.cli.edxml_cmd",
    "server.cli.pki",
    "server.cli.sign",
    "server.cli.verify_cmd",
    "server.cli.admin",
    "server.cli.serve",
    "server.cli.client",
    "server.cli.audit_cmd",
    "server.cli.receipt_cmd",
    "server.cli.storage_cmd",
    "server.cli.archive_cmd",
    "server.cli.vdxp_cmd",
    "server.cli.deliveries_cmd",
    "server.cli.backup_cmd",
    "server.cli.secrets_cmd",
    "server.cli.procedure_cmd",
    "server.cli.calendar_cmd",
    "server.cli.dossier_cmd",
    "server.cli.feedback_cmd",
    "server.cli.open311_cmd",
    "server.cli.stats_cmd",
    "server.cli.report_cmd",
    "server.cli.jobs_cmd",
]


class CliError(Exception):
    """An expected failure of a command: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# A domain's refusal (DomainError: its detail is one plain-words line) is expected too.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (CliError, EdxmlError, OSError, DomainError)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command group."""
    from server import __version__

    parser = argparse.ArgumentParser(
        prog="lienthong",
        description="Liên Thông: trục liên thông văn bản (edXML) và chữ ký số.",
    )
    parser.add_argument("--version", action="version", version=f"lienthong {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lienthong`` console script."""
    quiet_library_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("lienthong: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as exc:
        print(f"lienthong: error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1) if isinstance(exc, CliError) else 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
