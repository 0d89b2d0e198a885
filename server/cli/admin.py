"""``lienthong init | agency | token | demo``: administration of a local data directory.

These commands open the metadata database directly (the server may be running: SQLite's WAL
and busy timeout let both write), so they need no token. Tokens are printed once and only
their SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any, TypeVar

from edxml import OrganId
from edxml.model import VN_TZ
from server.cli import CliError, agency_cert_cmd, vdxp_cmd
from server.cli.database import with_database as _with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.demo import content as demo
from server.dossiers.catalogue import StoreReport, store_procedures
from server.dossiers.procedure_files import read_procedure_file
from server.runtime.audit import ADMIN, record
from server.runtime.datadir import prepare_data_dir
from server.runtime.tokens import new_token
from storage.db import Database, load_migrations
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

T = TypeVar("T")

DEMO_TOKEN_LABEL = "demo"  # noqa: S105 (a label, not a secret)


def register(sub: Any) -> None:
    """Add ``init``, ``agency``, ``token`` and ``demo`` to the ``lienthong`` parser."""
    init = sub.add_parser("init", help="create the data directory and database (idempotent)")
    add_local_options(init)
    init.set_defaults(func=cmd_init)

    agency = sub.add_parser("agency", help="agencies (cơ quan) hosted by this axis")
    agency_cmds = agency.add_subparsers(dest="agency_command", metavar="SUBCOMMAND")
    agency_cmds.required = True
    add = agency_cmds.add_parser("add", help="add an agency")
    add.add_argument("organ_id", metavar="ORGANID", help="mã định danh, e.g. 000.00.00.G22")
    add.add_argument("--name", required=True, help="display name, e.g. 'UBND tỉnh Nghệ An'")
    add.add_argument("--parent", metavar="ORGANID", help="the parent agency (must exist)")
    add.add_argument("--email", help="contact email of the agency's văn thư")
    vdxp_cmd.add_agency_options(add)
    add_local_options(add)
    add.set_defaults(func=cmd_agency_add)
    lst = agency_cmds.add_parser("list", help="list the agencies")
    add_local_options(lst)
    lst.set_defaults(func=cmd_agency_list)
    grant = agency_cmds.add_parser(
        "grant", help="create a token with a role for an agency, e.g. archivist (read-only)"
    )
    grant.add_argument("organ_id", metavar="ORGANID")
    grant.add_argument("role", choices=["archivist"], help="archivist: reads the archive only")
    grant.add_argument("--label", help="who the token is for, e.g. 'Phòng Lưu trữ'")
    add_local_options(grant)
    grant.set_defaults(func=cmd_token_create)
    vdxp_cmd.register_agency(agency_cmds)  # agency secret create|rotate (VDXP, issue 5)
    agency_cert_cmd.register_agency(agency_cmds)  # agency cert add|list|remove|require (mTLS)

    token = sub.add_parser("token", help="bearer tokens of agency systems")
    token_cmds = token.add_subparsers(dest="token_command", metavar="SUBCOMMAND")
    token_cmds.required = True
    create = token_cmds.add_parser("create", help="create a token and print it once")
    create.add_argument("organ_id", metavar="ORGANID")
    create.add_argument("--label", help="what the token is for, e.g. 'QLVB production'")
    create.add_argument(
        "--role",
        choices=["agency", "admin"],
        help="admin: reads /metrics and the audit log, nothing else",
    )
    add_local_options(create)
    create.set_defaults(func=cmd_token_create)
    revoke = token_cmds.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="TOKEN_ID")
    add_local_options(revoke)
    revoke.set_defaults(func=cmd_token_revoke)
    tlist = token_cmds.add_parser("list", help="list an agency's tokens (never the tokens)")
    tlist.add_argument("organ_id", metavar="ORGANID")
    add_local_options(tlist)
    tlist.set_defaults(func=cmd_token_list)

    demo_cmd = sub.add_parser(
        "demo", help="seed demo agencies, write a demo package, print tokens and curl lines"
    )
    demo_cmd.add_argument(
        "--pki-port",
        type=int,
        metavar="PORT",
        help="port of the demo PKI's OCSP/CRL/TSA (default: as generated before, else 9780)",
    )
    add_local_options(demo_cmd)
    demo_cmd.set_defaults(func=cmd_demo)


# --- plumbing ---------------------------------------------------------------------------


def _parse_organ_id(text: str, what: str) -> OrganId:
    organ = OrganId.parse(text)  # InvalidOrganIdError is an EdxmlError: printed as one line
    if organ.is_test:
        print(
            f"lienthong: note: {what} {organ} is a test id (lowercase, no hierarchy); "
            "accepted for test systems only",
            file=sys.stderr,
        )
    return organ


def _local_time(value: datetime | None) -> str | None:
    """A stored UTC time as shown to Vietnamese users: dd/mm/yyyy HH:MM in +07:00."""
    return None if value is None else value.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


# --- init -------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Create the data directory, object store and database (applying migrations)."""
    config = local_config(args)
    existed = config.database.postgresql or config.db_path.is_file()
    made_private = prepare_data_dir(config)

    async def count(database: Database) -> int:
        async with database.reader() as tx:
            row = await tx.fetchone("SELECT COUNT(*) FROM agencies")
        return int(row[0]) if row is not None else 0

    agencies = _with_database(config, count, create=True)
    schema = max((m.version for m in load_migrations()), default=0)
    state = "already initialised" if existed else "initialised"
    print(f"Data directory {config.storage.data_dir.resolve()} {state}.")
    where = config.database.url or config.db_path.resolve()
    print(f"  database: {where} (schema version {schema}, {agencies} agencies)")
    print(f"  objects:  {config.objects_dir.resolve()}")
    if made_private is not None and made_private.changed:
        print(f"  made {made_private.changed} file(s) and directories private (0600/0700)")
    if made_private is not None and made_private.failed:
        print(
            f"lienthong: warning: {made_private.failed} file(s) could not be made private "
            f"(first: {made_private.first_failure})",
            file=sys.stderr,
        )
    return 0


