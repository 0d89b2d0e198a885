"""Issue 18, finding 2: what an uploaded PDF's certificates make the axis fetch.

The public verification page takes a PDF from anyone; its certificates name URLs (CA issuers,
OCSP, CRL). The axis follows no CA-issuers URL (a chain must reach a trusted root from what the
PDF and the trust store hold), and fetches OCSP/CRL only from public addresses or the networks
of ``[verification] fetch_allow``. A listener owned by the test counts what reaches it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import fixtures_pki
import pytest
from aiohttp import web
from asn1crypto import x509 as asn1_x509
from axis_client import NGHE_AN, VPCP, Axis, document
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from pyhanko.keys import load_private_key_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from server.exchange import webhooks
from server.runtime.config import Config
from signing.netguard import AddressRefused, guarded_socket_factory, is_public, parse_networks
from signing.revcache import RevocationCache, caching_fetchers, close_fetchers

# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = pytest.mark.sqlite_only


class Listener:
    """An HTTP server on 127.0.0.1 that answers 404 (or a redirect) and remembers the paths."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.port = 0
        self.redirect_to: str | None = None  # answer 302 to there instead of 404

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.path)
        if self.redirect_to is not None:
            return web.Response(status=302, headers={"Location": self.redirect_to})
        return web.Response(status=404)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    found = Listener()
    server = web.Server(found.handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = runner.addresses[0][1]
    try:
        yield found
    finally:
        await runner.cleanup()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _untrusted_pdf(base: str) -> bytes:
    """A PDF signed by a certificate of a CA nobody trusts, naming ``base`` for its issuer
    (AIA caIssuers), OCSP and CRL; the CA's certificate is not in the PDF."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("Nguyễn Văn Giả"))
        .issuer_name(_name("CA không ai tin"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{base}/ca.crt"),
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(f"{base}/ocsp"),
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(f"{base}/ca.crl")], None, None, None
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(leaf.public_bytes(serialization.Encoding.DER)),
        signing_key=load_private_key_from_pemder_data(pem_key, passphrase=None),
        cert_registry=SimpleCertificateStore(),
    )
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(fixtures_pki.minimal_pdf())),
        signers.PdfSignatureMetadata(field_name="ChuKy1"),
        signer=signer,
        output=out,
    )
    return out.getvalue()


async def test_public_verify_follows_no_url_of_an_untrusted_certificate(
    axis: Axis, listener: Listener
) -> None:
    # The test config allows fetching from 127.0.0.1 (the test PKI): only the chain rule
    # keeps the listener quiet here.
    assert "127.0.0.1" in axis.config.verification.fetch_allow
    pdf = await asyncio.to_thread(_untrusted_pdf, f"http://127.0.0.1:{listener.port}")
    resp = await axis.client.post(
        "/api/v1/public/verify", data=pdf, headers={"Content-Type": "application/pdf"}
    )
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    [signature] = report["signatures"]
    assert signature["indication"] != "TOTAL_PASSED"
    assert listener.seen == []


NOT_PUBLIC = "127.0.0.1 127.9.9.9 ::1 169.254.169.254 10.1.2.3 172.16.0.1 192.168.1.1 fe80::1"
NOT_PUBLIC += " fd00::1 0.0.0.0 ::ffff:127.0.0.1 224.0.0.1 100.64.0.1"


@pytest.mark.parametrize("address", NOT_PUBLIC.split())
def test_non_public_addresses_are_refused_unless_allowed(address: str) -> None:
    assert not is_public(address)
    assert is_public(address, parse_networks(["127.0.0.0/8", "::/0", "0.0.0.0/0"]))


def test_public_addresses_pass() -> None:
    assert is_public("203.162.4.190") and is_public("2001:4860:4860::8888")


def test_the_socket_factory_refuses_before_connecting() -> None:
    factory = guarded_socket_factory(parse_networks(["10.0.0.0/8"]))
    with pytest.raises(AddressRefused):
        factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80)))
    factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.9.9", 80))).close()


@pytest.mark.parametrize("allow", [(), ("127.0.0.1",)], ids=["default", "allowed"])
async def test_fetchers_reach_loopback_only_when_allowed(
    listener: Listener, allow: tuple[str, ...]
) -> None:
    fetchers = caching_fetchers(RevocationCache(), timeout=5, issuers=False, allow=allow)
    session = fetchers.ocsp_fetcher.session.get_session()
    url = f"http://localhost:{listener.port}/ocsp"  # a name, resolved to loopback
    try:
        if allow:
            async with session.get(url) as resp:
                assert resp.status == 404
        else:
            with pytest.raises(OSError):
                async with session.get(url):
                    pass
    finally:
        await close_fetchers(fetchers)
    assert listener.seen == (["/ocsp"] if allow else [])


# --- webhooks: an agency's token chooses the URL the axis POSTs to -------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9999/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://0.0.0.0:8000/hook",
    ],
)
async def test_webhooks_to_this_host_or_its_link_are_refused(axis_config: Config, url: str) -> None:
    config = dataclasses.replace(
        axis_config, delivery=dataclasses.replace(axis_config.delivery, webhook_allow=())
    )
    assert target_refusal_of(url, config) is not None
    assert target_refusal_of("https://qlvb.nghean.gov.vn/hook", config) is None
    assert target_refusal_of("http://10.20.30.40:8443/hook", config) is None  # an intranet system


def target_refusal_of(url: str, config: Config) -> str | None:
    parts = urlsplit(url)
    assert parts.hostname is not None
    return webhooks.target_refusal(parts.hostname, parts.port or 80, config)


async def test_webhook_registration_refuses_the_axis_itself(axis: Axis) -> None:
    own = axis.config.server.port
    for url in (f"http://127.0.0.1:{own}/api/v1/documents", f"http://localhost:{own}/"):
        resp = await axis.client.put(
            "/api/v1/webhook",
            json={"url": url, "secret": "0123456789abcdef0123"},
            headers=axis.auth(NGHE_AN),
        )
        assert resp.status == 400, url
        assert "refused" in (await resp.json())["detail"]
    assert (await axis.get("/api/v1/webhook", NGHE_AN)).status == 404


@pytest.mark.parametrize("allowed", [False, True])
async def test_pushes_connect_to_loopback_only_when_allowed(
    axis_config: Config, listener: Listener, allowed: bool
) -> None:
    allow = ("127.0.0.1",) if allowed else ()
    config = dataclasses.replace(
        axis_config, delivery=dataclasses.replace(axis_config.delivery, webhook_allow=allow)
    )
    async with webhooks.webhook_session(config) as session:
        # a name (checked after DNS), not an IP literal
        url = f"http://localhost:{listener.port}/hook"
        if allowed:
            async with session.post(url, data=b"x") as resp:
                assert resp.status == 404
        else:
            with pytest.raises(OSError):
                await session.post(url, data=b"x")
        # the axis's own port stays refused even when loopback is allowed
        own = dataclasses.replace(
            config, server=dataclasses.replace(config.server, port=listener.port)
        )
        async with webhooks.webhook_session(own) as itself:
            with pytest.raises(OSError):
                await itself.post(url, data=b"x")
    assert listener.seen == (["/hook"] if allowed else [])


async def test_a_push_follows_no_redirect(axis: Axis, listener: Listener) -> None:
    # The receiver answers 302 to elsewhere on its own server: the push fails, elsewhere is
    # never asked (the test config lets webhooks reach 127.0.0.1).
    listener.redirect_to = f"http://127.0.0.1:{listener.port}/elsewhere"
    resp = await axis.client.put(
        "/api/v1/webhook",
        json={"url": f"http://127.0.0.1:{listener.port}/hook", "secret": "0123456789abcdef0"},
        headers=axis.auth(NGHE_AN),
    )
    assert resp.status == 200, await resp.text()
    await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    error = None
    for _ in range(1000):  # until the first attempt is recorded
        conn = sqlite3.connect(axis.config.db_path)
        try:
            row = conn.execute("SELECT last_error FROM deliveries WHERE attempts > 0").fetchone()
        finally:
            conn.close()
        if row is not None:
            error = row[0]
            break
        await asyncio.sleep(0.02)
    assert error is not None and error.startswith("HTTP 302"), error
    assert listener.seen and set(listener.seen) == {"/hook"}
