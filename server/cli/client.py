"""``lienthong send | inbox | fetch | ack | status send``: the CLI as a client of a running axis.

The axis is ``--server`` or ``$LIENTHONG_SERVER`` (default http://127.0.0.1:8080), the agency is
whoever ``--token`` / ``$LIENTHONG_TOKEN`` belongs to. Packages stream from and to files (a
progress bar on stderr above 1 MB); answers print as short lines or readable tables; every
failure is one line ``lienthong: error: <title>: <detail>`` and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import edxml
from edxml import (
    OrganId,
    Organization,
    ResponseFor,
    StaffInfo,
    StatusCode,
    StatusMessage,
    TraceHeader,
)
from edxml.model import VN_TZ
from server.cli import CliError
from server.cli.http_client import AxisClient
from server.cli.options import add_client_options, client_settings
from server.cli.table import display_width, render_table

SUBJECT_COLUMNS = 48
_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def register(sub: Any) -> None:
    """Add the client commands to the ``lienthong`` parser."""
    send = sub.add_parser("send", help="send an edXML package to the axis")
    send.add_argument("file", type=Path, metavar="FILE")
    add_client_options(send)
    send.set_defaults(func=cmd_send)

    inbox = sub.add_parser("inbox", help="list your inbox (new deliveries by default)")
    inbox.add_argument("--kind", choices=("document", "status"), help="only this kind")
    inbox.add_argument("--state", choices=("new", "acked"), help="only this state")
    inbox.add_argument("--all", action="store_true", help="every state (new and acked)")
    inbox.add_argument("--json", action="store_true", help="print the items as JSON lines")
    add_client_options(inbox)
    inbox.set_defaults(func=cmd_inbox)

    fetch = sub.add_parser("fetch", help="download a package (or one decoded attachment)")
    fetch.add_argument("id", metavar="ID", help="the document id (from `lienthong inbox`)")
    fetch.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default: ID.edxml; - = stdout)"
    )
    fetch.add_argument(
        "--attachment",
        type=int,
        metavar="N",
        help="fetch attachment N (0-based) decoded instead (default name: its own)",
    )
    add_client_options(fetch)
    fetch.set_defaults(func=cmd_fetch)

    ack = sub.add_parser("ack", help="acknowledge a delivery of your inbox")
    ack.add_argument("id", metavar="DELIVERY_ID")
    add_client_options(ack)
    ack.set_defaults(func=cmd_ack)

    status = sub.add_parser("status", help="status messages (thông điệp trạng thái)")
    status_cmds = status.add_subparsers(dest="status_command", metavar="SUBCOMMAND")
    status_cmds.required = True
    status_send = status_cmds.add_parser(
        "send", help="report a status about a document (01-06, 15, 16 as recipient; 13 as sender)"
    )
    status_send.add_argument("id", metavar="ID", help="the document id the status is about")
    status_send.add_argument("code", metavar="CODE", help="status code, e.g. 03 (đã tiếp nhận)")
    status_send.add_argument("--note", help="description (mô tả) sent with the status")
    status_send.add_argument("--staff", help="name of the officer (cán bộ) reporting it")
    status_send.add_argument(
        "--from",
        dest="from_id",
        metavar="ORGANID",
        help="your organ id, needed only when the document has several recipients",
    )
    add_client_options(status_send)
    status_send.set_defaults(func=cmd_status_send)


def _client(args: argparse.Namespace) -> AxisClient:
    settings = client_settings(args)
    return AxisClient(settings.server, settings.token)


def _local_time(value: str | None) -> str | None:
    """An ISO time from the API shown as dd/mm/yyyy HH:MM in Asia/Ho_Chi_Minh."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return value


def _clip(text: str | None, columns: int) -> str | None:
    """Cut ``text`` to ``columns`` display columns, marking the cut with an ellipsis."""
    if text is None:
        return None
    text = " ".join(text.split())
    if display_width(text) <= columns:
        return text
    out = ""
    for char in text:
        if display_width(out + char) > columns - 1:
            break
        out += char
    return out + "…"


