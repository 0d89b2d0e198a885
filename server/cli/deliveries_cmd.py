"""``lienthong deliveries list|retry`` and ``lienthong route webhook|axis|list|remove``.

Administration of push delivery and federation on a local data directory (docs/delivery.md,
docs/federation.md). Like the other local commands they open the database directly; a running
server picks the changes up at its next look at the queue.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from server.cli import CliError
from server.cli.admin import _local_time, _parse_organ_id
from server.cli.database import with_database
from server.cli.options import add_local_options, local_config
from server.cli.table import render_table
from server.runtime.secretbox import SecretBox, SecretsError
from storage.db import Database
from storage.ids import utcnow
from storage.repos.routes import PUSH_STATES, PushRepo, RouteRepo

T = TypeVar("T")


def register(sub: Any) -> None:
    """Add ``deliveries`` and ``route`` to the ``lienthong`` parser."""
    deliveries = sub.add_parser("deliveries", help="pushed deliveries and the dead-letter state")
    cmds = deliveries.add_subparsers(dest="deliveries_command", metavar="SUBCOMMAND")
    cmds.required = True
    lst = cmds.add_parser("list", help="list deliveries that are (or were) pushed")
    lst.add_argument("--state", choices=sorted(PUSH_STATES), help="only this state (dead...)")
    lst.add_argument("--recipient", metavar="ORGANID")
    lst.add_argument("--sender", metavar="ORGANID")
    lst.add_argument("--all", action="store_true", help="pulled deliveries too")
    lst.add_argument("--limit", type=int, default=100)
    add_local_options(lst)
    lst.set_defaults(func=cmd_list)
    retry = cmds.add_parser("retry", help="put dead deliveries back in the queue")
    retry.add_argument("delivery_ids", nargs="*", metavar="DELIVERY_ID")
    retry.add_argument("--all-dead", action="store_true", help="every dead delivery")
    add_local_options(retry)
    retry.set_defaults(func=cmd_retry)

    route = sub.add_parser("route", help="webhooks of agencies and links to other axes")
    rcmds = route.add_subparsers(dest="route_command", metavar="SUBCOMMAND")
    rcmds.required = True
    hook = rcmds.add_parser("webhook", help="push an agency's packages to its webhook")
    hook.add_argument("organ_id", metavar="ORGANID")
    hook.add_argument("--url", required=True)
    hook.add_argument("--secret-file", type=Path, required=True, metavar="FILE")
    add_local_options(hook)
    hook.set_defaults(func=cmd_webhook)
    axis = rcmds.add_parser("axis", help="forward packages for some ids to another axis")
    axis.add_argument("organ_id", metavar="AXIS_ID", help="the other axis's id (its account)")
    axis.add_argument("--url", required=True, help="base URL of the other axis")
    axis.add_argument("--token-file", type=Path, required=True, metavar="FILE")
    axis.add_argument("--hosts", nargs="+", required=True, metavar="PATTERN")
    add_local_options(axis)
    axis.set_defaults(func=cmd_axis)
    rlist = rcmds.add_parser("list", help="list webhooks and axis links (never secrets)")
    add_local_options(rlist)
    rlist.set_defaults(func=cmd_route_list)
    remove = rcmds.add_parser("remove", help="remove an agency's webhook or an axis link")
    remove.add_argument("organ_id", metavar="ORGANID")
    add_local_options(remove)
    remove.set_defaults(func=cmd_route_remove)


def _run(args: argparse.Namespace, work: Callable[[Database], Awaitable[T]]) -> T:
    try:
        return with_database(local_config(args), work)
    except SecretsError as exc:
        raise CliError(str(exc)) from None


def _secrets(args: argparse.Namespace) -> SecretBox:
    """The box sealing webhook secrets and axis tokens of the local data directory."""
    return SecretBox(local_config(args).storage.data_dir)


def _read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text("utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if len(value) < 16:
        raise CliError(f"the {what} in {path} must be at least 16 characters")
    return value


def cmd_list(args: argparse.Namespace) -> int:
    """Print deliveries with their push state, attempts and last error."""
    if args.limit < 1:
        raise CliError("--limit must be at least 1")

    async def work(db: Database) -> list[Any]:
        async with db.reader() as tx:
            return await PushRepo(tx).list(
                state=args.state,
                recipient=args.recipient,
                sender=args.sender,
                pushed_only=not args.all,
                limit=args.limit,
            )

    rows = _run(args, work)
    print(
        render_table(
            ["DELIVERY", "SENDER", "RECIPIENT", "KIND", "STATE", "TRIES", "NEXT", "LAST ERROR"],
            [
                [
                    r.delivery_id,
                    r.sender,
                    r.recipient,
                    r.kind,
                    r.state,
                    r.attempts,
                    _local_time(r.next_attempt_at),
                    r.last_error,
                ]
                for r in rows
            ],
        )
    )
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    """Revive dead deliveries (named ones, or all with --all-dead)."""
    if not args.delivery_ids and not args.all_dead:
        raise CliError("name the deliveries to retry, or pass --all-dead")

    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            ids = None if args.all_dead else args.delivery_ids
            return await PushRepo(tx).revive(ids, utcnow())

    count = _run(args, work)
    if not count and not args.all_dead:
        # Named deliveries of which none is dead (unknown, or not in the dead-letter state):
        # an error, not a count, so a script sees the failure on stderr.
        raise CliError(
            f"no dead delivery with id {', '.join(args.delivery_ids)}: nothing queued again"
        )
    print(f"{count} dead deliver{'y' if count == 1 else 'ies'} queued again")
    return 0


def cmd_webhook(args: argparse.Namespace) -> int:
    """Register an agency's webhook and schedule its waiting packages."""
    organ = str(_parse_organ_id(args.organ_id, "agency"))
    if not args.url.startswith(("http://", "https://")):
        raise CliError(f"--url {args.url!r} is not an http(s) URL")
    secret = _read_secret(args.secret_file, "webhook secret")

    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            await RouteRepo(tx, _secrets(args)).set_webhook(organ, args.url, secret)
            return await PushRepo(tx).schedule_recipient(organ, utcnow())

    waiting = _run(args, work)
    print(f"{organ} is pushed to {args.url} ({waiting} waiting package(s) scheduled)")
    return 0


