"""``lienthong vdxp ...`` and ``lienthong agency secret ...``: the national axis protocol.

Client side (talks to any VDXP axis, this one at ``http://HOST:PORT/vdxp`` or the national one)::

    lienthong vdxp send FILE  [--to ID ...]   sendEdoc (document or status package)
    lienthong vdxp list       [--status]      getReceivedEdocList
    lienthong vdxp sent                       getSentEdocList
    lienthong vdxp get DOCID  [-o FILE]       getEdoc
    lienthong vdxp ack DOCID  [--state S]     updateStatus (done by default)
    lienthong vdxp agencies   [--qd20]        getAgenciesList(QD20)

each with ``--endpoint URL --system-id ID`` (or ``LIENTHONG_VDXP_ENDPOINT`` /
``LIENTHONG_VDXP_SYSTEM_ID``) and the secret from ``LIENTHONG_VDXP_SECRET`` or
``--secret-file FILE``; never on the command line, where other users could read it.

Administration side (works on the local data directory, like ``agency add``)::

    lienthong agency secret create ORGANID --system-id ID   give an agency VDXP credentials
    lienthong agency secret rotate ORGANID                  a new secret; the old one stops

Both print the secret once on stdout. ``agency add ... --system-id ID`` does the same for a new
agency (see :func:`add_agency_options` and :func:`create_after_add`, called by admin.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import edxml
from server.cli import CliError
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.runtime.config import Config
from server.vdxp.client import TRANSPORT_STATES, VdxpClient, VdxpClientError
from server.vdxp.credentials import check_system_id, create_credentials, load_key, rotate_secret
from server.vdxp.errors import VdxpError
from storage.db import Database

T = TypeVar("T")

ENDPOINT_ENV = "LIENTHONG_VDXP_ENDPOINT"
SYSTEM_ID_ENV = "LIENTHONG_VDXP_SYSTEM_ID"
SECRET_ENV = "LIENTHONG_VDXP_SECRET"  # noqa: S105 (the name of a variable, not a secret)


def register(sub: Any) -> None:
    """Add the ``vdxp`` command group; ``agency secret`` is added by :func:`register_agency`."""
    vdxp = sub.add_parser("vdxp", help="talk to an axis over the national VDXP protocol")
    cmds = vdxp.add_subparsers(dest="vdxp_command", metavar="SUBCOMMAND")
    cmds.required = True

    send = cmds.add_parser("send", help="send an edXML package (sendEdoc)")
    send.add_argument("file", type=Path, metavar="FILE", help="the .edxml package")
    send.add_argument(
        "--to",
        action="append",
        metavar="ORGANID",
        help="recipient (repeatable; default: the package's To, or for a status its ResponseFor)",
    )
    send.add_argument("--from", dest="sender", metavar="ORGANID", help="default: package From")
    _client_options(send)
    send.set_defaults(func=cmd_send)

    lst = cmds.add_parser("list", help="items waiting for this agency (getReceivedEdocList)")
    lst.add_argument("--status", action="store_true", help="status packages instead of documents")
    _client_options(lst)
    lst.set_defaults(func=cmd_list)

    sent = cmds.add_parser("sent", help="what this agency sent (getSentEdocList)")
    _client_options(sent)
    sent.set_defaults(func=cmd_sent)

    get = cmds.add_parser("get", help="fetch a package (getEdoc)")
    get.add_argument("doc_id", metavar="DOCID")
    get.add_argument("-o", "--output", type=Path, metavar="FILE", help="default: DOCID.edxml")
    _client_options(get)
    get.set_defaults(func=cmd_get)

    ack = cmds.add_parser("ack", help="mark a fetched item done/fail/processing (updateStatus)")
    ack.add_argument("doc_id", metavar="DOCID")
    ack.add_argument("--state", choices=TRANSPORT_STATES, default="done")
    _client_options(ack)
    ack.set_defaults(func=cmd_ack)

    agencies = cmds.add_parser("agencies", help="the axis's directory (getAgenciesList)")
    agencies.add_argument("--qd20", action="store_true", help="getAgenciesListQD20 (code102)")
    _client_options(agencies)
    agencies.set_defaults(func=cmd_agencies)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"VDXP endpoint, e.g. http://127.0.0.1:8080/vdxp (default: ${ENDPOINT_ENV})",
    )
    parser.add_argument(
        "--system-id", metavar="ID", help=f"this agency's system id (default: ${SYSTEM_ID_ENV})"
    )
    parser.add_argument(
        "--secret-file",
        type=Path,
        metavar="FILE",
        help=f"file holding the secret (default: ${SECRET_ENV})",
    )


# --- client commands ---------------------------------------------------------------------


def _client(args: argparse.Namespace) -> VdxpClient:
    endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
    system_id = args.system_id or os.environ.get(SYSTEM_ID_ENV)
    if not endpoint:
        raise CliError(f"no VDXP endpoint: give --endpoint URL or set {ENDPOINT_ENV}")
    if not system_id:
        raise CliError(f"no system id: give --system-id ID or set {SYSTEM_ID_ENV}")
    if args.secret_file is not None:
        try:
            secret = args.secret_file.read_text("utf-8").strip()
        except OSError as exc:
            raise CliError(f"secret file {args.secret_file}: {exc.strerror}") from None
    else:
        secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise CliError(f"no secret: set {SECRET_ENV} or give --secret-file FILE")
    return VdxpClient(endpoint, system_id, secret)


def _run(args: argparse.Namespace, work: Callable[[VdxpClient], Awaitable[T]]) -> T:
    """Run ``work`` with a client; every protocol or network failure becomes one line."""

    async def main() -> T:
        async with _client(args) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except VdxpClientError as exc:
        raise CliError(str(exc)) from None


def _recipients(obj: edxml.Envelope | edxml.StatusMessage) -> list[str]:
    if isinstance(obj, edxml.StatusMessage):
        return [obj.response_for.organ_id] if obj.response_for.organ_id else []
    return list(dict.fromkeys(o.organ_id for o in obj.header.to))


def cmd_send(args: argparse.Namespace) -> int:
    """Send a package: From/To default to the package's own, the message type follows it."""
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror}") from None
    obj = edxml.parse(data)
    is_status = isinstance(obj, edxml.StatusMessage)
    own = obj.from_ if isinstance(obj, edxml.StatusMessage) else obj.header.from_
    sender = args.sender or own.organ_id
    recipients = args.to or _recipients(obj)
    if not recipients:
        raise CliError("the package names no recipient: give --to ORGANID")
    message_type = "status" if is_status else "edoc"

    doc_id = _run(
        args,
        lambda c: c.send_edoc(data, sender=sender, to=recipients, message_type=message_type),
    )
    print(f"Sent {args.file} ({message_type}) to {', '.join(recipients)}: DocId {doc_id}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the waiting items as a table."""
    message_type = "status" if args.status else "edoc"
    items = _run(args, lambda c: c.get_received_edoc_list(message_type))
    if not items:
        print(f"Nothing waiting ({message_type}).")
        return 0
    rows = [(i.get("docId"), i.get("from"), i.get("created_time"), i.get("status")) for i in items]
    print(render_table(("DOCID", "FROM", "CREATED", "STATUS"), rows))
    return 0


def cmd_sent(args: argparse.Namespace) -> int:
    """Print the sent documents, one line per recipient."""
    items = _run(args, lambda c: c.get_sent_edoc_list())
    if not items:
        print("Nothing sent yet.")
        return 0
    rows = [
        (
            i.get("senderDocId"),
            i.get("toCode"),
            i.get("sentTime"),
            i.get("receiveStatus"),
            i.get("title"),
        )
        for i in items
    ]
    print(render_table(("DOCID", "TO", "SENT", "RECEIVED", "TITLE"), rows))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Fetch a package into a file (never overwrites silently a different file name)."""
    data = _run(args, lambda c: c.get_edoc(args.doc_id))
    target: Path = args.output or Path(f"{args.doc_id}.edxml")
    if str(target) == "-":
        sys.stdout.buffer.write(data)
        return 0
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise CliError(f"{target}: {exc.strerror}") from None
    print(f"Saved {args.doc_id} to {target} ({len(data)} bytes).")
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    """Mark a fetched item (updateStatus)."""
    _run(args, lambda c: c.update_status(args.doc_id, args.state))
    print(f"Marked {args.doc_id} {args.state}.")
    return 0


def cmd_agencies(args: argparse.Namespace) -> int:
    """Print the axis's directory."""
    items = _run(args, lambda c: c.get_agencies_list(qd20=args.qd20))
    rows = [(i.get("code"), i.get("name"), i.get("pid"), i.get("mail")) for i in items]
    print(render_table(("CODE", "NAME", "PARENT", "MAIL"), rows))
    return 0


# --- administration: system ids and secrets ----------------------------------------------


def _with_database(config: Config, work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    try:
        return with_database(config, work)
    except VdxpError as exc:
        raise CliError(exc.desc) from None


def _key(config: Config) -> bytes:
    try:
        return load_key(config.storage.data_dir, create=True)
    except VdxpError as exc:
        raise CliError(exc.desc) from None


def _print_secret(organ_id: str, system_id: str, secret: str, what: str) -> None:
    print(
        f"{what} for {organ_id}: system id {system_id}. The secret below is shown only this "
        "once (it is stored encrypted); give it to the agency's software:",
        file=sys.stderr,
    )
    print(secret)


def register_agency(agency_cmds: Any) -> None:
    """Add ``secret create`` and ``secret rotate`` under ``lienthong agency``."""
    secret = agency_cmds.add_parser("secret", help="VDXP system id and secret of an agency")
    secret_cmds = secret.add_subparsers(dest="secret_command", metavar="SUBCOMMAND")
    secret_cmds.required = True
    create = secret_cmds.add_parser("create", help="give an agency a system id and a secret")
    create.add_argument("organ_id", metavar="ORGANID")
    create.add_argument("--system-id", required=True, metavar="ID")
    add_local_options(create)
    create.set_defaults(func=cmd_secret_create)
    rotate = secret_cmds.add_parser("rotate", help="replace an agency's secret (print it once)")
    rotate.add_argument("organ_id", metavar="ORGANID")
    add_local_options(rotate)
    rotate.set_defaults(func=cmd_secret_rotate)


def add_agency_options(add: argparse.ArgumentParser) -> None:
    """Add ``--system-id`` to ``lienthong agency add``."""
    add.add_argument(
        "--system-id",
        metavar="ID",
        help="also give the agency VDXP credentials with this system id (prints the secret once)",
    )


def checked_system_id(args: argparse.Namespace) -> str | None:
    """The ``--system-id`` of ``agency add``, checked before anything is written."""
    value = getattr(args, "system_id", None)
    if value is None:
        return None
    try:
        return check_system_id(value)
    except VdxpError as exc:
        raise CliError(exc.desc) from None


def create_after_add(config: Config, organ_id: str, system_id: str) -> None:
    """Create credentials for an agency just added, and print the secret once."""
    key = _key(config)
    try:
        secret = _with_database(config, lambda db: create_credentials(db, organ_id, system_id, key))
    except CliError as exc:
        raise CliError(
            f"agency {organ_id} was added but has no VDXP credentials: {exc} "
            f"(retry with `lienthong agency secret create {organ_id} --system-id ID`)"
        ) from None
    _print_secret(organ_id, system_id, secret, "VDXP credentials created")


def cmd_secret_create(args: argparse.Namespace) -> int:
    """Give an existing agency a system id and a new secret."""
    config = local_config(args)
    organ_id = str(edxml.OrganId.parse(args.organ_id))
    system_id = checked_system_id(args)
    assert system_id is not None
    key = _key(config)
    secret = _with_database(config, lambda db: create_credentials(db, organ_id, system_id, key))
    _print_secret(organ_id, system_id, secret, "VDXP credentials created")
    return 0


def cmd_secret_rotate(args: argparse.Namespace) -> int:
    """Replace an agency's secret; the previous one stops working at once."""
    config = local_config(args)
    organ_id = str(edxml.OrganId.parse(args.organ_id))
    key = _key(config)
    system_id, secret = _with_database(config, lambda db: rotate_secret(db, organ_id, key))
    _print_secret(organ_id, system_id, secret, "New VDXP secret")
    return 0
