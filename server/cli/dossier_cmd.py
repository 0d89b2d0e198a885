"""``lienthong dossier intake | list | show | advance``: one-stop dossiers, as a client of a
running axis (``--server``/``--token`` as for ``lienthong send``; docs/dossiers.md)."""

from __future__ import annotations

import argparse
import json
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from server.cli import CliError, dvcqg_cmd
from server.cli.client import _local_time
from server.cli.http_client import AxisClient, FormPart
from server.cli.options import add_client_options, client_settings
from server.cli.table import render_table

STATUS_NAMES = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung",
    6: "Nghĩa vụ tài chính",
    7: "Rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}


def register(sub: Any) -> None:
    """Add ``lienthong dossier ...`` to the parser."""
    dossier = sub.add_parser("dossier", help="one-stop dossiers (hồ sơ một cửa) on an axis")
    cmds = dossier.add_subparsers(dest="dossier_command", metavar="SUBCOMMAND")
    cmds.required = True

    intake = cmds.add_parser("intake", help="receive a dossier (tiếp nhận hồ sơ)")
    intake.add_argument("--procedure", required=True, metavar="CODE", help="e.g. 1.001193")
    intake.add_argument("--name", required=True, help="the applicant's name")
    intake.add_argument("--id-number", required=True, help="CCCD (12 digits), CMND (9), MST")
    intake.add_argument("--phone", required=True)
    intake.add_argument("--email")
    intake.add_argument("--address")
    intake.add_argument("--kind", choices=("citizen", "business"), default="citizen")
    intake.add_argument(
        "--channel", type=int, choices=(1, 2, 3), default=1, help="1 counter, 2 online, 3 postal"
    )
    intake.add_argument("--agency", metavar="ORGANID", help="competent agency, if not the usual")
    intake.add_argument(
        "--received-at", metavar="TIME", help="a paper dossier received earlier (ISO 8601)"
    )
    intake.add_argument("--key", metavar="KEY", help="Idempotency-Key: a retry answers the same")
    _file_option(intake)
    add_client_options(intake)
    intake.set_defaults(func=cmd_intake)

    listing = cmds.add_parser("list", help="your dossiers (received or to process)")
    listing.add_argument("--status", type=int, choices=range(1, 11), metavar="1-10")
    listing.add_argument("--procedure", metavar="CODE")
    listing.add_argument("--overdue", action="store_true", help="only overdue dossiers")
    listing.add_argument("--json", action="store_true", help="print the items as JSON lines")
    add_client_options(listing)
    listing.set_defaults(func=cmd_list)

    show = cmds.add_parser("show", help="one dossier with its files and events")
    show.add_argument("code", metavar="CODE")
    show.add_argument("--json", action="store_true", help="print the dossier as JSON")
    add_client_options(show)
    show.set_defaults(func=cmd_show)

    advance = cmds.add_parser("advance", help="move a dossier to another status (1-10)")
    advance.add_argument("code", metavar="CODE")
    advance.add_argument("status", type=int, metavar="STATUS", help="DVCQG status code 1-10")
    advance.add_argument("--note", default="")
    advance.add_argument("--at", metavar="TIME", help="when it happened, if earlier (ISO 8601)")
    _file_option(advance, "a supplemented file (with the 5->4 move)")
    add_client_options(advance)
    advance.set_defaults(func=cmd_advance)

    dvcqg_cmd.register(cmds)  # export-dvcqg, dvcqg-dead, dvcqg-retry (local commands)


def _file_option(parser: argparse.ArgumentParser, what: str = "a component's file") -> None:
    parser.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="COMPONENT=PATH",
        help=f"{what}, named by the component's code (repeatable)",
    )


def _client(args: argparse.Namespace) -> AxisClient:
    settings = client_settings(args)
    return AxisClient(settings.server, settings.token)


def _files(values: list[str]) -> list[FormPart]:
    parts = []
    for value in values:
        component, sep, name = value.partition("=")
        if not sep or not component or not name:
            raise CliError(f"--file: {value!r} is not COMPONENT=PATH")
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(f"--file: cannot read {path}: {exc.strerror or exc}") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        parts.append(FormPart(component, data, ctype, path.name))
    return parts


