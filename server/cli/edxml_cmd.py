"""``lienthong edxml``: check, show and create edXML packages from the command line.

- ``check FILE...`` parses each file (attachments streamed and discarded, so size does not
  matter), validates it and checks its XML signature; one line per finding, exit 1 when any
  file has an error or cannot be read.
- ``show FILE`` prints a Vietnamese summary of a package or status message.
- ``new`` writes a valid package from a few options, streaming the attached files; with
  ``--sign-key``/``--sign-cert`` it signs it (XML-DSig, RSA-SHA256, built in memory).
"""

from __future__ import annotations

import argparse
import io
import mimetypes
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import edxml
from edxml import (
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    EdxmlError,
    Envelope,
    ManifestReference,
    MessageHeader,
    OrganId,
    Organization,
    OtherInfo,
    Priority,
    Problem,
    PromulgationInfo,
    StatusMessage,
    TraceHeader,
)
from edxml.attachments import DiscardSink
from edxml.model import VN_TZ
from server.cli import CliError

# The signature check needs the whole package in memory (c14n of the document); beyond this
# size ``check`` says it did not check rather than use a lot of memory.
SIGNATURE_CHECK_MAX_BYTES = 64 * 1024 * 1024


def register(sub: Any) -> None:
    """Add the ``edxml`` command group to the ``lienthong`` parser."""
    group = sub.add_parser("edxml", help="kiểm tra, xem và tạo gói tin edXML")
    commands = group.add_subparsers(dest="edxml_command", metavar="SUBCOMMAND")
    commands.required = True

    check = commands.add_parser("check", help="parse and validate packages; exit 1 on any error")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=cmd_check)

    show = commands.add_parser("show", help="a readable Vietnamese summary of a package")
    show.add_argument("file", metavar="FILE")
    show.set_defaults(func=cmd_show)

    new = commands.add_parser("new", help="write a new, valid package")
    new.add_argument("--from", dest="from_id", required=True, metavar="ID", help="sender OrganId")
    new.add_argument(
        "--to", dest="to_ids", action="append", required=True, metavar="ID",
        help="recipient OrganId (repeat for several)",
    )  # fmt: skip
    new.add_argument("--subject", required=True, help="trích yếu")
    new.add_argument(
        "--attach", action="append", default=[], metavar="FILE", help="attach a file (repeat)"
    )
    new.add_argument("--number", help="số văn bản (CodeNumber)")
    new.add_argument("--notation", help="ký hiệu văn bản (CodeNotation)")
    new.add_argument("--type-name", help="loại văn bản, e.g. Công văn")
    new.add_argument(
        "--priority", type=int, choices=range(5), default=0, metavar="0-4",
        help="độ khẩn: 0 thường, 1 khẩn, 2 thượng khẩn, 3 hỏa tốc, 4 hỏa tốc hẹn giờ",
    )  # fmt: skip
    new.add_argument(
        "--sign-key", metavar="PEM", help="sign the package (XML-DSig) with this RSA key"
    )
    new.add_argument("--sign-cert", metavar="PEM", help="the certificate of --sign-key")
    new.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    new.set_defaults(func=cmd_new)


# --- check ------------------------------------------------------------------------------------


