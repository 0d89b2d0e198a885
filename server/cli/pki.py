"""``lienthong pki``: generate and serve the development/test PKI (``certs/pki.yml``).

``lienthong pki dev DIR [--port N]`` writes keys (never commit them), certificates and CRLs into
DIR; ``lienthong pki serve DIR`` serves its OCSP, CRL and TSA on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import ipaddress
import threading
from typing import Any

from server.cli import CliError


def _cmd_dev(args: argparse.Namespace) -> int:
    from signing import devpki
    from signing.errors import SigningError

    try:
        pki = devpki.generate(args.dir, port=args.port, host=args.host, definition=args.definition)
    except SigningError as exc:
        raise CliError(str(exc)) from None
    print(f"test PKI generated in {pki.directory} (services at {pki.url_prefix})")
    print(f"trust root: {pki.directory / 'trust' / 'root.cert.pem'}")
    if args.tokens:
        _make_tokens(pki)
    return 0


def _make_tokens(pki: Any) -> None:
    """SoftHSM2 tokens for the demo; PINs random, in 0600 files beside them, never printed."""
    import os
    import secrets

    from signing import devpki
    from signing.errors import SigningError

    store_dir = pki.directory / "softhsm"
    if (store_dir / "tokens").exists() and any((store_dir / "tokens").iterdir()):
        raise CliError(f"{store_dir} already holds tokens; remove it to make new ones")
    pins = {
        devpki.AGENCY_HSM_LABEL: secrets.token_hex(6),
        devpki.OFFICER_USB_LABEL: secrets.token_hex(6),
    }
    try:
        store = devpki.make_dev_tokens(
            pki, store_dir, agency_pin=pins[devpki.AGENCY_HSM_LABEL],
            officer_pin=pins[devpki.OFFICER_USB_LABEL],
        )  # fmt: skip
    except SigningError as exc:
        raise CliError(str(exc)) from None
    for label, pin in pins.items():
        fd = os.open(store_dir / f"{label}.pin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(pin + "\n")
    print(f"SoftHSM2 tokens {', '.join(pins)} in {store_dir}:")
    print(f"  export SOFTHSM2_CONF={store.conf}")
    print(f"  PIN files: {store_dir}/<token>.pin (use --pin-file)")


def _cmd_serve(args: argparse.Namespace) -> int:
    from signing import devpki
    from signing.errors import SigningError

    try:
        pki = devpki.load(args.dir)
        host = pki.url_prefix.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            host = "127.0.0.1"
        server = devpki.PkiServer(pki, host=host)
        server.start()
    except SigningError as exc:
        raise CliError(str(exc)) from None
    print(f"serving OCSP {pki.ocsp_url}, CRL {pki.crl_url()}, TSA {pki.tsa_url} (Ctrl-C stops)")
    try:
        threading.Event().wait()
    finally:
        server.stop()
    return 0


def register(sub: Any) -> None:
    """Add the ``pki`` command group to the ``lienthong`` parser."""
    parser = sub.add_parser("pki", help="the development/test PKI (certs/pki.yml)")
    pki_sub = parser.add_subparsers(dest="pki_command", metavar="ACTION")
    pki_sub.required = True
    dev = pki_sub.add_parser("dev", help="generate keys, certificates and CRLs into DIR")
    dev.add_argument("dir", help="target directory (keys are written here, never commit it)")
    dev.add_argument("--port", type=int, default=9780, help="port of the services (9780)")
    dev.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "::1", "localhost"))
    dev.add_argument("--definition", help="certomancer YAML (default: certs/pki.yml)")
    dev.add_argument(
        "--tokens", action="store_true",
        help="also make SoftHSM2 tokens (agency-hsm: seal; officer-usb: officers) in DIR/softhsm",
    )  # fmt: skip
    dev.set_defaults(func=_cmd_dev)
    serve = pki_sub.add_parser("serve", help="serve OCSP, CRL and TSA of DIR on loopback")
    serve.add_argument("dir", help="a directory made by `lienthong pki dev`")
    serve.set_defaults(func=_cmd_serve)
