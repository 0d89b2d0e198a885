"""HTTPS and client certificates (issue 18, finding 7): the axis serves ``[server.tls]``; a
client certificate bound with ``lienthong agency cert add`` acts as its agency, an unbound one
is refused with 401, an untrusted one never completes the handshake; ``optional`` lets
token-only clients in, ``require`` does not; an agency marked ``--require`` cannot use its
token alone."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tls_fixtures import NGHE_AN, VPCP, HttpsAxis, TlsFiles, start_https_axis, tls_env, tls_files

from server.runtime.config import ConfigError, load_config
from server.runtime.tls import server_context

__all__ = ["tls_files"]


@pytest.fixture
async def axis(tmp_path: Path, tls_files: TlsFiles) -> AsyncIterator[HttpsAxis]:
    """HTTPS with optional client certificates from the test root; VPCP's certificate bound."""
    node = await start_https_axis(tmp_path / "data", tls_env(tls_files, "optional"))
    await node.add(VPCP, "Văn phòng Chính phủ")
    await node.add(NGHE_AN, "UBND tỉnh Nghệ An")
    code, fingerprint = await node.cli(
        "agency", "cert", "add", VPCP, str(tls_files.chains["tls-agency"]), "--label", "QLVB"
    )
    assert code == 0
    assert len(fingerprint.strip()) == 64
    try:
        yield node
    finally:
        await node.runner.cleanup()


async def me(node: HttpsAxis, context: ssl.SSLContext, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{node.url}/api/v1/me", headers=headers, ssl=context) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_a_bound_certificate_acts_as_its_agency(axis: HttpsAxis, tls_files: TlsFiles) -> None:
    status, body = await me(axis, tls_files.client("tls-agency"))
    assert status == 200, body
    assert body["organ_id"] == VPCP
    # its token over the same connection agrees: fine
    status, body = await me(axis, tls_files.client("tls-agency"), axis.tokens[VPCP])
    assert (status, body["organ_id"]) == (200, VPCP)


async def test_an_unbound_or_mismatched_certificate_is_refused(
    axis: HttpsAxis, tls_files: TlsFiles
) -> None:
    # trusted (the test government CA) but bound to no agency
    status, body = await me(axis, tls_files.client("tls-agency2"))
    assert status == 401
    assert body["type"].endswith("/unauthorized")
    assert "not bound" in body["detail"]
    # a token of one agency with the certificate of another
    status, body = await me(axis, tls_files.client("tls-agency"), axis.tokens[NGHE_AN])
    assert status == 401
    assert "other agencies" in body["detail"]


async def test_an_untrusted_certificate_ends_the_handshake(
    axis: HttpsAxis, tls_files: TlsFiles
) -> None:
    """The look-alike CA has the government CA's name but not its key."""
    with pytest.raises(aiohttp.ClientError):
        await me(axis, tls_files.client("tls-stranger"), axis.tokens[VPCP])


async def test_optional_lets_tokens_in_without_a_certificate(
    axis: HttpsAxis, tls_files: TlsFiles
) -> None:
    status, body = await me(axis, tls_files.client(None), axis.tokens[NGHE_AN])
    assert (status, body["organ_id"]) == (200, NGHE_AN)
    status, body = await me(axis, tls_files.client(None))
    assert status == 401
    # public pages need nothing
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{axis.url}/healthz", ssl=tls_files.client(None)) as resp,
    ):
        assert resp.status == 200


async def test_plain_http_is_not_served(axis: HttpsAxis) -> None:
    with pytest.raises(aiohttp.ClientError):
        async with (
            aiohttp.ClientSession() as session,
            session.get(axis.url.replace("https:", "http:") + "/healthz") as resp,
        ):
            await resp.read()


async def test_an_agency_can_be_made_to_use_its_certificate(
    axis: HttpsAxis, tls_files: TlsFiles
) -> None:
    code, _ = await axis.cli("agency", "cert", "require", VPCP)
    assert code == 0
    status, body = await me(axis, tls_files.client(None), axis.tokens[VPCP])
    assert status == 401
    assert "client certificate" in body["detail"]
    status, body = await me(axis, tls_files.client("tls-agency"), axis.tokens[VPCP])
    assert (status, body["organ_id"]) == (200, VPCP)
    code, _ = await axis.cli("agency", "cert", "require", VPCP, "--off")
    assert code == 0
    status, _ = await me(axis, tls_files.client(None), axis.tokens[VPCP])
    assert status == 200


