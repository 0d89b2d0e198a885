"""``lienthong archive export | verify | renew``: archival packages (BagIt) of documents, and
the long-term validation upkeep of the signed originals.

``export ID... -o DIR`` downloads each document's bag from a running axis
(``GET /api/v1/archive/{id}/package``, with ``--server``/``--token`` or LIENTHONG_SERVER /
LIENTHONG_TOKEN: an agency or archivist token) and unpacks it into ``DIR/lienthong-<id>/``,
checking every hash on arrival. ``verify BAG`` (a bag directory or its zip) checks every file
against ``manifest-sha256.txt`` and every PDF signature again with :mod:`signing.verify`, and
compares each attachment with the report the axis made when it arrived
(``data/verification/NN-<name>.json``): the report must be about these very bytes, and every
signature that was intact with no other changes then must still be so now (a later trust
verdict may differ: certificates expire; that is printed, not failed). Renewed files and
attachment versions in the bag (``attachments/NN-<stem>.renewal-K.pdf``, ``.version-J.pdf``,
listed with their places in ``data/archive.json``) have their signatures checked too, must have
the SHA-256 the record gives them, and each renewal must start with the exact bytes of the file
it renews (a B-LTA renewal is an incremental update: it never alters what it extends).
Exit codes: 0 all good, 1 a hash or a signature failed (TOTAL_FAILED), an attachment no longer
matches its report at arrival, or a renewal does not extend the file it renews, 2 signatures
could not be confirmed (INDETERMINATE, e.g. a root missing from the trust store).

``renew [--within-days N]`` works on the axis's own data directory (``--config``/``--data-dir``):
every signed PDF attachment (and attachment version) whose newest timestamp or certificates
expire within N days (default ``[archive] renew_within_days``) gets a B-LTA renewal (current
revocation data and a new document timestamp from ``[tsa] url``) as a new object, recorded and
audit-logged; originals are never altered (server/signatures/renewal.py). Exit 1 when a renewal
failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import bagit

from server.cli import CliError
from server.cli.database import require_database
from server.cli.http_client import AxisClient
from server.cli.options import add_client_options, add_local_options, client_settings, local_config
from storage.private import private_umask


def register(sub: Any) -> None:
    """Add ``archive export`` and ``archive verify`` to the ``lienthong`` parser."""
    archive = sub.add_parser("archive", help="archival packages (BagIt) of documents")
    cmds = archive.add_subparsers(dest="archive_command", metavar="SUBCOMMAND")
    cmds.required = True
    export = cmds.add_parser("export", help="download documents' BagIt packages from the axis")
    export.add_argument("ids", nargs="+", metavar="ID", help="the axis's document ids")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    export.add_argument("--zip", action="store_true", help="keep the zip instead of unpacking")
    add_client_options(export)
    export.set_defaults(func=cmd_export)
    verify = cmds.add_parser("verify", help="check a bag's hashes and PDF signatures again")
    verify.add_argument("bag", type=Path, metavar="BAG", help="a bag directory or its .zip")
    verify.set_defaults(func=cmd_verify)
    renew = cmds.add_parser(
        "renew", help="add B-LTA document timestamps to signed originals that expire soon"
    )
    renew.add_argument(
        "--within-days", type=int, metavar="N",
        help="renew what expires within N days (default: [archive] renew_within_days)",
    )  # fmt: skip
    add_local_options(renew)
    renew.set_defaults(func=cmd_renew)


def _unpack(zip_path: Path, target_dir: Path) -> Path:
    """Unpack a bag zip (one top directory) into ``target_dir``; return the bag directory."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise CliError(f"{zip_path} is neither a bag directory nor a zip file") from None
    with zf:
        names = zf.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1 or any(n.startswith("/") or ".." in n.split("/") for n in names):
            raise CliError(f"{zip_path} is not a bag zip (one top directory expected)")
        zf.extractall(target_dir)
    return target_dir / tops.pop()


def cmd_export(args: argparse.Namespace) -> int:
    """Download and unpack each bag; every hash is checked after unpacking. What it writes is
    private (directories 0700, files 0600): the bags hold the documents themselves."""
    with private_umask():
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    settings = client_settings(args)
    client = AxisClient(settings.server, settings.token)
    out_dir: Path = args.output
    out_dir.mkdir(parents=True, exist_ok=True)
    for doc_id in args.ids:
        if not doc_id.isalnum():
            raise CliError(f"{doc_id!r} is not a document id")
        target = out_dir / f"lienthong-{doc_id}.zip"
        client.download_to(f"/api/v1/archive/{doc_id}/package", target, label=doc_id)
        if args.zip:
            print(f"{doc_id}: {target}")
            continue
        final = out_dir / f"lienthong-{doc_id}"
        if final.exists():
            raise CliError(f"{final} already exists; remove it or choose another -o")
        try:
            bag_dir = _unpack(target, out_dir)
        finally:
            target.unlink(missing_ok=True)
        _validate(bag_dir)
        print(f"{doc_id}: {bag_dir} (every hash checked)")
    return 0


