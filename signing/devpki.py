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
import secrets
import subprocess
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


SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
AGENCY_HSM_LABEL = "agency-hsm"
OFFICER_USB_LABEL = "officer-usb"


class SoftHsmStore:
    """A SoftHSM2 token directory with its own config file (development and tests only).

    Tokens are made with ``softhsm2-util`` and keys imported with ``pkcs11-tool`` (opensc). The
    PKCS#11 module reads ``SOFTHSM2_CONF`` once, when it is loaded: call :meth:`activate` (or
    export the variable) before the first :class:`signing.tokens.Token` is opened.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        tokens = self.directory / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self.conf = self.directory / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )

    def activate(self) -> None:
        """Point this process's ``SOFTHSM2_CONF`` at this store."""
        os.environ["SOFTHSM2_CONF"] = str(self.conf)

    def _run(self, *args: str, pin: str | None = None) -> None:
        env = dict(os.environ, SOFTHSM2_CONF=str(self.conf))
        if pin is not None:
            env["LIENTHONG_DEV_TOKEN_PIN"] = pin  # kept off the command line
        try:
            subprocess.run(args, check=True, env=env, capture_output=True)
        except FileNotFoundError as exc:
            raise PkiError(f"{args[0]} is missing (apt-get install softhsm2 opensc)") from exc
        except subprocess.CalledProcessError as exc:
            # Never the command itself (nor the exception, which holds it): softhsm2-util only
            # takes the PIN on its command line.
            detail = exc.stderr.decode(errors="replace").strip().splitlines()
            why = detail[-1] if detail else f"exit status {exc.returncode}"
            raise PkiError(f"{args[0]} failed: {why}") from None

    def init_token(self, label: str, pin: str) -> None:
        """A new token ``label`` in a free slot, user PIN ``pin`` (the SO PIN is thrown away)."""
        self._run(
            "softhsm2-util", "--init-token", "--free", "--label", label,
            "--pin", pin, "--so-pin", secrets.token_hex(8),
        )  # fmt: skip

    def import_key(
        self, token: str, pin: str, label: str, key_pem: Path, cert_der: bytes, object_id: str
    ) -> None:
        """Import a PEM private key and its certificate, both labelled ``label``."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_file = self.directory / f".{label}.key.der"
        cert_file = self.directory / f".{label}.cert.der"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_der)
        cert_file.write_bytes(cert_der)
        common = ("pkcs11-tool", "--module", SOFTHSM2_MODULE, "--token-label", token,
                  "--login", "--pin", "env:LIENTHONG_DEV_TOKEN_PIN")  # fmt: skip
        obj = ("--id", object_id, "--label", label)
        try:
            self._run(*common, "--write-object", str(key_file), "--type", "privkey", *obj,
                      "--usage-sign", pin=pin)  # fmt: skip
            self._run(*common, "--write-object", str(cert_file), "--type", "cert", *obj,
                      pin=pin)  # fmt: skip
        finally:
            key_file.unlink(missing_ok=True)
            cert_file.unlink(missing_ok=True)


def make_dev_tokens(
    pki: DevPki,
    directory: str | os.PathLike[str],
    *,
    agency_pin: str,
    officer_pin: str,
    officers: tuple[str, ...] = ("officer", "officer2"),
) -> SoftHsmStore:
    """An agency HSM token (the ``seal`` key) and an officer USB token (``officers`` keys)."""
    store = SoftHsmStore(directory)
    store.init_token(AGENCY_HSM_LABEL, agency_pin)
    store.import_key(AGENCY_HSM_LABEL, agency_pin, "seal", pki.key_path("seal"),
                     pki.cert("seal").dump(), "01")  # fmt: skip
    store.init_token(OFFICER_USB_LABEL, officer_pin)
    for n, label in enumerate(officers, start=1):
        store.import_key(OFFICER_USB_LABEL, officer_pin, label, pki.key_path(label),
                         pki.cert(label).dump(), f"{n:02x}")  # fmt: skip
    return store
