"""``lienthong agency cert add | list | remove | require``: client certificates (mTLS) bound to
agencies (server/http/client_certs.py, docs/operations.md "TLS and client certificates").

Like the other ``agency`` commands they open the database directly (the server may run).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edxml import OrganId
from edxml.model import VN_TZ
from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.runtime.audit import ADMIN, record
from server.runtime.tls import fingerprint
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.certificates import CertificateRepo

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def register_agency(agency_cmds: Any) -> None:
    """Add ``agency cert ...`` under ``lienthong agency``."""
    cert = agency_cmds.add_parser("cert", help="client certificates (mTLS) of an agency")
    cmds = cert.add_subparsers(dest="cert_command", metavar="SUBCOMMAND")
    cmds.required = True
    add = cmds.add_parser("add", help="bind a client certificate (PEM or DER) to an agency")
    add.add_argument("organ_id", metavar="ORGANID")
    add.add_argument("file", metavar="FILE", type=Path, help="the certificate (PEM or DER)")
    add.add_argument("--label", help="what system holds it, e.g. 'QLVB production'")
    add.add_argument(
        "--require",
        action="store_true",
        help="from now on the agency must call with one of its certificates (no token alone)",
    )
    add_local_options(add)
    add.set_defaults(func=cmd_cert_add)
    lst = cmds.add_parser("list", help="list an agency's certificates (fingerprints)")
    lst.add_argument("organ_id", metavar="ORGANID")
    add_local_options(lst)
    lst.set_defaults(func=cmd_cert_list)
    remove = cmds.add_parser("remove", help="unbind a certificate (it stops working at once)")
    remove.add_argument("organ_id", metavar="ORGANID")
    remove.add_argument("fingerprint", metavar="SHA256", help="as `agency cert list` shows it")
    add_local_options(remove)
    remove.set_defaults(func=cmd_cert_remove)
    require = cmds.add_parser(
        "require", help="whether the agency must call with its certificate (e.g. another axis)"
    )
    require.add_argument("organ_id", metavar="ORGANID")
    require.add_argument("--off", action="store_true", help="accept its bearer tokens alone again")
    add_local_options(require)
    require.set_defaults(func=cmd_cert_require)


def read_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM or DER file; CliError (one line) otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)[0]
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CliError(f"{path} holds no X.509 certificate (PEM or DER)") from None


def _organ(text: str) -> str:
    return str(OrganId.parse(text))  # InvalidOrganIdError: printed as one line


async def _known(tx: Any, organ_id: str) -> None:
    if await AgencyRepo(tx).get(organ_id) is None:
        raise CliError(f"agency {organ_id} is not known (see `lienthong agency list`)")


def cmd_cert_add(args: argparse.Namespace) -> int:
    """Bind a certificate to an agency by its SHA-256 fingerprint; print the fingerprint."""
    config = local_config(args)
    organ_id = _organ(args.organ_id)
    cert = read_certificate(args.file)
    if cert.not_valid_after_utc <= datetime.now(UTC):
        raise CliError(
            f"{args.file}: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    digest = fingerprint(cert.public_bytes(Encoding.DER))
    subject = cert.subject.rfc4514_string()

    async def add(database: Database) -> None:
        async with database.transaction() as tx:
            await _known(tx, organ_id)
            certs = CertificateRepo(tx)
            await certs.bind(digest, organ_id, subject, cert.not_valid_after_utc, args.label)
            if args.require:
                await certs.set_required(organ_id, True)
            details = {"sha256": digest, "subject": subject, "require": bool(args.require)}
            await record(tx, ADMIN, "agency.cert.add", [organ_id], details)

    with_database(config, add)
    print(f"Certificate {subject} bound to {organ_id}.", file=sys.stderr)
    print(digest)
    return 0


def cmd_cert_list(args: argparse.Namespace) -> int:
    """Print an agency's bound certificates and whether it must use one."""
    config = local_config(args)
    organ_id = _organ(args.organ_id)

    async def load(database: Database) -> tuple[list[Any], bool]:
        async with database.reader() as tx:
            await _known(tx, organ_id)
            certs = CertificateRepo(tx)
            return list(await certs.list(organ_id)), await certs.required(organ_id)

    bound, required = with_database(config, load)
    rule = "required" if required else "optional (a bearer token alone is accepted)"
    print(f"{organ_id}: client certificate {rule}.")
    if bound:
        rows = [
            (
                b.fingerprint,
                b.subject,
                b.not_after.astimezone(VN_TZ).strftime("%d/%m/%Y"),
                b.label,
            )
            for b in bound
        ]
        print(render_table(("SHA-256", "SUBJECT", "VALID UNTIL", "LABEL"), rows))
    return 0


def cmd_cert_remove(args: argparse.Namespace) -> int:
    """Unbind one certificate of an agency."""
    config = local_config(args)
    organ_id = _organ(args.organ_id)
    digest = args.fingerprint.strip().lower().replace(":", "")
    if not _FINGERPRINT.match(digest):
        raise CliError(f"{args.fingerprint!r} is not a SHA-256 fingerprint (64 hex digits)")

    async def remove(database: Database) -> bool:
        async with database.transaction() as tx:
            removed = await CertificateRepo(tx).unbind(organ_id, digest)
            if removed:
                await record(tx, ADMIN, "agency.cert.remove", [organ_id], {"sha256": digest})
            return removed

    if not with_database(config, remove):
        raise CliError(f"no certificate {digest} is bound to {organ_id}")
    print(f"Certificate {digest} of {organ_id} removed.")
    return 0


def cmd_cert_require(args: argparse.Namespace) -> int:
    """Make an agency's certificate required (or optional again with --off)."""
    config = local_config(args)
    organ_id = _organ(args.organ_id)
    required = not args.off

    async def apply(database: Database) -> None:
        async with database.transaction() as tx:
            await _known(tx, organ_id)
            await CertificateRepo(tx).set_required(organ_id, required)
            await record(tx, ADMIN, "agency.cert.require", [organ_id], {"required": required})

    with_database(config, apply)
    state = "must call with its client certificate" if required else "may use bearer tokens alone"
    print(f"{organ_id} {state}.")
    return 0