def _validate(bag_dir: Path) -> bagit.Bag:
    try:
        bag = bagit.Bag(str(bag_dir))
        bag.validate()
    except bagit.BagError as exc:
        raise CliError(f"{bag_dir}: the bag is not valid: {exc}") from None
    return bag


def _pdfs(bag_dir: Path) -> list[Path]:
    found = []
    for path in sorted((bag_dir / "data").rglob("*")):
        if path.is_file():
            with path.open("rb") as fh:
                if fh.read(1024).lstrip().startswith(b"%PDF-"):
                    found.append(path)
    return found


def cmd_verify(args: argparse.Namespace) -> int:
    """Check the bag (every file's SHA-256) and every PDF's signatures; print one line each."""
    path: Path = args.bag
    if not path.exists():
        raise CliError(f"{path} does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        bag_dir = _unpack(path, Path(tmp)) if path.is_file() else path
        bag = _validate(bag_dir)
        files = sum(1 for _ in bag.payload_files())
        print(f"bag {path}: valid, {files} files match manifest-sha256")
        return _verify_pdfs(bag_dir)


def _verify_pdfs(bag_dir: Path) -> int:
    from signing.report import Indication
    from signing.verify import verify

    worst = 0
    arrival = _arrival_reports(bag_dir)
    derived = _derived_files(bag_dir)
    for line in _check_derived(bag_dir, derived):
        print(f"  {line}")
        worst = 1
    for pdf in _pdfs(bag_dir):
        report = verify(pdf, file_name=pdf.name)
        name = pdf.relative_to(bag_dir / "data").as_posix()
        if pdf.parent.name == "attachments" and name not in derived:
            mismatch = _compare(pdf, report.to_json(), arrival.get(pdf.name.split("-", 1)[0]))
            if mismatch:
                print(f"  {name}: {mismatch}")
                worst = 1
        indication = report.indication
        if report.status != "signed" or indication is None:
            print(f"  {name}: {report.status}, no signature to check")
            continue
        print(
            f"  {name}: {len(report.signatures)} signature(s), {indication.value}"
            + "".join(f"; {e}" for e in report.errors)
        )
        if indication == Indication.TOTAL_FAILED:
            worst = 1
        elif indication == Indication.INDETERMINATE and worst == 0:
            worst = 2
    return worst


def _derived_files(bag_dir: Path) -> dict[str, dict[str, Any]]:
    """The renewals and attachment versions the bag's ``archive.json`` places in it, by path
    under ``data/`` (entries with ``file``, ``sha256`` and for a renewal ``renews_file``)."""
    path = bag_dir / "data" / "archive.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CliError(f"{path}: not a readable archive record") from None
    found: dict[str, dict[str, Any]] = {}

    def add(entry: Any, kind: str) -> None:
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            found[entry["file"]] = {**entry, "kind_in_bag": kind}

    attachments = record.get("attachments") if isinstance(record, dict) else None
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict):
            continue
        for renewal in _entries(attachment, "renewals"):
            add(renewal, "renewal")
        for version in _entries(attachment, "versions"):
            add(version, "version")
            for renewal in _entries(version, "renewals"):
                add(renewal, "renewal")
    return found


def _entries(record: Any, key: str) -> list[dict[str, Any]]:
    """The dict items of the list ``record[key]`` (anything else in a hand-edited or damaged
    archive.json counts as absent rather than crashing the check)."""
    value = record.get(key) if isinstance(record, dict) else None
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _starts_with(path: Path, prefix: Path) -> bool:
    """True when the bytes of ``path`` begin with all the bytes of ``prefix`` (streamed)."""
    if path.stat().st_size < prefix.stat().st_size:
        return False
    with path.open("rb") as whole, prefix.open("rb") as head:
        while chunk := head.read(1 << 20):
            if whole.read(len(chunk)) != chunk:
                return False
    return True


