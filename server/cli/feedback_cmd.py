"""``lienthong feedback``: citizen feedback (phản ánh, kiến nghị; docs/feedback.md).

- ``feedback category add | list``: the categories (Open311 services), in the metadata database
  of the data directory, like ``procedure``; each change audited.
- ``feedback list | show | classify | forward | answer | publish | inbox``: officers' work, as a
  client of a running axis (``--server``/``--token`` as for ``lienthong dossier``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from server.cli import CliError
from server.cli.client import _local_time
from server.cli.database import with_database
from server.cli.dossier_cmd import _client
from server.cli.options import add_client_options, add_local_options, local_config
from server.cli.table import render_table
from server.feedback.categories import (
    TYPES,
    add_category,
    list_categories,
    read_category,
)
from server.runtime.audit import ADMIN
from storage.db import Database
from storage.repos.feedback import CategoryRow

STATUSES = (
    "received",
    "classified",
    "not_accepted",
    "transferred",
    "processing",
    "supplement",
    "answered",
    "published",
)


def register(sub: Any) -> None:
    """Add ``lienthong feedback ...`` to the parser."""
    feedback = sub.add_parser("feedback", help="citizen feedback (phản ánh, kiến nghị)")
    cmds = feedback.add_subparsers(dest="feedback_command", metavar="SUBCOMMAND")
    cmds.required = True

    category = cmds.add_parser("category", help="the feedback categories (Open311 services)")
    cat_cmds = category.add_subparsers(dest="category_command", metavar="SUBCOMMAND")
    cat_cmds.required = True
    add = cat_cmds.add_parser("add", help="add (or change) a category")
    add.add_argument("code", metavar="CODE", help="the service code, e.g. duong-hu-hong")
    add.add_argument("--name", required=True)
    add.add_argument("--agency", required=True, metavar="ORGANID", help="the responsible agency")
    add.add_argument("--description")
    add.add_argument("--group")
    add.add_argument("--keywords", metavar="A,B", help="comma-separated")
    add.add_argument("--type", choices=TYPES, default="realtime")
    add.add_argument(
        "--attributes", type=Path, metavar="FILE.json", help='Open311 {"attributes": [...]}'
    )
    add_local_options(add)
    add.set_defaults(func=cmd_category_add)
    lst = cat_cmds.add_parser("list", help="list the categories")
    lst.add_argument("--json", action="store_true", help="print them as JSON lines")
    add_local_options(lst)
    lst.set_defaults(func=cmd_category_list)

    listing = cmds.add_parser("list", help="your feedback (received or to answer)")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--category", metavar="CODE")
    listing.add_argument("--agency", metavar="ORGANID", help="only what this agency must answer")
    listing.add_argument("--overdue", action="store_true", help="only feedback past a limit")
    listing.add_argument("--json", action="store_true", help="print the items as JSON lines")
    add_client_options(listing)
    listing.set_defaults(func=cmd_list)

    show = cmds.add_parser("show", help="one feedback with its photos and events")
    show.add_argument("code", metavar="CODE")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    add_client_options(show)
    show.set_defaults(func=cmd_show)

    classify = cmds.add_parser("classify", help="accept a feedback, or not with --refuse REASON")
    classify.add_argument("code", metavar="CODE")
    classify.add_argument("--refuse", metavar="REASON", help="not accepted (không thụ lý)")
    classify.add_argument("--agency", metavar="ORGANID", help="another competent agency")
    add_client_options(classify)
    classify.set_defaults(func=cmd_classify)

    forward = cmds.add_parser("forward", help="forward to the competent agency over the axis")
    forward.add_argument("code", metavar="CODE")
    forward.add_argument("--agency", metavar="ORGANID", help="default: the category's agency")
    add_client_options(forward)
    forward.set_defaults(func=cmd_forward)

    answer = cmds.add_parser(
        "answer", help="answer a feedback (yours to answer, or forwarded to you: --forwarded ID)"
    )
    answer.add_argument("code", metavar="CODE", nargs="?", help="the feedback code")
    answer.add_argument("--forwarded", type=int, metavar="ID", help="a feedback-inbox id")
    text = answer.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the answer")
    text.add_argument("--file", type=Path, metavar="PATH", help="the answer, UTF-8 text")
    add_client_options(answer)
    answer.set_defaults(func=cmd_answer)

    publish = cmds.add_parser("publish", help="publish an answered feedback")
    publish.add_argument("code", metavar="CODE")
    publish.add_argument(
        "--photo", type=int, action="append", default=[], metavar="N", help="approve photo N"
    )
    add_client_options(publish)
    publish.set_defaults(func=cmd_publish)

    inbox = cmds.add_parser("inbox", help="the feedback forwarded to you over the axis")
    add_client_options(inbox)
    inbox.set_defaults(func=cmd_inbox)


def _path(code: str) -> str:
    return f"/api/v1/feedback/{quote(code, safe='')}"


def _category_json(path: Path | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise CliError(f"--attributes: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"--attributes: {path} is not JSON: {exc}") from None


def cmd_category_add(args: argparse.Namespace) -> int:
    """Add or change a category (its attributes checked as an Open311 service definition)."""
    category = read_category(
        {
            "code": args.code,
            "name": args.name,
            "agency": args.agency,
            "description": args.description,
            "group": args.group,
            "keywords": args.keywords,
            "type": args.type,
            "attributes": _category_json(args.attributes),
        }
    )

    async def store(database: Database) -> bool:
        async with database.transaction() as tx:
            return await add_category(tx, category, ADMIN)

    created = with_database(local_config(args), store)
    verb = "Added" if created else "Changed"
    print(f"{verb} category {category.code} ({category.name}), agency {category.agency}.")
    return 0


def cmd_category_list(args: argparse.Namespace) -> int:
    """The categories as a table (or JSON lines)."""

    async def load(database: Database) -> list[CategoryRow]:
        async with database.reader() as tx:
            return await list_categories(tx)

    rows = with_database(local_config(args), load)
    if args.json:
        for c in rows:
            print(
                json.dumps({"code": c.code, "name": c.name, "agency": c.agency}, ensure_ascii=False)
            )
        return 0
    table = [(c.code, c.name, c.group, c.type, c.agency, len(c.attributes)) for c in rows]
    headers = ("CODE", "NAME", "GROUP", "TYPE", "AGENCY", "ATTRS")
    print(render_table(headers, table) if table else "No categories.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every page of the caller's feedback as a table (or JSON lines)."""
    params = {
        "status": args.status,
        "category": args.category,
        "agency": args.agency,
        "overdue": "true" if args.overdue else None,
    }
    items = _client(args).every_item("/api/v1/feedback", params)
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    rows = [
        (
            f["code"],
            f["status"],
            f["category"],
            f["agency"],
            f["title"][:40],
            ",".join(k for k, late in f["overdue"].items() if late).upper(),
        )
        for f in items
    ]
    headers = ("CODE", "STATUS", "CATEGORY", "AGENCY", "TITLE", "OVERDUE")
    print(render_table(headers, rows) if rows else "No feedback.")
    return 0


