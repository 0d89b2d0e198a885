"""TLS test material from the session's test PKI (certs/pki.yml): the axis's server
certificate for 127.0.0.1/localhost, agency and axis client certificates issued by the test
government CA, one from the look-alike CA; and an axis served over HTTPS on 127.0.0.1 exactly as
``serve_app`` serves it (``web.TCPSite`` with :func:`server.runtime.tls.server_context`)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from server.app.application import build_app
from server.cli import main as cli_main
from server.http.appkeys import DATABASE
from server.runtime.config import Config, load_config
from server.runtime.tls import server_context
from server.runtime.tokens import new_token
from signing.devpki import DevPki
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

VPCP = "000.00.00.G22"
NGHE_AN = "000.00.00.H41"
CLIENT_LABELS = ("tls-agency", "tls-agency2", "tls-axis", "tls-stranger")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the root CA, and per label (server and clients) a chain (leaf + issuing
    CA) and its key."""

    root: Path
    chains: dict[str, Path]
    keys: dict[str, Path]

    def client(self, label: str | None = None) -> ssl.SSLContext:
        """A client context trusting the test root, presenting ``label``'s certificate."""
        context = ssl.create_default_context(cafile=self.root)
        if label is not None:
            context.load_cert_chain(self.chains[label], self.keys[label])
        return context


@pytest.fixture(scope="session")
def tls_files(pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The TLS files of the session's test PKI (written once)."""
    out = tmp_path_factory.mktemp("tls")
    certs = pki.directory / "certs"
    chains: dict[str, Path] = {}
    keys: dict[str, Path] = {}
    for label in ("tls-server", *CLIENT_LABELS):
        issuer = "lookalike" if label == "tls-stranger" else "gov"
        chain = out / f"{label}.chain.pem"
        chain.write_bytes(
            (certs / f"{label}.cert.pem").read_bytes() + (certs / f"{issuer}.cert.pem").read_bytes()
        )
        chains[label] = chain
        keys[label] = pki.key_path(label)
    return TlsFiles(root=certs / "root.cert.pem", chains=chains, keys=keys)


def tls_env(files: TlsFiles, client_certificates: str | None = "optional") -> dict[str, str]:
    """``[server.tls]`` as LIENTHONG_SERVER_TLS_* variables; no client CA when
    ``client_certificates`` is None."""
    env = {
        "LIENTHONG_SERVER_TLS_CERTIFICATE": str(files.chains["tls-server"]),
        "LIENTHONG_SERVER_TLS_KEY": str(files.keys["tls-server"]),
    }
    if client_certificates is not None:
        env["LIENTHONG_SERVER_TLS_CLIENT_CA"] = str(files.root)
        env["LIENTHONG_SERVER_TLS_CLIENT_CERTIFICATES"] = client_certificates
    return env


@dataclass
class HttpsAxis:
    """An axis served over HTTPS on 127.0.0.1, with agencies and a token each."""

    config: Config
    runner: web.AppRunner
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    async def add(self, organ_id: str, name: str) -> str:
        """Add an agency with a bearer token; return the token."""
        async with self.runner.app[DATABASE].transaction() as tx:
            await AgencyRepo(tx).add(organ_id, name)
        return await self.add_token(organ_id)

    async def add_token(self, organ_id: str) -> str:
        """A new bearer token of an existing agency."""
        async with self.runner.app[DATABASE].transaction() as tx:
            token, digest = new_token()
            await TokenRepo(tx).create(organ_id, digest, label="test")
        self.tokens[organ_id] = token
        return token

    async def cli(self, *args: str) -> tuple[int, str]:
        """``lienthong ARGS --data-dir DIR`` in a thread (it runs its own event loop), as an
        operator runs it beside the server; its exit status and stdout."""
        out = self.config.storage.data_dir.parent / "cli.out"

        def run() -> int:
            with out.open("w") as stream, contextlib.redirect_stdout(stream):
                return cli_main([*args, "--data-dir", str(self.config.storage.data_dir)])

        code = await asyncio.to_thread(run)
        return code, out.read_text()


async def start_https_axis(data_dir: Path, env: dict[str, str]) -> HttpsAxis:
    """Build the app from ``env`` and serve it as ``serve_app`` does, on a free port."""
    config = load_config(env={"LIENTHONG_SERVER_LOG_JSON": "0", **env}, data_dir=data_dir)
    context = server_context(config)
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if context is not None else "http"
    return HttpsAxis(config, runner, f"{scheme}://127.0.0.1:{port}")
