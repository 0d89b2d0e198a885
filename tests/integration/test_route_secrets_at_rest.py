"""Webhook secrets and axis-link tokens are sealed at rest (AES-256-GCM, server.runtime.secretbox).

The SQLite files (database, WAL) never hold the plaintext; the ciphertext is bound to its row
and purpose; rows written in plain text before migration 0007 are sealed at start-up.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from axis_client import NGHE_AN, SO_TTTT, VPCP, Axis, document

from server.exchange.delivery import seal_route_secrets
from server.exchange.federation import Route, Router
from server.http.appkeys import DATABASE, EXCHANGE
from server.runtime.secretbox import SecretBox, SecretsError
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.routes import RouteRepo

# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = pytest.mark.sqlite_only

WEBHOOK_SECRET = "webhook-secret-of-nghe-an-7f3a9c"
AXIS_TOKEN = "bearer-token-at-the-province-axis-51d2e8"


def database_bytes(db_path: Path) -> bytes:
    """Every byte SQLite keeps for this database: the main file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*") if p.is_file())


async def test_secrets_are_sealed_in_the_database_and_open_for_the_axis(axis: Axis) -> None:
    resp = await axis.client.put(
        "/api/v1/webhook",
        json={"url": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET},
        headers=axis.auth(NGHE_AN),
    )
    assert resp.status == 200, await resp.text()
    assert WEBHOOK_SECRET not in await resp.text()
    app = axis.client.app
    assert app is not None
    database = app[DATABASE]
    secrets = app[EXCHANGE].router.secrets
    async with database.transaction() as tx:
        await RouteRepo(tx, secrets).set_link(SO_TTTT, "http://127.0.0.1:9", AXIS_TOKEN, [SO_TTTT])

    raw = database_bytes(axis.config.db_path)
    assert raw, "no database file found"
    assert WEBHOOK_SECRET.encode() not in raw
    assert AXIS_TOKEN.encode() not in raw

    with sqlite3.connect(axis.config.db_path) as conn:
        (stored_secret, sealed) = conn.execute(
            "SELECT secret, sealed FROM webhooks WHERE organ_id = ?", (NGHE_AN,)
        ).fetchone()
        (stored_token,) = conn.execute(
            "SELECT token FROM axis_links WHERE organ_id = ?", (SO_TTTT,)
        ).fetchone()
    assert sealed == 1 and stored_secret.startswith("v1:") and stored_token.startswith("v1:")

    # The axis opens them: the push worker signs with the secret, forwarding uses the token.
    async with database.reader() as tx:
        repo = RouteRepo(tx, secrets)
        hook = await repo.webhook(NGHE_AN)
        link = await repo.link(SO_TTTT)
    assert hook is not None and hook.secret == WEBHOOK_SECRET
    assert link is not None and link.token == AXIS_TOKEN
    route = await _resolve(database, app[EXCHANGE].router, NGHE_AN)
    assert route.webhook_secret == WEBHOOK_SECRET

    # Bound to its row and purpose: copied onto another agency's row, or used as a link token
    # of the same agency, the ciphertext does not open.
    with sqlite3.connect(axis.config.db_path) as conn:
        conn.execute(
            "INSERT INTO webhooks (organ_id, url, secret, sealed, created_at, updated_at)"
            " SELECT ?, url, secret, 1, created_at, updated_at FROM webhooks WHERE organ_id = ?",
            (VPCP, NGHE_AN),
        )
        conn.execute("UPDATE axis_links SET token = ? WHERE organ_id = ?", (stored_secret, SO_TTTT))
    async with database.reader() as tx:
        with pytest.raises(SecretsError):
            await RouteRepo(tx, secrets).webhook(VPCP)
    async with database.reader() as tx:
        with pytest.raises(SecretsError):
            await RouteRepo(tx, secrets).link(SO_TTTT)


async def _resolve(database: Database, router: Router, organ_id: str) -> Route:
    async with database.reader() as tx:
        return await router.resolve(tx, organ_id)


async def test_plaintext_rows_of_before_0007_are_sealed_at_start_up(tmp_path: Path) -> None:
    db_path = tmp_path / "meta.db"
    database = await Database.open(db_path)
    try:
        async with database.transaction() as tx:
            await AgencyRepo(tx).add(NGHE_AN, "UBND tỉnh Nghệ An")
            await AgencyRepo(tx).add(SO_TTTT, "Sở TT&TT Nghệ An")
        # What the 0004 code wrote: the secrets as they are (sealed = 0 after migration 0007).
        async with database.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhooks (organ_id, url, secret, created_at, updated_at)"
                " VALUES (?, 'http://127.0.0.1:9/hook', ?, '2024-01-01', '2024-01-01')",
                (NGHE_AN, WEBHOOK_SECRET),
            )
            await tx.execute(
                "INSERT INTO axis_links (organ_id, url, token, hosts, created_at, updated_at)"
                " VALUES (?, 'http://127.0.0.1:9', ?, ?, '2024-01-01', '2024-01-01')",
                (SO_TTTT, AXIS_TOKEN, SO_TTTT),
            )
        box = SecretBox(tmp_path, env={})
        # Until sealed they are read as they are (a CLI may run before the server restarts).
        async with database.reader() as tx:
            hook = await RouteRepo(tx, box).webhook(NGHE_AN)
        assert hook is not None and hook.secret == WEBHOOK_SECRET
        assert not (tmp_path / "secrets.key").exists()

        assert WEBHOOK_SECRET.encode() in database_bytes(db_path)  # the check below can fail

        assert await seal_route_secrets(database, box) == 2
        assert await seal_route_secrets(database, box) == 0
        assert (tmp_path / "secrets.key").exists()
        async with database.reader() as tx:
            repo = RouteRepo(tx, box)
            hook = await repo.webhook(NGHE_AN)
            link = await repo.link(SO_TTTT)
        assert hook is not None and hook.secret == WEBHOOK_SECRET
        assert link is not None and link.token == AXIS_TOKEN
    finally:
        await database.close()
    # Once the WAL is checkpointed at close, the plaintext is gone from the file too
    # (secure_delete zeroes what the sealing rewrote).
    raw = database_bytes(db_path)
    assert WEBHOOK_SECRET.encode() not in raw
    assert AXIS_TOKEN.encode() not in raw


async def test_a_broken_secret_is_a_503_problem_not_a_500(axis: Axis) -> None:
    resp = await axis.client.put(
        "/api/v1/webhook",
        json={"url": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET},
        headers=axis.auth(NGHE_AN),
    )
    assert resp.status == 200, await resp.text()
    # A ciphertext that no longer opens (a restored backup with another key, a damaged row).
    with sqlite3.connect(axis.config.db_path) as conn:
        conn.execute("UPDATE webhooks SET secret = 'v1:AAAA' WHERE organ_id = ?", (NGHE_AN,))
    resp = await axis.send(VPCP, document(VPCP, [NGHE_AN]))
    body = await resp.json()
    assert resp.status == 503, body
    assert body["type"].endswith("/secrets-unavailable")
    assert resp.headers["Retry-After"]
    assert WEBHOOK_SECRET not in json.dumps(body)
