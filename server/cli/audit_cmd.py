"""``lienthong audit verify | anchor | list``: the tamper-evident audit log of a data directory.

``verify`` works offline on the database file: it names every edited, deleted or reordered
entry and checks each anchor's RFC 3161 token against the trust roots given with ``--trust``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509

from server.cli import CliError
from server.cli.database import with_database as _run
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.exchange.receipts import ReceiptError, load_certificates
from server.runtime import audit
from storage.audit import AuditRepo
from storage.db import Database

T = TypeVar("T")


def register(sub: Any) -> None:
    """Add the ``audit`` command group to the ``lienthong`` parser."""
    parser = sub.add_parser("audit", help="the tamper-evident audit log (nhật ký kiểm tra)")
    cmds = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    cmds.required = True
    verify = cmds.add_parser(
        "verify", help="check the hash chain and its timestamp anchors (offline); exit 1 if not"
    )
    add_trust_options(verify)
    add_local_options(verify)
    verify.set_defaults(func=cmd_verify)
    anchor = cmds.add_parser("anchor", help="timestamp the chain head now with the [tsa] url")
    add_local_options(anchor)
    anchor.set_defaults(func=cmd_anchor)
    lst = cmds.add_parser("list", help="print entries after a seq")
    lst.add_argument("--after", type=int, default=0, metavar="SEQ")
    lst.add_argument("--limit", type=int, default=50)
    add_local_options(lst)
    lst.set_defaults(func=cmd_list)


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    """``--trust FILE`` (root certificates) and ``--crl FILE`` (offline revocation data)."""
    parser.add_argument(
        "--trust",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="trusted root certificate(s), PEM or DER (repeatable)",
    )
    parser.add_argument(
        "--crl",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="CRL file(s): with them, revocation is checked (hard-fail); without, it is not",
    )


def trust_material(args: argparse.Namespace) -> tuple[list[x509.Certificate], list[bytes]]:
    """The certificates of every ``--trust`` file and the bytes of every ``--crl`` file."""
    roots: list[x509.Certificate] = []
    try:
        for path in args.trust:
            roots.extend(load_certificates(path))
    except ReceiptError as exc:
        raise CliError(str(exc)) from None
    crls: list[bytes] = []
    for path in args.crl:
        try:
            crls.append(Path(path).read_bytes())
        except OSError as exc:
            raise CliError(f"cannot read the CRL {path}: {exc.strerror}") from None
    # pyHanko reports expected validation failures with tracebacks at WARNING.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)
    return roots, crls


def cmd_verify(args: argparse.Namespace) -> int:
    """Print every problem (one line each, naming the seq) and a one-line verdict."""
    config = local_config(args)
    roots, crls = trust_material(args)

    async def work(database: Database) -> audit.AuditVerdict:
        return await audit.verify_audit(database, roots, crls)

    verdict = _run(config, work)
    for problem in verdict.report.problems:
        print(f"  {problem}")
    print(verdict.summary())
    return 0 if verdict.ok else 1


def cmd_anchor(args: argparse.Namespace) -> int:
    """Ask the configured TSA to timestamp the chain head, and store the token."""
    config = local_config(args)
    if not config.tsa.url:
        raise CliError("no TSA configured: set [tsa] url (or LIENTHONG_TSA_URL)")

    async def work(database: Database) -> str:
        from signing import SigningServices

        services = SigningServices(tsa_url=config.tsa.url, timeout=float(config.tsa.timeout))
        try:
            anchor = await audit.anchor_head(database, services.timestamper(), config.tsa.url)
        except audit.AnchorError as exc:
            raise CliError(str(exc)) from None
        finally:
            await services.aclose()
        if anchor is None:
            return "Nothing to anchor: the log is empty or its head is anchored already."
        return f"Anchored seq {anchor.seq} ({anchor.head_hash}) at {anchor.gen_time.isoformat()}."

    print(_run(config, work))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print a page of entries as a table."""
    config = local_config(args)
    if args.limit < 1:
        raise CliError("--limit must be at least 1")

    async def work(database: Database) -> list[Any]:
        async with database.reader() as tx:
            return list(await AuditRepo(tx).page(args.after, args.limit))

    entries = _run(config, work)
    if not entries:
        print("No entries.")
        return 0
    rows = [
        (e.seq, e.time.isoformat(timespec="seconds"), e.actor, e.action, " ".join(e.objects))
        for e in entries
    ]
    print(render_table(("SEQ", "TIME (UTC)", "ACTOR", "ACTION", "OBJECTS"), rows))
    return 0