def _check_derived(bag_dir: Path, derived: dict[str, dict[str, Any]]) -> list[str]:
    """Why renewed files and versions fail (one line each; empty: all good): each must be in
    the bag with the SHA-256 the record gives, and each renewal must start with the bytes of
    the file it renews, which must have the ``base_sha256`` the axis recorded."""
    problems: list[str] = []
    data = bag_dir / "data"
    for name, entry in derived.items():
        path = data / name
        if ".." in Path(name).parts or not path.is_file():
            problems.append(f"{name}: listed in archive.json but not in the bag")
            continue
        if _sha256_of(path) != entry.get("sha256"):
            problems.append(f"{name}: DIFFERS from the {entry['kind_in_bag']} the axis stored")
            continue
        if entry["kind_in_bag"] != "renewal":
            continue
        base_name = entry.get("renews_file")
        base = data / base_name if isinstance(base_name, str) else None
        if base is None or ".." in Path(base_name or "").parts or not base.is_file():
            problems.append(f"{name}: the file it renews is not in the bag")
        elif _sha256_of(base) != entry.get("base_sha256"):
            problems.append(f"{name}: {base_name} is not the file that was renewed (sha256)")
        elif not _starts_with(path, base):
            problems.append(
                f"{name}: does NOT start with the bytes of {base_name} (not an incremental update)"
            )
        else:
            print(f"  {name}: an incremental update of {base_name} (its bytes unchanged)")
    return problems


def _arrival_reports(bag_dir: Path) -> dict[str, dict[str, Any]]:
    """The reports made at arrival in the bag, by attachment number (``NN``)."""
    found: dict[str, dict[str, Any]] = {}
    folder = bag_dir / "data" / "verification"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise CliError(f"{path}: not a readable verification report") from None
        if isinstance(report, dict):
            found[path.name.split("-", 1)[0]] = report
    return found


def _compare(pdf: Path, now: dict[str, Any], then: dict[str, Any] | None) -> str | None:
    """Why ``pdf`` no longer matches its report at arrival, or None (a line is printed)."""
    if then is None:
        print(f"  {pdf.name}: no report made at arrival in the bag")
        return None
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    if (then.get("file") or {}).get("sha256") != digest:
        return "DIFFERS from the file verified at arrival (sha256)"
    before = [(s.get("intact"), s.get("changes")) for s in then.get("signatures") or []]
    after = [(s.get("intact"), s.get("changes")) for s in now.get("signatures") or []]
    if len(before) != len(after):
        return f"{len(before)} signature(s) at arrival, {len(after)} now"
    for i, ((was_intact, was), (is_intact, is_)) in enumerate(zip(before, after, strict=True)):
        if (
            was_intact
            and was in ("none", "permitted")
            and not (is_intact and is_ in ("none", "permitted"))
        ):
            return f"signature {i + 1} was intact at arrival and is not now"
    print(
        f"  {pdf.name}: at arrival {then.get('indication') or then.get('status')}"
        f" ({then.get('verified_at')}), now {now.get('indication') or now.get('status')}"
    )
    return None


def cmd_renew(args: argparse.Namespace) -> int:
    """Renew what expires within N days on this data directory; one line per renewal."""
    import asyncio

    config = local_config(args)
    days = config.archive.renew_within_days if args.within_days is None else args.within_days
    if days < 0:
        raise CliError("--within-days must be 0 or more")
    require_database(config)
    return asyncio.run(_renew(config, days))


async def _renew(config: Any, days: int) -> int:
    from server.exchange import Exchange
    from server.runtime.database import database_target, open_config_database
    from server.runtime.objectstore import close_object_store, open_object_store
    from server.signatures.renewal import RenewalError, Renewer
    from storage.errors import StorageError

    try:
        database = await open_config_database(config)
    except StorageError as exc:
        raise CliError(f"cannot open the database {database_target(config)}: {exc}") from None
    try:
        objects = await open_object_store(config, database=database)
        renewer = Renewer(config, database, objects, Exchange(config, database, objects))
        try:
            config.spool_dir.mkdir(parents=True, exist_ok=True)
            result = await renewer.run(days)
        except RenewalError as exc:
            raise CliError(str(exc)) from None
        finally:
            await renewer.aclose()
            await close_object_store(objects)
    finally:
        await database.close()
    for renewal in result.renewed:
        version = f" version {renewal.version_id}" if renewal.version_id else ""
        was = renewal.previous_expires_at
        print(
            f"renewed {renewal.document_id} attachment {renewal.attachment_index}{version}: "
            f"{renewal.sha256} (evidence until {renewal.expires_at:%Y-%m-%d}"
            + (f", was {was:%Y-%m-%d})" if was else ")")
        )
    for label, why in result.not_extended:
        print(f"not renewed {label}: {why}")
    for label, why in result.failed:
        print(f"FAILED {label}: {why}")
    print(result.summary())
    return 1 if result.failed else 0


__all__ = ["cmd_export", "cmd_renew", "cmd_verify", "register"]
