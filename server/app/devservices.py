"""DEVELOPMENT ONLY: the test PKI beside ``lienthong serve`` when ``[devpki] dir`` is set.

``lienthong demo`` writes a config with ``[devpki] dir = <data>/pki``; with it, ``serve``:

- points ``SOFTHSM2_CONF`` at the PKI's SoftHSM2 store (``DIR/softhsm/softhsm2.conf``), so the
  seal key of ``[seal]`` is found on the demo token (the PKCS#11 module reads the variable once,
  when it is loaded, which is why this happens before the app starts);
- adds the PKI's test root to the trust store (``LIENTHONG_SIGNING_TEST_TRUST``): the
  verification page and signing sessions accept signatures made with the demo tokens;
- serves the PKI's OCSP, CRL and TSA with certomancer's animator on loopback, on the port its
  certificates name, on a thread of its own, for as long as the axis runs (the TSA must still
  answer at shutdown, when the audit head is anchored one last time).

Nothing here is meant for production: a real axis uses a real TSA and trusts only real roots.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from server.runtime.config import Config

SOFTHSM2_CONF_ENV = "SOFTHSM2_CONF"


class DevServicesError(Exception):
    """The ``[devpki]`` directory cannot be used (not generated, port taken)."""


@contextlib.contextmanager
def dev_services(config: Config) -> Iterator[str | None]:
    """Prepare the process for ``[devpki] dir`` and serve its PKI while the block runs.

    Yields the URL prefix of the PKI services, or None when ``[devpki] dir`` is not set (then
    nothing is touched). Raises :class:`DevServicesError` with a one-line reason.
    """
    directory = config.devpki.dir
    if directory is None:
        yield None
        return
    from signing import devpki
    from signing.errors import SigningError

    try:
        pki = devpki.load(directory)
    except SigningError as exc:
        raise DevServicesError(f"setting devpki.dir: {exc}") from None
    softhsm_conf = pki.directory / "softhsm" / "softhsm2.conf"
    if softhsm_conf.is_file():
        os.environ[SOFTHSM2_CONF_ENV] = str(softhsm_conf.resolve())
    from signing.trust import TEST_TRUST_ENV

    os.environ[TEST_TRUST_ENV] = str((pki.directory / "trust").resolve())
    server = None
    if config.devpki.serve:
        server = devpki.PkiServer(pki, host=_loopback_host(pki.url_prefix))
        try:
            server.start()
        except SigningError as exc:
            raise DevServicesError(
                f"{exc} (is another `lienthong serve` or `lienthong pki serve` running?)"
            ) from None
    try:
        yield pki.url_prefix
    finally:
        if server is not None:
            server.stop()


def _loopback_host(url_prefix: str) -> str:
    """The host of ``http://HOST:PORT`` (brackets removed for IPv6); 127.0.0.1 for names."""
    host = url_prefix.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
    return host if host in ("127.0.0.1", "::1") else "127.0.0.1"
