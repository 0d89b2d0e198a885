"""Signing sessions' JWT secrets are sealed at rest (migration 0011, server.runtime.secretbox):
the SQLite files never hold them in clear, sessions created before 0011 are sealed at start-up,
and ``lienthong secrets rotate`` re-seals them with sessions still working afterwards."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fixtures_pki
import pytest
from aiohttp import FormData
from axis_client import NGHE_AN, Axis
from signing_session_fixtures import axis_config, sig_pki, sig_tokens

from server.app.application import build_app
from server.cli import main
from server.exchange.delivery import seal_session_secrets
from server.http.appkeys import DATABASE, EXCHANGE
from server.runtime import secretbox
from signing import devpki as pki_cli
from storage.repos.signing_sessions import SigningSessionRepo

__all__ = ["axis_config", "sig_pki", "sig_tokens"]


def _aad(session_id: str) -> bytes:
    return f"lienthong-signing-session-jwt\x00{session_id}".encode()


def database_bytes(db_path: Path) -> bytes:
    """Every byte SQLite keeps for this database: the main file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*") if p.is_file())


async def _session(axis: Axis, pki: pki_cli.DevPki) -> dict[str, Any]:
    form = FormData()
    form.add_field("pdf", fixtures_pki.minimal_pdf(), filename="cong-van.pdf")
    form.add_field("certificate", pki.cert_path("officer").read_bytes(), filename="cert.pem")
    resp = await axis.client.post("/api/v1/signing-sessions", data=form, headers=axis.auth(NGHE_AN))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def _download(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _stored(db_path: Path, session_id: str) -> tuple[str, int]:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT jwt_secret, jwt_sealed FROM signing_sessions WHERE id = ?", (session_id,)
        ).fetchone()
    return str(row[0]), int(row[1])


async def _secret(axis: Axis, session_id: str) -> str:
    app = axis.client.app
    assert app is not None
    async with app[DATABASE].reader() as tx:
        row = await SigningSessionRepo(tx, app[EXCHANGE].router.secrets).get(session_id)
    assert row is not None
    return row.jwt_secret


async def test_jwt_secrets_are_sealed_and_the_plugin_urls_work(
    axis: Axis, sig_pki: pki_cli.DevPki
) -> None:
    session = await _session(axis, sig_pki)
    sid = session["session_id"]
    stored, sealed = _stored(axis.config.db_path, sid)
    assert sealed == 1 and stored.startswith("v1:")
    secret = await _secret(axis, sid)
    assert len(secret) == 64  # the hex of 32 random bytes
    key = secretbox.load_key(axis.config.storage.data_dir, env={})
    assert secretbox.unseal(key, stored, _aad(sid)) == secret
    raw = database_bytes(axis.config.db_path)
    assert secret.encode() not in raw and bytes.fromhex(secret) not in raw

    resp = await axis.client.get(_download(session["download_url"]))
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"

    # Bound to its session: another session's sealed secret copied onto this row does not open.
    other = await _session(axis, sig_pki)
    with sqlite3.connect(axis.config.db_path) as conn:
        conn.execute(
            "UPDATE signing_sessions SET jwt_secret = ? WHERE id = ?",
            (_stored(axis.config.db_path, other["session_id"])[0], sid),
        )
    resp = await axis.client.get(_download(session["download_url"]))
    assert resp.status == 503
    assert (await resp.json())["type"].endswith("/secrets-unavailable")


async def test_sessions_of_before_0011_are_sealed_at_start_up(
    axis: Axis, sig_pki: pki_cli.DevPki
) -> None:
    session = await _session(axis, sig_pki)
    sid = session["session_id"]
    secret = await _secret(axis, sid)
    # What the code before 0011 wrote: the hex secret as it is.
    with sqlite3.connect(axis.config.db_path) as conn:
        conn.execute(
            "UPDATE signing_sessions SET jwt_secret = ?, jwt_sealed = 0 WHERE id = ?", (secret, sid)
        )
    resp = await axis.client.get(_download(session["download_url"]))
    assert resp.status == 200  # read as it is until sealed

    app = axis.client.app
    assert app is not None
    box = app[EXCHANGE].router.secrets
    assert await seal_session_secrets(app[DATABASE], box) == 1
    assert await seal_session_secrets(app[DATABASE], box) == 0
    stored, sealed = _stored(axis.config.db_path, sid)
    assert sealed == 1 and stored.startswith("v1:") and secret not in stored
    assert await _secret(axis, sid) == secret
    resp = await axis.client.get(_download(session["download_url"]))
    assert resp.status == 200


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


async def test_rotation_reseals_session_secrets_and_sessions_still_work(
    axis: Axis,
    sig_pki: pki_cli.DevPki,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = await _session(axis, sig_pki)
    sid = session["session_id"]
    secret = await _secret(axis, sid)
    before, _ = _stored(axis.config.db_path, sid)
    data = axis.config.storage.data_dir
    old_key = secretbox.load_key(data, env={})

    monkeypatch.delenv(secretbox.KEY_ENV, raising=False)
    monkeypatch.delenv(secretbox.KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("LIENTHONG_SERVER_PORT", _free_port())  # "is the axis running": no
    # The command runs its own event loop: off this one, as from a shell.
    assert await asyncio.to_thread(main, ["secrets", "rotate", "--data-dir", str(data)]) == 0
    assert "and 1 signing-session secret(s)" in capsys.readouterr().out

    after, sealed = _stored(axis.config.db_path, sid)
    new_key = secretbox.load_key(data, env={})
    assert sealed == 1 and after != before and new_key != old_key
    assert secretbox.unseal(new_key, after, _aad(sid)) == secret
    with pytest.raises(secretbox.SecretsError):
        secretbox.unseal(old_key, after, _aad(sid))
    assert secret.encode() not in database_bytes(axis.config.db_path)

    # The axis started again (a new app: the running one keeps the key it loaded) accepts the
    # JWT issued before the rotation, and new sessions are sealed with the new key.
    restarted = await aiohttp_client(build_app(axis.config))
    resp = await restarted.get(_download(session["download_url"]))
    assert resp.status == 200, await resp.text()
    form = FormData()
    form.add_field("pdf", fixtures_pki.minimal_pdf(), filename="cong-van.pdf")
    form.add_field("certificate", sig_pki.cert_path("officer").read_bytes(), filename="cert.pem")
    resp = await restarted.post("/api/v1/signing-sessions", data=form, headers=axis.auth(NGHE_AN))
    assert resp.status == 201, await resp.text()
    fresh = (await resp.json())["session_id"]
    stored, _ = _stored(axis.config.db_path, fresh)
    secretbox.unseal(new_key, stored, _aad(fresh))
