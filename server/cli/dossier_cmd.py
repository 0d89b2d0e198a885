"""``lienthong dossier intake | list | show | advance | apology | slip | transfer | steps``:
one-stop dossiers, as a client of a running axis (``--server``/``--token`` as for
``lienthong send``; docs/dossiers.md, "CLI")."""

from __future__ import annotations

import argparse
import json
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from edxml.model import VN_TZ
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

SLIP_KINDS = ("receipt", "supplement", "refusal", "apology")
_LOCAL_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M")


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

    show = _about_one(cmds, "show", "one dossier with its files and events", cmd_show)
    show.add_argument("--json", action="store_true", help="print the dossier as JSON")

    advance = cmds.add_parser("advance", help="move a dossier to another status (1-10)")
    advance.add_argument("code", metavar="CODE")
    advance.add_argument("status", type=int, metavar="STATUS", help="DVCQG status code 1-10")
    advance.add_argument("--note", default="")
    advance.add_argument("--at", metavar="TIME", help="when it happened, if earlier (ISO 8601)")
    _file_option(advance, "a supplemented file (with the 5->4 move)")
    add_client_options(advance)
    advance.set_defaults(func=cmd_advance)

    apology = _about_one(
        cmds, "apology", "apologise for an overdue dossier, set a new due date", cmd_apology
    )
    apology.add_argument(
        "--new-due",
        required=True,
        metavar="TIME",
        help="the new appointment: 'YYYY-MM-DD HH:MM' or 'DD/MM/YYYY HH:MM' in Vietnam time "
        "(+07:00), or ISO 8601 with its offset",
    )
    apology.add_argument("--reason", required=True, help="the reason of the delay")

    slip = _about_one(cmds, "slip", "save a slip (phiếu) of a dossier as PDF", cmd_slip)
    slip.add_argument("kind", choices=SLIP_KINDS, metavar="KIND", help=", ".join(SLIP_KINDS))
    slip.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.pdf")
    slip.add_argument("--officer", metavar="NAME", help="the officer's name under the signature")

    transfer = _about_one(
        cmds, "transfer", "send a dossier to the agency of one of its steps", cmd_transfer
    )
    transfer.add_argument("--agency", required=True, metavar="ORGANID")

    steps = _about_one(cmds, "steps", "a dossier's steps, due dates, transfers", cmd_steps)
    steps.add_argument("--json", action="store_true", help="print the answer as JSON")

    dvcqg_cmd.register(cmds)  # export-dvcqg, dvcqg-dead, dvcqg-retry (local commands)


def _about_one(cmds: Any, name: str, text: str, func: Any) -> argparse.ArgumentParser:
    """A subcommand about one dossier: ``CODE``, the client options, its handler."""
    parser: argparse.ArgumentParser = cmds.add_parser(name, help=text)
    parser.add_argument("code", metavar="CODE")
    add_client_options(parser)
    parser.set_defaults(func=func)
    return parser


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


def _post(args: argparse.Namespace, action: str, body: dict[str, Any]) -> Any:
    """POST a JSON ``body`` to the dossier's ``action`` (``events``, ``apology``...)."""
    return _client(args).request("POST", f"{_path(args.code)}/{action}", json_body=body).body


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


def read_new_due(text: str) -> str:
    """``--new-due`` as ISO 8601 with an offset: a local time (no offset) is Vietnam time."""
    value = text.strip()
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=VN_TZ).isoformat()
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CliError(
            f"--new-due: {text!r} is not a time: 'YYYY-MM-DD HH:MM' (Vietnam time) "
            "or ISO 8601 with its offset"
        )
    return moment.isoformat()


def cmd_apology(args: argparse.Namespace) -> int:
    """Issue the apology and new appointment of an overdue dossier; print its new due date."""
    new_due = read_new_due(args.new_due)
    after = _post(args, "apology", {"new_due_at": new_due, "reason": args.reason})
    missed = _local_time(after["apologies"][-1]["old_due_at"])
    due = _local_time(after["due_at"])
    print(f"{after['code']}: apology issued, due {due} (was {missed}); counted late")
    print(f"slip: lienthong dossier slip {after['code']} apology -o FILE.pdf")
    return 0


def cmd_slip(args: argparse.Namespace) -> int:
    """Save a slip of the dossier as PDF (written whole or not at all)."""
    path = f"{_path(args.code)}/slips/{args.kind}.pdf"
    officer = (args.officer or "").strip()
    if officer:
        path += "?" + urlencode({"officer": officer})
    size, _ = _client(args).download_to(path, args.output, label=f"slip {args.output.name}")
    print(f"Saved {args.output} ({args.kind}, {size} bytes)")
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    """Send the dossier to the agency of one of its steps; print the step and the package."""
    sent = _post(args, "transfer", {"agency": args.agency})
    print(
        f"{sent['dossier']}: step {sent['step']} sent to {sent['agency']}, "
        f"due {_local_time(sent['due_at'])}"
    )
    print(f"package {sent['package']} ({sent['document_id']})")
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    """The procedure's steps with their due dates, and the transfers made of the dossier."""
    body = _client(args).request("GET", _path(args.code) + "/steps").body
    if args.json:
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    if not body["steps"]:
        print(f"{args.code}: its procedure has no steps across agencies.")
        return 0
    sent = {t["step"]: t for t in body["transfers"]}
    rows = []
    for step in body["steps"]:
        transfer = sent.get(step["number"])
        state = "" if transfer is None else f"sent: {transfer['status']} {transfer['status_label']}"
        rows.append(
            (step["number"], step["agency"], step["days"], _local_time(step["due_at"]), state)
        )
    print(render_table(("STEP", "AGENCY", "DAYS", "DUE (+07)", "TRANSFER"), rows))
    return 0