# --- send -------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    """POST the package file; print the receipt (id, sha256, recipients)."""
    path: Path = args.file
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CliError(f"{path} is empty")
    client = _client(args)
    answer = client.upload("/api/v1/documents", path, label=f"send {path.name}")
    _print_receipt(answer.body, duplicate=answer.status == 200)
    return 0


def _print_receipt(body: Any, *, duplicate: bool) -> None:
    if not isinstance(body, dict):
        raise CliError("the axis answered without a receipt")
    what = "Already accepted earlier (same bytes)" if duplicate else "Accepted"
    print(f"{what}: id {body.get('id')}")
    print(f"  document_id: {body.get('document_id')}")
    print(f"  sha256:      {body.get('sha256')}")
    print(f"  received_at: {_local_time(body.get('received_at'))} (+07)")
    print(f"  recipients:  {', '.join(body.get('recipients') or []) or '-'}")


# --- inbox ------------------------------------------------------------------------------


def cmd_inbox(args: argparse.Namespace) -> int:
    """Every matching delivery (all pages), oldest first, as a table or JSON lines."""
    if args.all and args.state:
        raise CliError("--all and --state exclude each other")
    state = None if args.all else (args.state or "new")
    client = _client(args)
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = client.request(
            "GET",
            "/api/v1/inbox",
            params={"kind": args.kind, "state": state, "after": after, "limit": 100},
        ).body
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise CliError("the axis answered the inbox with an unexpected shape")
        items.extend(page["items"])
        after = page.get("next")
        if not after:
            break
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    if not items:
        print(f"No {state or ''} deliveries.".replace("  ", " "))
        return 0
    rows = []
    for item in items:
        subject = item.get("subject")
        if item.get("kind") == "status":
            subject = f"[{item.get('status_code')} {item.get('status_label') or ''}] {subject}"
        rows.append(
            (
                item.get("delivery_id"),
                item.get("document_id"),
                item.get("kind"),
                item.get("sender"),
                item.get("code"),
                _clip(subject, SUBJECT_COLUMNS),
                _local_time(item.get("received_at")),
                item.get("state"),
            )
        )
    headers = ("DELIVERY", "DOCUMENT", "KIND", "FROM", "SỐ/KÝ HIỆU", "TRÍCH YẾU", "NHẬN (+07)")
    print(render_table((*headers, "STATE"), rows))
    return 0


# --- fetch ------------------------------------------------------------------------------


def _attachment_name(client: AxisClient, doc_id: str, index: int) -> str:
    meta = client.request("GET", f"/api/v1/documents/{doc_id}/meta").body
    attachments = meta.get("attachments") if isinstance(meta, dict) else None
    if not isinstance(attachments, list) or not 0 <= index < len(attachments):
        count = len(attachments) if isinstance(attachments, list) else 0
        raise CliError(f"document {doc_id} has {count} attachments; there is no number {index}")
    raw = str(attachments[index].get("name") or f"attachment-{index}")
    # A name chosen by the sender must not write outside the current directory.
    name = _SAFE_NAME.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip(". ")
    return name or f"attachment-{index}"