def cmd_axis(args: argparse.Namespace) -> int:
    """Link another axis (its account here must exist: `lienthong agency add AXIS_ID`)."""
    organ = str(_parse_organ_id(args.organ_id, "axis"))
    if not args.url.startswith(("http://", "https://")):
        raise CliError(f"--url {args.url!r} is not an http(s) URL")
    token = _read_secret(args.token_file, "token")

    async def work(db: Database) -> None:
        async with db.transaction() as tx:
            await RouteRepo(tx, _secrets(args)).set_link(
                organ, args.url.rstrip("/"), token, args.hosts
            )

    _run(args, work)
    print(f"packages for {' '.join(args.hosts)} go to the axis {organ} at {args.url}")
    return 0


def cmd_route_list(args: argparse.Namespace) -> int:
    """Print the webhooks and axis links."""

    async def work(db: Database) -> list[list[object]]:
        async with db.reader() as tx:
            repo = RouteRepo(tx, _secrets(args))
            rows: list[list[object]] = [
                [h.organ_id, "webhook", h.url, None] for h in await repo.webhooks()
            ]
            rows += [[li.organ_id, "axis", li.url, " ".join(li.hosts)] for li in await repo.links()]
        return rows

    print(render_table(["ORGANID", "KIND", "URL", "HOSTS"], _run(args, work)))
    return 0


def cmd_route_remove(args: argparse.Namespace) -> int:
    """Remove a webhook (its waiting packages stay in the inbox) or an axis link."""

    async def work(db: Database) -> bool:
        async with db.transaction() as tx:
            repo = RouteRepo(tx, _secrets(args))
            hook = await repo.remove_webhook(args.organ_id)
            if hook:
                await PushRepo(tx).unschedule_recipient(args.organ_id)
            return hook or await repo.remove_link(args.organ_id)

    if not _run(args, work):
        raise CliError(f"{args.organ_id} has no webhook and is no axis link")
    print(f"route of {args.organ_id} removed")
    return 0
