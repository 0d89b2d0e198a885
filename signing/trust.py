"""The trust store: root certificates a signature chain must end in.

Production roots (the government CA, Ban Cơ yếu Chính phủ) are files in ``certs/trust/``
(PEM or DER, ``*.pem``, ``*.crt``, ``*.cer``, ``*.der``). The test root of the development PKI
(``lienthong pki dev DIR`` writes ``DIR/trust/root.cert.pem``) is added only when configured
explicitly, e.g. with ``LIENTHONG_SIGNING_TEST_TRUST=DIR/trust``. There is never a fallback to
the operating system's store (SIGNING-NOTES trap 10).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import pem, x509

from signing.errors import SigningError

DEFAULT_TRUST_DIR = Path(__file__).resolve().parents[1] / "certs" / "trust"
TEST_TRUST_ENV = "LIENTHONG_SIGNING_TEST_TRUST"
_SUFFIXES = {".pem", ".crt", ".cer", ".der"}


class TrustStoreError(SigningError):
    """A trust anchor file cannot be read or is not a certificate."""


def load_certificates(data: bytes, source: str = "<bytes>") -> list[x509.Certificate]:
    """All certificates in ``data`` (one DER certificate or any number of PEM blocks)."""
    try:
        if pem.detect(data):
            return [
                x509.Certificate.load(der)
                for kind, _hdr, der in pem.unarmor(data, multiple=True)
                if kind == "CERTIFICATE"
            ]
        cert = x509.Certificate.load(data)
        cert.native  # noqa: B018 - forces a full parse so a bad file fails here, not later
        return [cert]
    except (ValueError, TypeError) as exc:
        raise TrustStoreError(f"{source}: not a certificate ({exc})") from exc


@dataclass
class TrustStore:
    """A set of trust anchors (root certificates)."""

    roots: list[x509.Certificate] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add_dir(self, directory: str | os.PathLike[str]) -> None:
        """Add every certificate file found directly in ``directory`` (missing dir: no-op)."""
        path = Path(directory)
        if not path.is_dir():
            return
        for item in sorted(path.iterdir()):
            if item.suffix.lower() in _SUFFIXES and item.is_file():
                self.add_file(item)

    def add_file(self, path: str | os.PathLike[str]) -> None:
        """Add the certificates of one PEM or DER file; unreadable: :class:`TrustStoreError`."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise TrustStoreError(f"cannot read trust anchor {path}: {exc.strerror}") from exc
        self.add(load_certificates(data, str(path)), str(path))

    def add(self, certs: Iterable[x509.Certificate], source: str = "<memory>") -> None:
        """Add ``certs`` as anchors (each once, whatever its source), noting ``source``."""
        known = {c.sha256 for c in self.roots}
        for cert in certs:
            if cert.sha256 not in known:
                self.roots.append(cert)
                known.add(cert.sha256)
        self.sources.append(source)

    def fingerprint(self) -> str:
        """A short digest of the anchors, used to key caches built on this store."""
        import hashlib

        digest = hashlib.sha256()
        for sha in sorted(c.sha256 for c in self.roots):
            digest.update(sha)
        return digest.hexdigest()[:16]


def default_trust_store(
    trust_dir: str | os.PathLike[str] | None = None,
    extra_dirs: Iterable[str | os.PathLike[str]] = (),
) -> TrustStore:
    """The configured store: ``certs/trust/`` (or ``trust_dir``), the test root if
    ``LIENTHONG_SIGNING_TEST_TRUST`` names a directory, and ``extra_dirs``."""
    store = TrustStore()
    store.add_dir(trust_dir if trust_dir is not None else DEFAULT_TRUST_DIR)
    test_dir = os.environ.get(TEST_TRUST_ENV)
    if test_dir:
        store.add_dir(test_dir)
    for extra in extra_dirs:
        store.add_dir(extra)
    return store
