"""What ``lienthong demo`` prepares beyond agencies and tokens, and the guide it prints.

DEVELOPMENT ONLY. In the data directory DATA, idempotently:

- ``DATA/pki``: the test PKI of ``certs/pki.yml`` (:mod:`signing.devpki`), reused when present
  (its keys are kept; regenerated only for another ``--pki-port``), with two SoftHSM2 tokens in
  ``DATA/pki/softhsm`` (``agency-hsm``: the seal key that seals the axis's receipts;
  ``officer-usb``: officers' keys), random PINs in 0600 files, never printed;
- VDXP system ids and fresh secrets for the demo agencies (:mod:`server.vdxp.credentials`);
- ``DATA/demo``: the demo package, the status the recipient answers with, a Vietnamese PDF;
- ``DATA/lienthong.toml``: the config ``lienthong serve --config DATA/lienthong.toml`` uses:
  receipts sealed on the token, the audit log anchored with the demo TSA, and ``[devpki]`` so
  that serve runs the PKI's OCSP/CRL/TSA beside the axis (:mod:`server.app.devservices`).

:func:`guide` is the printed walkthrough; tests/e2e/test_demo.py runs its commands as printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from server.demo import content as demo
from server.runtime.config import Config
from server.vdxp.credentials import create_credentials, load_key, rotate_secret
from storage.db import Database
from storage.repos.vdxp import CredentialRepo

PKI_DIR_NAME = "pki"
CONFIG_NAME = "lienthong.toml"
SIGNED_PDF_NAME = "cong-van-mau-da-ky.pdf"
RECEIPT_NAME = "receipt.p7m"
OFFICER_KEY = "officer"  # Nguyễn Văn Ánh, Chủ tịch (certs/pki.yml)
OFFICER_NAME = "Nguyễn Văn Ánh"
OFFICER_TITLE = "CHỦ TỊCH"
SIGNATURE_IMAGE = Path(__file__).resolve().parents[2] / "certs" / "images" / "sample-signature.png"


class DemoSetupError(Exception):
    """The demo PKI or its tokens cannot be made; the message is one line."""


@dataclass(frozen=True)
class DemoPki:
    """The demo PKI in ``DATA/pki``: where it is, its service URLs, and its tokens (if any)."""

    directory: Path
    url_prefix: str
    tsa_url: str
    softhsm_conf: Path | None  # None: SoftHSM2 is not installed, so no tokens (no seal, no sign)
    note: str | None = None

    @property
    def root(self) -> Path:
        """The test root certificate (the one trust anchor of the demo)."""
        return self.directory / "trust" / "root.cert.pem"

    @property
    def chain(self) -> Path:
        """The intermediate CA (Test Government CA) certificate, embedded in signatures."""
        return self.directory / "certs" / "gov.cert.pem"

    def pin_file(self, token_label: str) -> Path:
        """The 0600 file holding the PIN of token ``token_label``."""
        return self.directory / "softhsm" / f"{token_label}.pin"


def _softhsm_available() -> str | None:
    """None when SoftHSM2 and opensc are installed, else why not (one line)."""
    from signing import devpki

    missing = [tool for tool in ("softhsm2-util", "pkcs11-tool") if shutil.which(tool) is None]
    if missing or not Path(devpki.SOFTHSM2_MODULE).is_file():
        return (
            "SoftHSM2/opensc are not installed (apt-get install softhsm2 opensc, or `make run`): "
            "no token, so no sealed receipts and no signing in this demo"
        )
    return None


def ensure_pki(data_dir: Path, port: int | None = None) -> DemoPki:
    """Generate the demo PKI and its SoftHSM2 tokens in ``data_dir/pki``, or reuse them.

    An existing PKI is kept as it is (same keys, certificates and tokens) unless ``port``
    names another port: the service URLs are inside the certificates, so then the certificates
    are re-issued for the new port and the tokens made again.
    """
    from signing import devpki
    from signing.errors import SigningError

    directory = (data_dir / PKI_DIR_NAME).resolve()
    store = directory / "softhsm"
    try:
        fresh = False
        if (directory / devpki.CONFIG_NAME).is_file():
            pki = devpki.load(directory)
            if port is not None and port != pki.port:
                pki = devpki.generate(directory, port=port)
                fresh = True
        else:
            pki = devpki.generate(directory, port=port or devpki.DEFAULT_PORT)
            fresh = True
    except SigningError as exc:
        raise DemoSetupError(f"demo PKI in {directory}: {exc}") from None

    labels = (devpki.AGENCY_HSM_LABEL, devpki.OFFICER_USB_LABEL)
    conf = store / "softhsm2.conf"
    tokens_dir = store / "tokens"
    ready = (
        not fresh
        and conf.is_file()
        and tokens_dir.is_dir()
        and any(tokens_dir.iterdir())
        and all((store / f"{label}.pin").is_file() for label in labels)
    )
    result = DemoPki(directory, pki.url_prefix, pki.tsa_url, conf)
    if ready:
        return result
    missing = _softhsm_available()
    if missing is not None:
        return DemoPki(directory, pki.url_prefix, pki.tsa_url, None, note=missing)
    if store.exists():  # half-made or for another port: tokens are cheap to make again
        shutil.rmtree(store)
    pins = {label: secrets.token_hex(6) for label in labels}
    try:
        devpki.make_dev_tokens(
            pki,
            store,
            agency_pin=pins[devpki.AGENCY_HSM_LABEL],
            officer_pin=pins[devpki.OFFICER_USB_LABEL],
        )
    except SigningError as exc:
        raise DemoSetupError(f"demo tokens in {store}: {exc}") from None
    for label, pin in pins.items():
        fd = os.open(store / f"{label}.pin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(pin + "\n")
    return result


def system_id(organ_id: str) -> str:
    """The demo VDXP system id of an agency: 000.00.12.H41 -> demo-12-h41."""
    groups = organ_id.split(".")
    while len(groups) > 1 and not groups[0].strip("0"):
        groups.pop(0)
    return "demo-" + "-".join(groups).lower()


async def seed_vdxp(database: Database, data_dir: Path) -> dict[str, tuple[str, str]]:
    """Give every demo agency a VDXP system id (first run) and a fresh secret (every run).

    Returns ``{organ_id: (system_id, secret)}``; the secrets are shown once, like the tokens.
    """
    key = load_key(data_dir, create=True)
    result: dict[str, tuple[str, str]] = {}
    for agency in demo.DEMO_AGENCIES:
        async with database.reader() as tx:
            current = await CredentialRepo(tx).by_organ(agency.organ_id)
        if current is None:
            sid = system_id(agency.organ_id)
            result[agency.organ_id] = (
                sid,
                await create_credentials(database, agency.organ_id, sid, key),
            )
        else:
            result[agency.organ_id] = await rotate_secret(database, agency.organ_id, key)
    return result


def _toml(value: str | Path) -> str:
    # JSON strings are TOML basic strings (same escapes), and paths need nothing more.
    return json.dumps(str(value), ensure_ascii=False)


def write_config(config: Config, pki: DemoPki) -> Path:
    """Write ``DATA/lienthong.toml`` for ``lienthong serve`` (rewritten at every demo run)."""
    from signing import devpki

    data_dir = config.storage.data_dir
    lines = [
        "# Written by `lienthong demo` (rewritten at every run): DEVELOPMENT ONLY.",
        f"# Used by: lienthong serve --config {data_dir / CONFIG_NAME} --data-dir {data_dir}",
        "# Your own settings belong in conf/lienthong.toml; see docs/ for each section.",
        "",
        "[server]",
        f"host = {_toml(config.server.host)}",
        f"port = {config.server.port}",
        f"axis_id = {_toml(config.server.axis_id)}",
        "log_json = false  # readable lines on the terminal",
        "",
        "[storage]",
        f"data_dir = {_toml(data_dir.resolve())}",
        "",
        "# The demo TSA (served by `serve` itself, see [devpki]): receipts and audit anchors.",
        "[tsa]",
        f"url = {_toml(pki.tsa_url)}",
        "",
        "[audit]",
        "anchor_minutes = 1",
        "",
        "# Citizen feedback sent from /phan-anh and the API goes to the province's office first.",
        "[feedback]",
        'receiving_unit = "000.00.00.H41"',
        "",
        "[signing]",
        f"chain = {_toml(pki.chain)}",
    ]
    if pki.softhsm_conf is not None:
        lines += [
            "",
            "# The axis seal: key `seal` on the SoftHSM2 token `agency-hsm`, PIN in a 0600 file.",
            "[seal]",
            f"pkcs11_module = {_toml(devpki.SOFTHSM2_MODULE)}",
            f"token_label = {_toml(devpki.AGENCY_HSM_LABEL)}",
            'key_label = "seal"',
            f"pin_file = {_toml(pki.pin_file(devpki.AGENCY_HSM_LABEL))}",
            f"chain = {_toml(pki.chain)}",
        ]
    lines += [
        "",
        "# DEVELOPMENT ONLY: serve also runs this test PKI's OCSP/CRL/TSA on loopback, trusts",
        "# its test root, and finds the SoftHSM2 tokens in it. Never in production.",
        "[devpki]",
        f"dir = {_toml(pki.directory)}",
        "",
    ]
    path = data_dir / CONFIG_NAME
    data = "\n".join(lines).encode("utf-8")
    demo.write_if_changed(path, data)
    return path


def _shown(path: Path) -> str:
    """A path as the guide prints it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _bin_dir() -> str | None:
    """``export PATH=...`` target for the ``lienthong`` of this installation, if not on PATH."""
    directory = Path(sys.executable).parent
    if not (directory / "lienthong").exists():
        return None
    shown = _shown(directory)
    return f"$PWD/{shown}" if not shown.startswith("/") else shown


