"""The development/test PKI defined in ``certs/pki.yml`` (certomancer), for tests and the demo.

:func:`generate` (behind ``lienthong pki dev DIR``) generates the private keys (RSA-2048, only
into DIR, never committed), renders the definition into ``DIR/pki.yml`` with the service URL
prefix ``http://127.0.0.1:PORT``, and writes every certificate (``DIR/certs/LABEL.cert.pem``),
the current CRLs (``DIR/crls/LABEL.crl``) and the trust root (``DIR/trust/root.cert.pem``).
:class:`PkiServer` (behind ``lienthong pki serve DIR``) serves OCSP, CRL and TSA for that PKI on
the loopback interface only.

The same functions back the test fixtures (``tests/fixtures_pki.py``), so the demo and the
tests run on one definition. Nothing here is for production: real trust roots live in
``certs/`` and real keys on tokens.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from asn1crypto import pem, x509

from signing.errors import SigningError

ARCH_LABEL = "lienthong-test"
DEFAULT_PORT = 9780
CONFIG_NAME = "pki.yml"
DEFINITION_PATH = Path(__file__).resolve().parents[1] / "certs" / "pki.yml"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_PREFIX_LINE = re.compile(r"^external-url-prefix:.*$", re.MULTILINE)


class PkiError(SigningError):
    """The test PKI cannot be generated, loaded or served."""


@dataclass
class DevPki:
    """A generated test PKI: its directory, service URLs and loaded certomancer architecture."""

    directory: Path
    url_prefix: str
    arch: Any = field(repr=False)

    def cert(self, label: str) -> x509.Certificate:
        """The certificate labelled ``label`` in ``certs/pki.yml`` (e.g. ``officer``)."""
        from certomancer.registry import CertLabel

        return self.arch.get_cert(CertLabel(label))

    def key_path(self, label: str) -> Path:
        """The PKCS#8 PEM private key file of key ``label`` (development only)."""
        return self.directory / "keys" / f"{label}.key.pem"

    def cert_path(self, label: str) -> Path:
        return self.directory / "certs" / f"{label}.cert.pem"

    @property
    def root_cert(self) -> x509.Certificate:
        return self.cert("root")

    @property
    def tsa_url(self) -> str:
        return f"{self.url_prefix}/{ARCH_LABEL}/tsa/tsa"

    @property
    def ocsp_url(self) -> str:
        return f"{self.url_prefix}/{ARCH_LABEL}/ocsp/gov"

    def crl_url(self, repo: str = "gov") -> str:
        return f"{self.url_prefix}/{ARCH_LABEL}/crls/{repo}/latest.crl"

    @property
    def port(self) -> int:
        return int(self.url_prefix.rsplit(":", 1)[1])


def _key_labels(definition: dict[str, Any]) -> list[str]:
    keysets = definition["keysets"]
    labels: list[str] = []
    for keyset in keysets.values():
        labels.extend(keyset["keys"])
    return labels


def _write_private_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written 0600 from the start: these keys sign test documents only, but stay private.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def generate(
    directory: str | os.PathLike[str],
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    definition: str | os.PathLike[str] | None = None,
) -> DevPki:
    """Generate (or refresh) the test PKI in ``directory`` and return it loaded.

    Existing keys are kept, so running it twice re-issues the same certificates; only the
    URL prefix (``http://HOST:PORT``) and the CRLs are rewritten.
    """
    if host not in LOOPBACK_HOSTS:
        raise PkiError(f"the test PKI serves on the loopback interface only, not {host!r}")
    source = Path(definition) if definition is not None else DEFINITION_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PkiError(f"cannot read the PKI definition {source}: {exc.strerror}") from exc
    url_host = f"[{host}]" if ":" in host else host
    prefix = f"http://{url_host}:{port}"
    text = _PREFIX_LINE.sub(f'external-url-prefix: "{prefix}"', text, count=1)
    target = Path(directory)
    keys = target / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    os.chmod(keys, 0o700)
    for label in _key_labels(yaml.safe_load(text)):
        key_file = keys / f"{label}.key.pem"
        if not key_file.exists():
            _write_private_key(key_file)
    (target / CONFIG_NAME).write_text(text, encoding="utf-8")
    pki = load(target)
    pki.arch.dump_certs(str(target / "certs"), use_pem=True, flat=True)
    crls = target / "crls"
    crls.mkdir(exist_ok=True)
    for repo in pki.arch.service_registry.list_crl_repos():
        crl = pki.arch.service_registry.get_crl(repo.label)
        (crls / f"{repo.label.value}.crl").write_bytes(crl.dump())
    (target / "trust").mkdir(exist_ok=True)
    (target / "trust" / "root.cert.pem").write_bytes(pem.armor("CERTIFICATE", pki.root_cert.dump()))
    return pki


def load(directory: str | os.PathLike[str]) -> DevPki:
    """Load a PKI generated by :func:`generate` (certificates are re-derived deterministically)."""
    from certomancer.registry import ArchLabel, CertomancerConfig

    target = Path(directory)
    config_path = target / CONFIG_NAME
    if not config_path.is_file():
        raise PkiError(f"{target} holds no generated PKI (run `lienthong pki dev {target}`)")
    try:
        config = CertomancerConfig.from_file(str(config_path), key_search_dir=str(target))
    except Exception as exc:  # certomancer raises assorted errors for a bad definition
        raise PkiError(f"cannot load the test PKI in {target}: {exc}") from exc
    return DevPki(
        directory=target,
        url_prefix=config.external_url_prefix,
        arch=config.get_pki_arch(ArchLabel(ARCH_LABEL)),
    )


class PkiServer:
    """OCSP, CRL and TSA of a :class:`DevPki`, served by certomancer's animator on loopback.

    Runs an aiohttp server on its own thread and event loop, so synchronous tests and the
    ``serve`` command can both use it: ``with PkiServer(pki): ...``.
    """

    def __init__(self, pki: DevPki, host: str = "127.0.0.1") -> None:
        if host not in LOOPBACK_HOSTS:
            raise PkiError(f"the test PKI serves on the loopback interface only, not {host!r}")
        self.pki = pki
        self.host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Start serving; returns once the port is bound (or raises why it could not be)."""
        self._thread = threading.Thread(target=self._run, name="pki-server", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise PkiError(f"cannot serve the test PKI on port {self.pki.port}: {self._error}")

    def _run(self) -> None:
        from aiohttp import web
        from certomancer.integrations.aiohttp_animator import build_animator_app

        loop = asyncio.new_event_loop()
        self._loop = loop
        app = build_animator_app(
            {self.pki.arch.arch_label: self.pki.arch},
            with_web_ui=False,
            allow_time_override=False,
        )
        runner = web.AppRunner(app, access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.pki.port)
            loop.run_until_complete(site.start())
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> PkiServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