def cmd_fetch(args: argparse.Namespace) -> int:
    """Stream the package (or attachment N) to a file, written atomically, or to stdout."""
    client = _client(args)
    if args.attachment is not None:
        path = f"/api/v1/documents/{args.id}/attachments/{args.attachment}"
        default = args.output or _attachment_name(client, args.id, args.attachment)
    else:
        path = f"/api/v1/documents/{args.id}"
        default = args.output or f"{args.id}.edxml"
    if default == "-":
        size, sha = client.download(path, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        print(f"{size} bytes, sha256 {sha}", file=sys.stderr)
        return 0
    target = Path(default)
    size, sha = client.download_to(path, target, label=f"fetch {target.name}")
    print(f"Saved {target} ({size} bytes, sha256 {sha})")
    return 0


# --- ack --------------------------------------------------------------------------------


def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge one delivery (idempotent on the server)."""
    body = _client(args).request("POST", f"/api/v1/inbox/{args.id}/ack").body or {}
    print(
        f"Acknowledged delivery {body.get('delivery_id', args.id)} "
        f"(document {body.get('document_id')}) at {_local_time(body.get('acked_at'))} (+07)"
    )
    return 0


# --- status send ------------------------------------------------------------------------


def parse_status_code(text: str) -> StatusCode:
    """``3`` or ``03`` -> StatusCode.ACCEPTED; CliError listing the codes otherwise."""
    value = text.strip().zfill(2)
    try:
        return StatusCode(value)
    except ValueError:
        codes = ", ".join(f"{c.value} ({c.label})" for c in StatusCode)
        raise CliError(f"unknown status code {text!r}; use one of {codes}") from None


def caller_of(meta: dict[str, Any], given: str | None) -> str:
    """Which agency the caller is, from the document's meta.

    The API shows delivery states of the recipients only to the sender, so entries carrying
    ``state`` mean the caller sent the document. Otherwise the caller is a recipient: the only
    one, or the one named with ``--from``.
    """
    sender = str(meta.get("sender") or "")
    recipients = [r for r in meta.get("recipients") or [] if isinstance(r, dict)]
    ids = [str(r.get("organ_id")) for r in recipients]
    if given is not None:
        organ = str(OrganId.parse(given))
        if organ != sender and organ not in ids:
            raise CliError(f"{organ} is neither the sender nor a recipient of this document")
        return organ
    if any("state" in r for r in recipients):
        return sender
    if len(ids) == 1:
        return ids[0]
    raise CliError(
        f"the document has {len(ids)} recipients ({', '.join(ids)}); say which one you are "
        "with --from ORGANID"
    )


def build_status(
    meta: dict[str, Any],
    caller: str,
    code: StatusCode,
    note: str | None,
    staff: str | None,
    now: datetime | None = None,
) -> StatusMessage:
    """A StatusMessage about the document described by ``meta`` (its ResponseFor filled in)."""
    now = now or datetime.now(VN_TZ)
    code_info = meta.get("code") or {}
    number, notation = code_info.get("number"), code_info.get("notation")
    code_text = f"{number}/{notation}" if number and notation else (number or None)
    promulgation = (meta.get("promulgation") or {}).get("date")
    sender = (meta.get("from") or {}).get("organ_id") or meta.get("sender")
    return StatusMessage(
        from_=Organization(caller),
        response_for=ResponseFor(
            organ_id=sender,
            code=code_text,
            promulgation_date=date.fromisoformat(promulgation[:10]) if promulgation else None,
            document_id=meta.get("edxml_document_id"),
        ),
        status_code=code,
        staff_info=StaffInfo(staff=staff) if staff else None,
        description=note,
        timestamp=now,
        trace_headers=(TraceHeader(caller, now),),
    )


def cmd_status_send(args: argparse.Namespace) -> int:
    """Build the status package from the document's meta and POST it to /api/v1/statuses."""
    code = parse_status_code(args.code)
    client = _client(args)
    meta = client.request("GET", f"/api/v1/documents/{args.id}/meta").body
    if not isinstance(meta, dict):
        raise CliError("the axis answered the document summary with an unexpected shape")
    if meta.get("kind") not in (None, "document"):
        raise CliError(f"{args.id} is a status package; statuses are about documents")
    caller = caller_of(meta, args.from_id)
    status = build_status(meta, caller, code, args.note, args.staff)
    errors = [p for p in edxml.validate(status) if p.is_error]
    if errors:
        raise CliError(f"cannot build the status: {errors[0].path}: {errors[0].message}")
    body = client.request_xml("/api/v1/statuses", edxml.serialize(status)).body
    targets = ", ".join(body.get("recipients") or []) if isinstance(body, dict) else "-"
    print(
        f"Status {code.value} ({code.label}) sent as {caller} about {args.id}: "
        f"id {body.get('id') if isinstance(body, dict) else '-'}, to {targets}"
    )
    return 0
