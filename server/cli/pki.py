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
    return 0


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
    dev.set_defaults(func=_cmd_dev)
    serve = pki_sub.add_parser("serve", help="serve OCSP, CRL and TSA of DIR on loopback")
    serve.add_argument("dir", help="a directory made by `lienthong pki dev`")
    serve.set_defaults(func=_cmd_serve)