# --- agency -----------------------------------------------------------------------------


def cmd_agency_add(args: argparse.Namespace) -> int:
    """Add one agency; its id must parse and its parent (if any) must already exist."""
    config = local_config(args)
    organ = _parse_organ_id(args.organ_id, "agency")
    name = " ".join(args.name.split())
    if not name:
        raise CliError("--name must not be empty")
    parent = _parse_organ_id(args.parent, "parent") if args.parent else None
    if parent is not None and parent == organ:
        raise CliError(f"agency {organ} cannot be its own parent")
    if parent is not None and not organ.is_test and not organ.is_under(parent):
        # The directory may know better than the id (re-organisations keep old ids): allowed.
        print(
            f"lienthong: note: by its id, {organ} is not under {parent}; recorded as given",
            file=sys.stderr,
        )
    email = args.email.strip() if args.email else None
    system_id = vdxp_cmd.checked_system_id(args)

    async def add(database: Database) -> None:
        async with database.transaction() as tx:
            await AgencyRepo(tx).add(
                str(organ), name, str(parent) if parent is not None else None, email
            )
            await record(tx, ADMIN, "agency.add", [str(organ)], {"parent": parent and str(parent)})

    _with_database(config, add)
    under = f" under {parent}" if parent is not None else ""
    # With --system-id the secret is stdout's only line (SECRET=$(lienthong agency add ...)).
    print(f"Added agency {organ} ({name}){under}.", file=sys.stderr if system_id else sys.stdout)
    if system_id is not None:
        vdxp_cmd.create_after_add(config, str(organ), system_id)
    return 0


def cmd_agency_list(args: argparse.Namespace) -> int:
    """Print every agency as a table (Vietnamese names intact, columns aligned)."""
    config = local_config(args)

    async def load(database: Database) -> list[Any]:
        async with database.reader() as tx:
            return list(await AgencyRepo(tx).list())

    agencies = _with_database(config, load)
    if not agencies:
        print("No agencies yet: add one with `lienthong agency add ORGANID --name NAME`.")
        return 0
    rows = [(a.organ_id, a.name, a.parent_id, a.email, _local_time(a.created_at)) for a in agencies]
    print(render_table(("ORGAN ID", "NAME", "PARENT", "EMAIL", "CREATED (+07)"), rows))
    return 0


