"""The ``lienthong`` command: one module per command group, each exposing ``register(sub)``.

A command handler returns an exit code. Expected failures raise :class:`CliError` (or an error
of the libraries listed in :data:`EXPECTED_ERRORS`) and print one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from edxml.errors import EdxmlError

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
]


class CliError(Exception):
    """An expected failure of a command: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# The modules a warning is attributed to (its ``module`` after ``stacklevel``) that still show.
OUR_MODULES = r"(edxml|signing|storage|server)(\..*)?$"


def quiet_library_warnings() -> None:
    """Ignore other packages' warnings, show ours; a no-op when ``-W``/``PYTHONWARNINGS`` is set.

    A library's warning is addressed to us, the developers, not to the clerk running a command:
    hidden when raised from another package's code, shown when raised from ours (``edxml``,
    ``signing``, ``storage``, ``server``), our own deprecations included. Whoever sets ``-W`` or
    ``PYTHONWARNINGS`` asked to see warnings.
    """
    if sys.warnoptions:
        return
    warnings.filterwarnings("ignore")
    # Inserted in front of the line above, so checked first: our modules' warnings, once each.
    warnings.filterwarnings("default", module=OUR_MODULES)


# What a pool of worker processes imports first (signing.isolation.VerifierPool's ``preload``):
# the console module, whose import hides other packages' warnings (server/cli/console.py).
PROCESS_SETUP = ("server.cli.console",)

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (CliError, EdxmlError, OSError)


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