def _json_part(name: str, value: dict[str, Any]) -> FormPart:
    return FormPart(name, json.dumps(value, ensure_ascii=False).encode("utf-8"))


def _path(code: str) -> str:
    return f"/api/v1/dossiers/{quote(code, safe='')}"


def cmd_intake(args: argparse.Namespace) -> int:
    """Receive a dossier; print its code, due date and lookup URL."""
    applicant = {
        "name": args.name,
        "id_number": args.id_number,
        "phone": args.phone,
        "kind": args.kind,
        **({"email": args.email} if args.email else {}),
        **({"address": args.address} if args.address else {}),
    }
    dossier: dict[str, Any] = {
        "procedure": args.procedure,
        "applicant": applicant,
        "channel": args.channel,
    }
    if args.agency:
        dossier["agency"] = args.agency
    if args.received_at:
        dossier["received_at"] = args.received_at
    parts = [_json_part("dossier", dossier), *_files(args.file)]
    headers = {"Idempotency-Key": args.key} if args.key else None
    body = _client(args).post_form("/api/v1/dossiers", parts, headers).body
    print(f"{body['code']}  status {body['status']} ({STATUS_NAMES[body['status']]})")
    print(f"received {_local_time(body['received_at'])}, due {_local_time(body['due_at'])}")
    print(f"lookup: {body['lookup_url']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every page of the caller's dossiers as a table (or JSON lines)."""
    params = {
        "status": args.status,
        "procedure": args.procedure,
        "overdue": "true" if args.overdue else None,
    }
    items = _client(args).every_item("/api/v1/dossiers", params)
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    rows = [
        (
            d["code"],
            d["status"],
            d["procedure"],
            d["agency"],
            d["applicant_name"],
            _local_time(d["due_at"]),
            "OVERDUE" if d["overdue"] else ("paused" if d["paused"] else ""),
        )
        for d in items
    ]
    headers = ("CODE", "STATUS", "PROCEDURE", "AGENCY", "APPLICANT", "DUE (+07)", "")
    print(render_table(headers, rows) if rows else "No dossiers.")
    return 0


def _print_dossier(body: dict[str, Any]) -> None:
    applicant = body["applicant"]
    print(f"{body['code']}  status {body['status']} ({body['status_label']})")
    print(
        f"procedure {body['procedure']}, competent agency {body['agency']}, "
        f"received by {body['receiving_unit']} ({body['channel_name']})"
    )
    print(f"applicant {applicant['name']} ({applicant['kind']}, {applicant['id_number']})")
    overdue = "  OVERDUE" if body["overdue"] else ""
    print(
        f"received {_local_time(body['received_at'])}, due {_local_time(body['due_at'])}{overdue}"
    )
    files = [(f["component"], f["name"], f["size"], f["sha256"][:16]) for f in body["files"]]
    if files:
        print(render_table(("COMPONENT", "FILE", "BYTES", "SHA-256"), files))
    print_events(body["events"])


def print_events(events: list[dict[str, Any]]) -> None:
    """A record's events (dossiers, feedback) as a table: when, by whom, from, to, note."""
    rows = [(_local_time(e["at"]), e["actor"], e["from"], e["to"], e["note"]) for e in events]
    print(render_table(("AT (+07)", "BY", "FROM", "TO", "NOTE"), rows))


def cmd_show(args: argparse.Namespace) -> int:
    """One dossier, its files and events."""
    body = _client(args).request("GET", _path(args.code)).body
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        _print_dossier(body)
    return 0


def cmd_advance(args: argparse.Namespace) -> int:
    """Move a dossier; print it as it is after the move."""
    event: dict[str, Any] = {"status": args.status, "note": args.note}
    if args.at:
        event["at"] = args.at
    client = _client(args)
    path = _path(args.code) + "/events"
    if args.file:
        body = client.post_form(path, [_json_part("event", event), *_files(args.file)]).body
    else:
        body = client.request("POST", path, json_body=event).body
    print(
        f"{body['code']}: now {body['status']} ({body['status_label']}), "
        f"due {_local_time(body['due_at'])}"
    )
    return 0
