"""OCSP/CRL fetching with a cache keyed by certificate and bounded by each answer's validity.

One set of fetchers per process shares one HTTP session (SIGNING-NOTES trap 10) and is handed to
every validation context. Before going to the network, a fetch looks in the cache:

* OCSP answers are keyed by (issuer public key, serial number) of the certificate asked about;
* CRLs are keyed by the certificate's issuer and distribution-point URLs;

and an entry is used only until the earliest ``nextUpdate`` it carries (minus a safety margin).
Answers without a ``nextUpdate`` are never reused. Hard-fail still holds: a missing or expired
answer is fetched again, and if that fails the signer is not PASSED.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession
from pyhanko_certvalidator.fetchers.api import (
    CertificateFetcher,
    CRLFetcher,
    FetcherBackend,
    Fetchers,
    OCSPFetcher,
)

from signing.netguard import guarded_socket_factory, parse_networks

# Do not hand out an answer that expires within this margin.
SAFETY_MARGIN = timedelta(seconds=30)


def ocsp_next_update(response: asn1_ocsp.OCSPResponse) -> datetime | None:
    """The earliest ``nextUpdate`` among the single responses (None if any lacks one)."""
    try:
        basic = response["response_bytes"]["response"].parsed
        times = [s["next_update"].native for s in basic["tbs_response_data"]["responses"]]
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return _earliest(times)


def crl_next_update(crls: Iterable[asn1_crl.CertificateList]) -> datetime | None:
    """The earliest ``nextUpdate`` of a set of CRLs (None if any lacks one or none given)."""
    times = []
    for item in crls:
        try:
            times.append(item["tbs_cert_list"]["next_update"].native)
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
    return _earliest(times)


def _earliest(times: list[datetime | None]) -> datetime | None:
    """The earliest of ``times``; None when there are none or one is missing (never reuse)."""
    present = [t for t in times if t is not None]
    if not present or len(present) != len(times):
        return None
    return min(present)


@dataclass
class RevocationCache:
    """Thread-safe store of revocation answers, each kept until its own ``nextUpdate``."""

    _entries: dict[tuple[Any, ...], tuple[datetime, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hits: int = 0
    misses: int = 0

    def get(self, key: tuple[Any, ...], now: datetime | None = None) -> Any:
        """The cached answer for ``key`` if still valid at ``now``, else None."""
        limit = (now or datetime.now(UTC)) + SAFETY_MARGIN
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= limit:
                self._entries.pop(key, None)
                self.misses += 1
                return None
            self.hits += 1
            return entry[1]

    def put(self, key: tuple[Any, ...], value: Any, valid_until: datetime | None) -> None:
        """Keep ``value`` until ``valid_until``; an answer without one is not kept."""
        if valid_until is None:
            return
        with self._lock:
            self._entries[key] = (valid_until, value)

    def values(
        self, kind: str, now: datetime | None = None, serial: int | None = None
    ) -> list[Any]:
        """All still-valid answers of one kind (``"ocsp"`` or ``"crl"``), optionally only
        those about certificates with serial number ``serial``."""
        limit = (now or datetime.now(UTC)) + SAFETY_MARGIN
        with self._lock:
            return [
                v
                for k, (until, v) in self._entries.items()
                if k[0] == kind and until > limit and (serial is None or k[-1] == serial)
            ]

    def __len__(self) -> int:
        return len(self._entries)


def _ocsp_key(cert: Any, authority: Any) -> tuple[Any, ...]:
    return ("ocsp", authority.public_key.sha256, cert.serial_number)


def _crl_key(cert: Any) -> tuple[Any, ...]:
    urls: list[str] = []
    try:
        for point in cert.crl_distribution_points or []:
            if point.url:
                urls.append(point.url)
    except (AttributeError, ValueError):
        pass
    return ("crl", cert.issuer.sha256, tuple(sorted(urls)))


class CachingOCSPFetcher(OCSPFetcher):
    """OCSP over the shared session, answering from the cache while the answer is valid."""

    def __init__(self, cache: RevocationCache, session: Any, timeout: float) -> None:
        self.cache = cache
        self.session = session
        self.timeout = timeout

    async def fetch(self, cert: Any, authority: Any) -> asn1_ocsp.OCSPResponse:
        key = _ocsp_key(cert, authority)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        from pyhanko_certvalidator.fetchers.aiohttp_fetchers.ocsp_client import AIOHttpOCSPFetcher

        # a fresh inner fetcher per miss: the stock one memoises answers forever
        inner = AIOHttpOCSPFetcher(self.session, per_request_timeout=self.timeout)
        response = await inner.fetch(cert, authority)
        self.cache.put(key, response, ocsp_next_update(response))
        return response

    def fetched_responses(self) -> Iterable[asn1_ocsp.OCSPResponse]:
        return self.cache.values("ocsp")

    def fetched_responses_for_cert(self, cert: Any) -> Iterable[asn1_ocsp.OCSPResponse]:
        return self.cache.values("ocsp", serial=cert.serial_number)


class CachingCRLFetcher(CRLFetcher):
    """CRLs over the shared session, answering from the cache while every CRL is valid."""

    def __init__(self, cache: RevocationCache, session: Any, timeout: float) -> None:
        self.cache = cache
        self.session = session
        self.timeout = timeout

    async def fetch(
        self, cert: Any, *, use_deltas: Any = None
    ) -> Iterable[asn1_crl.CertificateList]:
        key = _crl_key(cert)
        cached = self.cache.get(key)
        if cached is not None:
            return list(cached)
        from pyhanko_certvalidator.fetchers.aiohttp_fetchers.crl_client import AIOHttpCRLFetcher

        inner = AIOHttpCRLFetcher(self.session, per_request_timeout=self.timeout)
        crls = list(await inner.fetch(cert, use_deltas=use_deltas))
        self.cache.put(key, crls, crl_next_update(crls))
        return crls

    def fetched_crls(self) -> Iterable[asn1_crl.CertificateList]:
        return [c for group in self.cache.values("crl") for c in group]

    def fetched_crls_for_cert(self, cert: Any) -> Iterable[asn1_crl.CertificateList]:
        cached = self.cache.get(_crl_key(cert))
        if cached is None:
            raise KeyError(cert.issuer.human_friendly)
        return list(cached)


async def close_fetchers(fetchers: Fetchers) -> None:
    """Close the HTTP session shared by :func:`caching_fetchers` (no-op if never opened)."""
    session = getattr(fetchers.ocsp_fetcher, "session", None)
    if session is not None:
        await session.close()


class _NoIssuerFetcher(CertificateFetcher):
    """Fetches no CA-issuers certificate: a chain is built from the PDF and the trust store
    only. An AIA URL is named by a certificate not known yet to reach a trusted root, so
    following it would let anyone who uploads a PDF choose what the server fetches."""

    async def fetch_cert_issuers(self, cert: Any) -> AsyncGenerator[Any, None]:
        return
        yield  # an async generator that yields nothing

    async def fetch_crl_issuers(self, certificate_list: Any) -> AsyncGenerator[Any, None]:
        return
        yield

    def fetched_certs(self) -> Iterable[Any]:
        return ()


class _GuardedSession(LazySession):
    """An aiohttp session opened on first use whose connections reach only the addresses
    :mod:`signing.netguard` allows (``allow``: None for any address)."""

    def __init__(self, allow: tuple[str, ...] | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._allow = None if allow is None else parse_networks(allow)
        self._session: Any = None

    def get_session(self) -> Any:
        if self._session is None:
            import ssl

            import aiohttp
            import certifi

            factory = None if self._allow is None else guarded_socket_factory(self._allow)
            connector = aiohttp.TCPConnector(
                ssl=ssl.create_default_context(cafile=certifi.where()), socket_factory=factory
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def caching_fetchers(
    cache: RevocationCache,
    timeout: float = 5.0,
    *,
    issuers: bool = True,
    allow: tuple[str, ...] | None = None,
) -> Fetchers:
    """Fetchers sharing one lazily opened aiohttp session (bound to the running event loop).

    ``issuers``: follow certificates' CA-issuers (AIA) URLs to complete a chain; ``allow``:
    None reaches any address, else only public ones and these networks (signing/netguard.py).
    """
    from pyhanko_certvalidator.fetchers.aiohttp_fetchers.cert_fetch_client import (
        AIOHttpCertificateFetcher,
    )

    session = _GuardedSession(allow)
    cert_fetcher: CertificateFetcher = (
        AIOHttpCertificateFetcher(session, per_request_timeout=timeout)
        if issuers
        else _NoIssuerFetcher()
    )
    return Fetchers(
        ocsp_fetcher=CachingOCSPFetcher(cache, session, timeout),
        crl_fetcher=CachingCRLFetcher(cache, session, timeout),
        cert_fetcher=cert_fetcher,
    )


class SharedFetcherBackend(FetcherBackend):
    """A pyHanko fetcher backend handing out fetchers that outlive it (the process's shared,
    guarded ones): AdES validation provisions fetchers through a backend, and its default one
    would reach any address."""

    def __init__(self, fetchers: Fetchers) -> None:
        self.fetchers = fetchers

    def get_fetchers(self) -> Fetchers:
        return self.fetchers

    async def close(self) -> None:
        """Nothing: the fetchers belong to the process (:func:`close_fetchers`)."""