async def test_list_and_remove_a_binding(axis: HttpsAxis, tls_files: TlsFiles) -> None:
    code, listing = await axis.cli("agency", "cert", "list", VPCP)
    assert code == 0
    fingerprint = next(w for w in listing.split() if len(w) == 64 and w != "-" * 64)
    assert "CN=000.00.00.G22" in listing and "QLVB" in listing
    code, _ = await axis.cli("agency", "cert", "remove", VPCP, fingerprint)
    assert code == 0
    status, _ = await me(axis, tls_files.client("tls-agency"))
    assert status == 401
    code, _ = await axis.cli("agency", "cert", "remove", VPCP, fingerprint)
    assert code == 1  # no such binding any more: one line on stderr


async def test_a_certificate_speaks_for_one_agency(axis: HttpsAxis, tls_files: TlsFiles) -> None:
    code, _ = await axis.cli("agency", "cert", "add", NGHE_AN, str(tls_files.chains["tls-agency"]))
    assert code == 1  # already bound to VPCP
    status, body = await me(axis, tls_files.client("tls-agency"))
    assert (status, body["organ_id"]) == (200, VPCP)


async def test_require_refuses_connections_without_a_certificate(
    tmp_path: Path, tls_files: TlsFiles
) -> None:
    node = await start_https_axis(tmp_path / "data", tls_env(tls_files, "require"))
    try:
        await node.add(NGHE_AN, "UBND tỉnh Nghệ An")
        with pytest.raises(aiohttp.ClientError):
            await me(node, tls_files.client(None), node.tokens[NGHE_AN])
        # a trusted certificate opens the connection; the token says who calls
        status, body = await me(node, tls_files.client("tls-agency2"), node.tokens[NGHE_AN])
        assert (status, body["organ_id"]) == (200, NGHE_AN)
    finally:
        await node.runner.cleanup()


async def test_https_without_client_certificates(tmp_path: Path, tls_files: TlsFiles) -> None:
    """No client_ca: no certificate is asked for; a presented one is ignored, tokens work."""
    node = await start_https_axis(tmp_path / "data", tls_env(tls_files, None))
    try:
        await node.add(NGHE_AN, "UBND tỉnh Nghệ An")
        status, body = await me(node, tls_files.client("tls-agency"), node.tokens[NGHE_AN])
        assert (status, body["organ_id"]) == (200, NGHE_AN)
        status, _ = await me(node, tls_files.client("tls-agency"))
        assert status == 401
    finally:
        await node.runner.cleanup()


def test_tls_defaults(tls_files: TlsFiles, tmp_path: Path) -> None:
    config = load_config(env=tls_env(tls_files, "require"), data_dir=tmp_path)
    context = server_context(config)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.verify_mode == ssl.CERT_REQUIRED
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all("ECDHE" in c["name"] and c["aead"] for c in tls12)


def test_unusable_tls_settings_are_one_line(tls_files: TlsFiles, tmp_path: Path) -> None:
    env = tls_env(tls_files, "optional")
    with pytest.raises(ConfigError, match="client_certificates"):
        load_config(env={**env, "LIENTHONG_SERVER_TLS_CLIENT_CERTIFICATES": "always"})
    with pytest.raises(ConfigError, match="go together"):
        load_config(
            env={"LIENTHONG_SERVER_TLS_CERTIFICATE": env["LIENTHONG_SERVER_TLS_CERTIFICATE"]}
        )
    # the key of another certificate
    mismatched = {**env, "LIENTHONG_SERVER_TLS_KEY": str(tls_files.keys["tls-agency"])}
    with pytest.raises(ConfigError, match=r"server\.tls\.certificate"):
        server_context(load_config(env=mismatched, data_dir=tmp_path))
    missing = {**env, "LIENTHONG_SERVER_TLS_CLIENT_CA": str(tmp_path / "nope.pem")}
    with pytest.raises(ConfigError, match="does not exist"):
        server_context(load_config(env=missing, data_dir=tmp_path))


def test_server_tls_table_in_the_config_file(tls_files: TlsFiles, tmp_path: Path) -> None:
    path = tmp_path / "lienthong.toml"
    path.write_text(
        "[server]\nport = 8443\n[server.tls]\n"
        f'certificate = "{tls_files.chains["tls-server"]}"\n'
        f'key = "{tls_files.keys["tls-server"]}"\n'
        f'client_ca = "{tls_files.root}"\nclient_certificates = "require"\n'
    )
    config = load_config(path, env={})
    assert config.server.port == 8443
    assert config.tls.client_certificates == "require"
    assert config.base_url == "https://127.0.0.1:8443"
    path.write_text('[server.tls]\ncertfile = "x.pem"\n')
    with pytest.raises(ConfigError, match=r"unknown setting server\.tls\.certfile"):
        load_config(path, env={})
