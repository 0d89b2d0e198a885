"""``lienthong serve``: run the axis on a data directory (created if needed)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from server.app.devservices import DevServicesError, dev_services
from server.cli import CliError
from server.cli.options import add_local_options, local_config
from server.runtime.config import ConfigError, with_overrides
from storage.private import private_umask


def register(sub: Any) -> None:
    """Add ``serve`` to the ``lienthong`` parser."""
    serve = sub.add_parser("serve", help="run the axis (HTTP API, /healthz, home page)")
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default: server.port, 8080)")
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port (default: server.workers, 1)",
    )
    add_local_options(serve)
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; the database and its migrations are applied at start-up."""
    from server.app.workers import run  # aiohttp's server is imported only when serving

    if args.port is not None and not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a TCP port")
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise CliError(f"--workers {args.workers} is not between 1 and 64")
    config = with_overrides(
        local_config(args), host=args.host, port=args.port, workers=args.workers
    )
    # [devpki] (development only, written by `lienthong demo`): the test PKI's OCSP/CRL/TSA run
    # beside the axis, and SoftHSM2 and the trust store point at it before the app loads keys.
    try:
        with dev_services(config) as pki_url:
            if pki_url is not None:
                print(
                    f"lienthong: DEVELOPMENT test PKI (OCSP, CRL, TSA) served on {pki_url}"
                    f" from {config.devpki.dir}",
                    file=sys.stderr,
                    flush=True,
                )
            print(
                f"lienthong: serving {config.storage.data_dir.resolve()} on "
                f"{'https' if config.tls.certificate else 'http'}://"
                f"{config.server.host}:{config.server.port} (Ctrl+C to stop)",
                file=sys.stderr,
                flush=True,
            )
            # Files under the data directory are private (storage/private.py): what libraries
            # create there (metric files, spool files) too. Workers inherit the umask.
            with private_umask():
                run(config)
    except (DevServicesError, ConfigError) as exc:  # ConfigError: e.g. an unusable TLS key
        raise CliError(str(exc)) from None
    return 0