# --- token ------------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create a bearer token for an agency; the token goes to stdout (once), the rest to stderr."""
    config = local_config(args)
    organ_id = str(OrganId.parse(args.organ_id))
    token, token_hash = new_token()

    async def create(database: Database) -> str:
        async with database.transaction() as tx:
            if await AgencyRepo(tx).get(organ_id) is None:
                raise CliError(f"agency {organ_id} is not known (see `lienthong agency list`)")
            roles = [args.role] if getattr(args, "role", None) else ["agency"]
            await record(tx, ADMIN, "token.create", [organ_id], {"roles": roles})
            return await TokenRepo(tx).create(organ_id, token_hash, label=args.label, roles=roles)

    token_id = _with_database(config, create)
    print(
        f"Token {token_id} created for {organ_id}. It is shown only this once; only its hash "
        "is stored:",
        file=sys.stderr,
    )
    print(token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by id; error if unknown or already revoked."""
    config = local_config(args)

    async def revoke(database: Database) -> bool:
        async with database.transaction() as tx:
            revoked = await TokenRepo(tx).revoke(args.token_id)
            if revoked:
                await record(tx, ADMIN, "token.revoke", [args.token_id])
            return revoked

    if not _with_database(config, revoke):
        raise CliError(f"no active token with id {args.token_id}")
    print(f"Revoked token {args.token_id}.")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    """Print an agency's tokens (ids, labels, times; never a token or its hash)."""
    config = local_config(args)
    organ_id = str(OrganId.parse(args.organ_id))

    async def load(database: Database) -> list[Any]:
        async with database.reader() as tx:
            if await AgencyRepo(tx).get(organ_id) is None:
                raise CliError(f"agency {organ_id} is not known (see `lienthong agency list`)")
            return list(await TokenRepo(tx).list(organ_id))

    tokens = _with_database(config, load)
    if not tokens:
        print(f"{organ_id} has no tokens: create one with `lienthong token create {organ_id}`.")
        return 0
    rows = [
        (
            t.token_id,
            t.label,
            " ".join(sorted(t.roles)),
            _local_time(t.created_at),
            _local_time(t.revoked_at) if t.revoked_at else "active",
        )
        for t in tokens
    ]
    print(render_table(("TOKEN ID", "LABEL", "ROLES", "CREATED (+07)", "REVOKED"), rows))
    return 0


# --- demo -------------------------------------------------------------------------------


def token_variable(organ_id: str) -> str:
    """A shell variable name for an agency's demo token: 000.00.12.H41 -> TOKEN_12_H41."""
    groups = organ_id.split(".")
    while len(groups) > 1 and not groups[0].strip("0"):
        groups.pop(0)
    return "TOKEN_" + "_".join(groups).upper()


def cmd_demo(args: argparse.Namespace) -> int:
    """Seed the demo agencies (idempotent), write the demo files, the demo PKI with its
    SoftHSM2 tokens and the demo config (server/demo/setup.py); print fresh demo tokens, VDXP
    secrets and the guide."""
    from server.demo import setup as demo_setup

    config = local_config(args)
    if args.pki_port is not None and not 1 <= args.pki_port <= 65535:
        raise CliError(f"--pki-port {args.pki_port} is not a TCP port")
    demo.check_demo_agencies()
    prepare_data_dir(config, tighten_existing=False)
    demo_dir = config.storage.data_dir / "demo"
    demo.write_demo_package(demo_dir)
    demo.write_demo_status(demo_dir)
    demo.write_demo_pdf(demo_dir)
    try:
        pki = demo_setup.ensure_pki(config.storage.data_dir, args.pki_port)
    except demo_setup.DemoSetupError as exc:
        raise CliError(str(exc)) from None

    procedures = read_procedure_file(demo.DEMO_PROCEDURES)
    from server.cli import demo_feedback

    async def seed(database: Database) -> tuple[list[str], dict[str, str], StoreReport]:
        added: list[str] = []
        tokens: dict[str, str] = {}
        async with database.transaction() as tx:
            agencies = AgencyRepo(tx)
            for agency in demo.DEMO_AGENCIES:  # parents come first in the list
                if await agencies.get(agency.organ_id) is None:
                    await agencies.add(agency.organ_id, agency.name, agency.parent_id, agency.email)
                    added.append(agency.organ_id)
                token, token_hash = new_token()
                await TokenRepo(tx).create(agency.organ_id, token_hash, label=DEMO_TOKEN_LABEL)
                tokens[agency.organ_id] = token
            report = await store_procedures(tx, procedures, ADMIN, "demo")
            await demo_feedback.seed_demo_categories(tx)  # citizen feedback (issue 17)
            tokens[demo_feedback.DEMO_APP] = await demo_feedback.fresh_demo_open311_key(tx)
        return added, tokens, report

    added, tokens, catalogue = _with_database(config, seed, create=True)
    credentials = _with_database(
        config, lambda db: demo_setup.seed_vdxp(db, config.storage.data_dir)
    )
    from server.cli.demo_dossiers import seed_demo_dossiers

    dossier_codes = _with_database(config, lambda db: seed_demo_dossiers(config, db))
    from server.cli.demo_traffic import seed_demo_traffic

    traffic = _with_database(config, lambda db: seed_demo_traffic(config, db))
    config_path = demo_setup.write_config(config, pki)
    print(
        f"Demo data in {config.storage.data_dir.resolve()}: "
        f"{len(added)} agencies added, {len(demo.DEMO_AGENCIES) - len(added)} already there; "
        f"procedures: {catalogue.summary()} (`lienthong procedure list`); "
        "feedback categories: `lienthong feedback category list`; "
        f"dashboard traffic: {traffic.summary()}."
    )
    print()
    print(
        render_table(
            ("ORGAN ID", "NAME", "PARENT"),
            [(a.organ_id, a.name, a.parent_id) for a in demo.DEMO_AGENCIES],
        )
    )
    print()
    print("Fresh demo tokens (shown once; paste these lines into your shell):")
    for agency in demo.DEMO_AGENCIES:
        print(f"export {token_variable(agency.organ_id)}={tokens[agency.organ_id]}")
    print()
    print("\n".join(demo_setup.vdxp_lines(config.base_url, credentials)))
    print()
    open311_key = tokens[demo_feedback.DEMO_APP]
    print("\n".join(demo_feedback.open311_lines(config.base_url, open311_key)))
    print()
    print(f"Demo config (seal, TSA, test PKI; DEVELOPMENT ONLY): {config_path}")
    print(
        demo_setup.guide(
            config,
            pki,
            sender_var=token_variable(demo.DEMO_SENDER),
            recipient_var=token_variable(demo.DEMO_RECIPIENT),
        )
    )
    print()
    print("Public lookup of the demo dossiers (tra cứu hồ sơ, no token; the slips' QR codes):")
    for code in dossier_codes:
        print(f"  {config.base_url}/tra-cuu?ma={code}")
    return 0