def _tolerant_stdout() -> None:
    """Vietnamese text on a stdout that cannot encode it: escape it rather than crash."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def cmd_check(args: argparse.Namespace) -> int:
    """Print ``FILE: error|warning|info PATH: message`` lines; 1 if any file has an error."""
    _tolerant_stdout()
    failed = False
    for name in args.files:
        failed |= not _check_one(name)
    return 1 if failed else 0


def _check_one(name: str) -> bool:
    warnings: list[Problem] = []
    try:
        obj = edxml.parse(name, sink=DiscardSink(), on_warning=warnings.append)
    except EdxmlError as exc:
        where = f"line {exc.line}" if exc.line is not None else exc.path or "(file)"
        print(f"{name}: error {where}: {exc.message}")
        return False
    except OSError as exc:
        print(f"{name}: error (file): cannot read: {exc.strerror or exc}")
        return False
    problems = warnings + edxml.validate(obj)
    for p in problems:
        print(f"{name}: {p.severity} {p.path or '(file)'}: {p.message}")
    signature = _signature_line(name, obj)
    if signature:
        print(f"{name}: info Signature: {signature}")
    errors = sum(p.is_error for p in problems)
    if errors:
        return False
    print(f"{name}: ok ({len(problems)} warning{'s' if len(problems) != 1 else ''})")
    return True


def _signature_line(name: str, obj: Envelope | StatusMessage) -> str | None:
    if obj.signature is None:
        return None
    size = os.path.getsize(name)
    if size > SIGNATURE_CHECK_MAX_BYTES:
        return f"not checked (the file is larger than {SIGNATURE_CHECK_MAX_BYTES // 2**20} MiB)"
    check = edxml.verify_signature(Path(name).read_bytes())
    signer = f" — người ký: {check.signer}" if check.signer else ""
    return f"{check.result}: {check.reason}{signer}"


# --- show -------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    """Print a Vietnamese summary of a package or status message."""
    _tolerant_stdout()
    try:
        obj = edxml.parse(args.file, sink=DiscardSink())
    except EdxmlError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    lines = _show_status(obj) if isinstance(obj, StatusMessage) else _show_envelope(obj)
    if obj.signature is not None:
        check = edxml.verify_signature(Path(args.file).read_bytes())
        lines.append(("Chữ ký số", _SIGNATURE_LABELS[check.result]))
    width = max(len(label) for label, _ in lines if label)
    for label, value in lines:
        print(f"{label + ':':<{width + 2}}{value}" if label else f"{'':<{width + 2}}{value}")
    return 0


_SIGNATURE_LABELS = {
    "valid": "hợp lệ (toàn vẹn; chưa kiểm tra chứng thư)",
    "invalid": "không hợp lệ",
    "placeholder": "giá trị giả (không phải chữ ký thật)",
    "absent": "không có",
}


def _organization(org: Organization) -> str:
    name = org.organ_name or org.organization_in_charge
    return f"{org.organ_id} — {name}" if name else org.organ_id


def _date(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else "—"


def _timestamp(value: datetime | None) -> str:
    return value.astimezone(VN_TZ).strftime("%H:%M:%S %d/%m/%Y") if value else "—"


def _size(value: int | None) -> str:
    return "—" if value is None else f"{value:,}".replace(",", ".") + " byte"


def _show_envelope(env: Envelope) -> list[tuple[str, str]]:
    h = env.header
    lines: list[tuple[str, str]] = [
        ("Số/ký hiệu", str(h.code) if h.code and str(h.code) else "—"),
        ("Ngày ban hành", _date(h.promulgation_info.date if h.promulgation_info else None)),
        ("Trích yếu", h.subject or "—"),
        ("Nơi gửi", _organization(h.from_)),
    ]
    for i, org in enumerate(h.to):
        lines.append(("Nơi nhận" if i == 0 else "", _organization(org)))
    if not h.to:
        lines.append(("Nơi nhận", "—"))
    priority = h.other_info.priority if h.other_info else None
    lines.append(("Độ khẩn", priority.label if priority is not None else "—"))
    dt = h.document_type
    lines.append(("Loại văn bản", (dt.type_name if dt else None) or "—"))
    if h.signer_info and h.signer_info.full_name:
        si = h.signer_info
        who = " ".join(p for p in (si.competence, si.position, si.full_name) if p)
        lines.append(("Người ký", who))
    if env.business is not None:
        lines.append(("Nghiệp vụ", env.business.doc_type.label))
    lines.append(("Mã văn bản", h.document_id or "—"))
    if not env.attachments:
        lines.append(("Tệp đính kèm", "không có"))
    for i, att in enumerate(env.attachments):
        kind = att.content_type or "không rõ kiểu"
        if att.is_zipped:
            kind += ", nén zip"
        lines.append(
            ("Tệp đính kèm" if i == 0 else "", f"{att.name or att.content_id} ({kind}, "
             f"{_size(att.size)})")
        )  # fmt: skip
    return lines


def _show_status(s: StatusMessage) -> list[tuple[str, str]]:
    rf = s.response_for
    doc = " — ".join(
        p
        for p in (
            rf.code,
            f"ngày {_date(rf.promulgation_date)}" if rf.promulgation_date else None,
            f"của {rf.organ_id}" if rf.organ_id else None,
            f"mã {rf.document_id}" if rf.document_id else None,
        )
        if p
    )
    lines = [
        ("Trạng thái", f"{s.status_code.value} — {s.status_code.label}"),
        ("Văn bản", doc or "—"),
        ("Thời điểm", _timestamp(s.timestamp)),
        ("Nơi gửi", _organization(s.from_)),
    ]
    if s.description:
        lines.append(("Mô tả", s.description))
    if s.staff_info and (s.staff_info.staff or s.staff_info.department):
        st = s.staff_info
        lines.append(("Cán bộ", ", ".join(p for p in (st.staff, st.department) if p)))
    return lines


# --- new --------------------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    """Write a new document package (BussinessDocType 0) to ``-o`` or stdout."""
    sender = str(OrganId.parse(args.from_id))
    recipients = [str(OrganId.parse(to)) for to in args.to_ids]
    if len(set(recipients)) != len(recipients):
        raise CliError("a recipient is given twice with --to")
    if not args.subject.strip():
        raise CliError("--subject must not be empty")
    if args.notation and not args.number:
        raise CliError("--notation needs --number")
    if bool(args.sign_key) != bool(args.sign_cert):
        raise CliError("--sign-key and --sign-cert go together")
    signing = _load_signing(args.sign_key, args.sign_cert) if args.sign_key else None
    attachments, manifest = _attachments(args.attach)

    now = datetime.now(VN_TZ)
    today = now.date()
    code = Code(args.number, args.notation) if args.number else None
    document_id = f"{sender},{today:%Y/%m/%d},{code}" if code is not None else str(uuid.uuid4())
    envelope = Envelope(
        header=MessageHeader(
            from_=Organization(sender),
            to=tuple(Organization(r) for r in recipients),
            document_id=document_id,
            subject=args.subject.strip(),
            code=code,
            promulgation_info=PromulgationInfo(date=today),
            document_type=DocumentType(type=1, type_name=args.type_name)
            if args.type_name
            else None,
            other_info=OtherInfo(priority=Priority(args.priority)),
        ),
        trace_headers=(TraceHeader(sender, now),),
        business=Business(doc_type=BusinessDocType.NEW, paper=0),
        manifest=manifest,
        attachments=attachments,
    )
    errors = [p for p in edxml.validate(envelope) if p.is_error]
    if errors:
        raise CliError(f"{errors[0].path}: {errors[0].message}")
    if signing is not None:
        # The signature covers the whole document, so the signed package is built in memory.
        data = edxml.sign_envelope(edxml.serialize(envelope), *signing)
        write: Callable[[BinaryIO], object] = partial(_write_bytes, data)
    else:
        write = partial(edxml.write, envelope)
    if args.output:
        _write_atomically(Path(args.output), write)
    else:
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return 0


def _write_bytes(data: bytes, out: BinaryIO) -> None:
    out.write(data)


def _load_signing(key_path: str, cert_path: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An unencrypted PEM RSA key and its PEM certificate, or a one-line error."""
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except OSError as exc:
        raise CliError(f"cannot read {key_path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise CliError(f"{key_path} is not an unencrypted PEM private key: {exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {cert_path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{cert_path} is not a PEM certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CliError(f"{key_path} is not an RSA key (edXML signatures are RSA-SHA256)")
    return key, cert


def _attachments(
    paths: list[str],
) -> tuple[tuple[Attachment, ...], tuple[ManifestReference, ...]]:
    attachments: list[Attachment] = []
    manifest: list[ManifestReference] = []
    for i, name in enumerate(paths, start=1):
        path = Path(name)
        if not path.is_file():
            raise CliError(f"cannot attach {name}: no such file")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise CliError(f"cannot attach {name}: {exc.strerror or exc}") from None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        content_id = f"cid:{i}"
        opener = _opener(path)
        attachments.append(
            Attachment(
                content_id=content_id,
                name=path.name,
                description=path.name,
                content_type=content_type,
                size=path.stat().st_size,
                opener=opener,
            )
        )
        manifest.append(
            ManifestReference(
                content_id=content_id,
                content_type=content_type,
                description=path.name,
                attachment_name=path.name,
            )
        )
    return tuple(attachments), tuple(manifest)


def _opener(path: Path) -> Callable[[], BinaryIO]:
    """A fresh binary stream of the file at each call: the writer reads it once, in chunks."""

    def open_file() -> BinaryIO:
        return path.open("rb")

    return open_file


def _write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write beside the target and rename, so a failure never leaves half a package."""
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".lienthong-", suffix=".edxml", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