def guide(config: Config, pki: DemoPki, *, sender_var: str, recipient_var: str) -> str:
    """The printed walkthrough: one shell block (two-space indent) then notes.

    The block is meant to be pasted as is, after the token ``export`` lines, in a second
    terminal in the working directory of ``lienthong demo``, while the axis runs.
    """
    from signing import devpki

    data = config.storage.data_dir
    d = str(data)  # as given, e.g. `data` for `make run`: the guide reads like the README
    package = f"{d}/demo/{demo.DEMO_PACKAGE_NAME}"
    auth_s = f'-H "Authorization: Bearer ${sender_var}"'
    auth_r = f'-H "Authorization: Bearer ${recipient_var}"'
    xml = '-H "Content-Type: application/xml"'
    pick = "first"  # a shell function defined by the guide (as in the README)
    root = f"{d}/{PKI_DIR_NAME}/trust/root.cert.pem"
    lines = [
        f"Demo package ({demo.DEMO_SENDER} -> {demo.DEMO_RECIPIENT}): {package}",
        f"Start the axis: lienthong serve --config {d}/{CONFIG_NAME} --data-dir {d}"
        "   (`make run` does)",
        "",
        "Then, in a second terminal in this directory, paste the export lines above and run:",
        f"  AXIS={config.base_url}",
    ]
    bin_dir = _bin_dir()
    if bin_dir is not None:
        lines.append(f'  export PATH="{bin_dir}:$PATH"')
    lines += [
        "  # 1. Văn phòng Chính phủ sends the demo package: HTTP 201 {id, ..., receipt_url}",
        f"  curl -sS {auth_s} {xml} -w '\\nHTTP %{{http_code}}\\n' \\",
        f'      --data-binary @{package} "$AXIS/api/v1/documents"',
        "  # 2. UBND tỉnh Nghệ An reads its inbox",
        f'  curl -sS {auth_r} "$AXIS/api/v1/inbox?state=new"; echo',
        "  first() { python3 -c 'import json,sys; "
        'print(json.load(sys.stdin)["items"][0][sys.argv[1]])\' "$1"; }',
        f'  DOC=$(curl -sS {auth_r} "$AXIS/api/v1/inbox?state=new" | {pick} document_id)',
        f'  DELIVERY=$(curl -sS {auth_r} "$AXIS/api/v1/inbox?state=new" | {pick} delivery_id)',
        "  # 3. it fetches the package as stored (ETag = sha256) and the attachment decoded",
        f'  curl -sS {auth_r} -o {d}/demo/received.edxml "$AXIS/api/v1/documents/$DOC"',
        f'  curl -sS {auth_r} "$AXIS/api/v1/documents/$DOC/attachments/0"; echo',
        "  # 4. it acknowledges the delivery (idempotent)",
        f'  curl -sS -X POST {auth_r} "$AXIS/api/v1/inbox/$DELIVERY/ack"; echo',
        "  # 5. it answers with status 03 (đã tiếp nhận); the sender reads the history",
        f"  curl -sS {auth_r} {xml} \\",
        f'      --data-binary @{d}/demo/{demo.DEMO_STATUS_NAME} "$AXIS/api/v1/statuses"; echo',
        f'  curl -sS {auth_s} "$AXIS/api/v1/documents/$DOC/statuses"; echo',
    ]
    if pki.softhsm_conf is not None:
        signed = f"{d}/demo/{SIGNED_PDF_NAME}"
        lines += [
            "  # 6. the sender's receipt (biên nhận), sealed on the axis HSM, checked offline",
            f'  curl -sS {auth_s} -o {d}/demo/{RECEIPT_NAME} "$AXIS/api/v1/documents/$DOC/receipt"',
            f"  lienthong receipt verify {d}/demo/{RECEIPT_NAME} {package} --trust {root}",
            f"  # 7. Chủ tịch {OFFICER_NAME} signs the demo PDF with the key on his USB token",
            f"  #    (SoftHSM2 token {devpki.OFFICER_USB_LABEL}; PIN from its 0600 file), "
            "timestamped by the demo TSA",
            f"  export SOFTHSM2_CONF={_shown(pki.softhsm_conf)}",
            f"  lienthong sign {d}/demo/{demo.DEMO_PDF_NAME} -o {signed} \\",
            f"      --token-label {devpki.OFFICER_USB_LABEL} --key-label {OFFICER_KEY} "
            f"--pin-file {d}/{PKI_DIR_NAME}/softhsm/{devpki.OFFICER_USB_LABEL}.pin \\",
            f"      --chain {d}/{PKI_DIR_NAME}/certs/gov.cert.pem --trust-root {root} \\",
            f"      --level B-T --tsa {pki.tsa_url} \\",
            f"      --profile signer --title '{OFFICER_TITLE}' --name '{OFFICER_NAME}' "
            f"--image {_shown(SIGNATURE_IMAGE)}",
            f"  lienthong verify {signed} --trust {root} --online",
        ]
    lines += [
        "  # 8. the audit log: hash chain intact, anchors timestamped by the demo TSA",
        "  #    (every minute, and when the axis stops)",
        f"  lienthong audit verify --data-dir {d} --trust {root}",
    ]
    lines += [
        "",
        f"Verification page (xác minh chữ ký): {config.base_url}/xac-minh"
        + (f" (upload {d}/demo/{SIGNED_PDF_NAME})" if pki.softhsm_conf is not None else ""),
        f"Test PKI: {_shown(pki.directory)} (OCSP, CRL, TSA at {pki.url_prefix} while the axis "
        f"runs; trust root {root}). DEVELOPMENT ONLY.",
    ]
    if pki.note:
        lines.append(f"Note: {pki.note}")
    return "\n".join(lines)


def vdxp_lines(base_url: str, credentials: dict[str, tuple[str, str]]) -> list[str]:
    """The VDXP credentials (secrets shown once, ASCII columns) and one example call."""
    width = max(len(sid) for sid, _ in credentials.values())
    rows = [f"  {organ}  {sid:<{width}}  {secret}" for organ, (sid, secret) in credentials.items()]
    example_sid = credentials[demo.DEMO_RECIPIENT][0]
    return [
        "VDXP (national axis protocol) system ids and fresh secrets (shown once):",
        *rows,
        f"  e.g. LIENTHONG_VDXP_SECRET=<its secret> lienthong vdxp list "
        f"--endpoint {base_url}/vdxp --system-id {example_sid}",
    ]