def _print(body: dict[str, Any]) -> None:
    print(f"{body['code']}  {body['status']} ({body['status_label']})")
    print(f"{body['category']}: {body['title']}")
    print(f"received by {body['receiving_unit']} ({body['channel']}), to answer: {body['agency']}")
    sender = body["sender"]
    contact = ", ".join(v for v in (sender.get("phone"), sender.get("email")) if v)
    print(f"sender {sender['name']} ({contact})")
    place = body["place"]
    where = place["address"] or f"{place['lat']}, {place['long']}"
    print(f"place {where}")
    limits = [
        (name, _local_time(due) if due else "", "OVERDUE" if body["overdue"][name] else "")
        for name, due in body["due"].items()
    ]
    print(render_table(("LIMIT", "DUE (+07)", ""), limits))
    print(body["content"])
    if body["answer"]:
        print(f"answer ({_local_time(body['answered_at'])}): {body['answer']}")
    events = [
        (_local_time(e["at"]), e["actor"], e["from"], e["to"], e["note"]) for e in body["events"]
    ]
    print(render_table(("AT (+07)", "BY", "FROM", "TO", "NOTE"), events))


def cmd_show(args: argparse.Namespace) -> int:
    """One feedback, its limits and events."""
    body = _client(args).request("GET", _path(args.code)).body
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        _print(body)
    return 0


def _move(args: argparse.Namespace, event: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = (
        _client(args).request("POST", _path(args.code) + "/events", json_body=event).body
    )
    print(f"{body['code']}: now {body['status']} ({body['status_label']})")
    return body


def cmd_classify(args: argparse.Namespace) -> int:
    """Accept (classified) or refuse (not_accepted, with its reason) a received feedback."""
    if args.refuse is not None:
        if args.agency:
            raise CliError("--agency goes with an accepted feedback, not with --refuse")
        _move(args, {"status": "not_accepted", "note": args.refuse})
        return 0
    event: dict[str, Any] = {"status": "classified"}
    if args.agency:
        event["agency"] = args.agency
    body = _move(args, event)
    print(f"to answer: {body['agency']}, transfer due {_local_time(body['due']['transfer'])}")
    return 0


def cmd_forward(args: argparse.Namespace) -> int:
    """Forward a classified feedback over the axis to the competent agency."""
    event: dict[str, Any] = {"status": "transferred"}
    if args.agency:
        event["agency"] = args.agency
    body = _move(args, event)
    print(f"sent to {body['agency']}, answer due {_local_time(body['due']['answer'])}")
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    """Answer a feedback: one this agency must answer (CODE), or one forwarded to it over the
    axis (``--forwarded ID``, the answer goes back as a status message)."""
    if (args.code is None) == (args.forwarded is None):
        raise CliError("give either CODE or --forwarded ID")
    if args.file is not None:
        try:
            text = args.file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--file: cannot read {args.file}: {exc}") from None
    else:
        text = args.text
    event = {"status": "answered", "note": text}
    if args.forwarded is not None:
        path = f"/api/v1/feedback-inbox/{args.forwarded}/events"
        body = _client(args).request("POST", path, json_body=event).body
        print(f"{body['feedback']}: answered; the answer goes back to {body['origin']}")
        return 0
    _move(args, event)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Approve photos (``--photo N``) and publish an answered feedback."""
    client = _client(args)
    if args.photo:
        moderation = {"approved_photos": sorted(set(args.photo))}
        client.request("POST", _path(args.code) + "/moderation", json_body=moderation)
    _move(args, {"status": "published"})
    return 0


def cmd_inbox(args: argparse.Namespace) -> int:
    """The feedback forwarded to this agency over the axis."""
    items = _client(args).every_item("/api/v1/feedback-inbox")
    rows = [(i["id"], i["feedback"], i["origin"], i["status"], i["title"][:40]) for i in items]
    headers = ("ID", "FEEDBACK", "FROM", "STATUS", "TITLE")
    print(render_table(headers, rows) if rows else "Nothing forwarded to you.")
    return 0
