"""The audit log through the real server: every action recorded in its own transaction, the
admin API, an RFC 3161 anchor from the test PKI's real TSA at shutdown, and `lienthong audit
verify` naming tampered rows of the SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from axis_client import AGENCIES, NGHE_AN, SO_TTTT, VPCP, XML, document, status

import edxml
from edxml import StatusCode
from server.app.application import build_app
from server.cli import main as cli_main
from server.http.appkeys import DATABASE
from server.runtime.audit import verify_audit
from server.runtime.config import Config, load_config
from server.runtime.tokens import new_token
from signing import devpki as pki_cli
from storage.audit import AuditRepo
from storage.db import Database
from storage.repos.agencies import AgencyRepo
from storage.repos.tokens import TokenRepo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_pki


@pytest.fixture(scope="module")
def audit_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pki_cli.DevPki]:
    pki = fixtures_pki.make_pki(tmp_path_factory.mktemp("audit-pki"))
    with pki_cli.PkiServer(pki):
        yield pki


@pytest.fixture
def audit_config(tmp_path: Path, audit_pki: pki_cli.DevPki) -> Config:
    return load_config(
        env={
            "LIENTHONG_SERVER_LOG_JSON": "0",
            "LIENTHONG_TSA_URL": audit_pki.tsa_url,
            "LIENTHONG_AUDIT_ANCHOR_MINUTES": "0",  # anchored at shutdown only
        },
        data_dir=tmp_path / "data",
    )


class Running:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def auth(self, organ_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[organ_id]}"}


async def _start(config: Config) -> Running:
    client = TestClient(TestServer(build_app(config)))
    await client.start_server()
    running = Running(client)
    async with client.app[DATABASE].transaction() as tx:
        for organ_id, name, parent in AGENCIES:
            await AgencyRepo(tx).add(organ_id, name, parent_id=parent)
            token, token_hash = new_token()
            await TokenRepo(tx).create(organ_id, token_hash)
            running.tokens[organ_id] = token
        token, token_hash = new_token()
        await TokenRepo(tx).create(VPCP, token_hash, label="ops", roles=("admin",))
        running.tokens["admin"] = token
    return running


async def _exchange(run: Running) -> dict[str, Any]:
    """Send, fetch, ack and answer one document; return the ids involved."""
    env = document(VPCP, (NGHE_AN, SO_TTTT))
    resp = await run.client.post(
        "/api/v1/documents", data=edxml.serialize(env), headers={**run.auth(VPCP), **XML}
    )
    assert resp.status == 201, await resp.text()
    doc_id = (await resp.json())["id"]
    resp = await run.client.get(f"/api/v1/documents/{doc_id}", headers=run.auth(NGHE_AN))
    assert resp.status == 200
    await resp.read()
    inbox = await (await run.client.get("/api/v1/inbox", headers=run.auth(NGHE_AN))).json()
    delivery = inbox["items"][0]["delivery_id"]
    resp = await run.client.post(f"/api/v1/inbox/{delivery}/ack", headers=run.auth(NGHE_AN))
    assert resp.status == 200, await resp.text()
    body = edxml.serialize(status(NGHE_AN, env, StatusCode.RECEIVED))
    resp = await run.client.post(
        "/api/v1/statuses", data=body, headers={**run.auth(NGHE_AN), **XML}
    )
    assert resp.status == 201, await resp.text()
    return {"doc": doc_id, "delivery": delivery, "status": (await resp.json())["id"]}


async def test_actions_are_chained_served_to_admins_and_anchored(
    audit_config: Config, audit_pki: pki_cli.DevPki
) -> None:
    run = await _start(audit_config)
    try:
        ids = await _exchange(run)
        resp = await run.client.get("/api/v1/audit", headers=run.auth("admin"))
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        # An agency's own token is not an admin token: the resource does not exist for it.
        denied = await run.client.get("/api/v1/audit", headers=run.auth(VPCP))
        assert denied.status == 404
        assert denied.content_type == "application/problem+json"
        bad = await run.client.get("/api/v1/audit?after=x1", headers=run.auth("admin"))
        assert bad.status == 400
        two = await (
            await run.client.get("/api/v1/audit?limit=2", headers=run.auth("admin"))
        ).json()
        rest = await (
            await run.client.get(f"/api/v1/audit?after={two['next']}", headers=run.auth("admin"))
        ).json()
    finally:
        await run.client.close()  # shutdown: the head is timestamped by the real TSA
    actions = [(e["actor"], e["action"]) for e in page["items"]]
    assert actions == [
        (VPCP, "document.send"),
        (NGHE_AN, "document.fetch"),
        (NGHE_AN, "delivery.ack"),
        (NGHE_AN, "status.send"),
    ]
    send = page["items"][0]
    assert send["objects"] == [ids["doc"]]
    assert send["details"]["recipients"] == [NGHE_AN, SO_TTTT]
    assert page["items"][2]["objects"] == [ids["delivery"], ids["doc"]]
    assert page["items"][3]["objects"] == [ids["status"], ids["doc"]]
    assert page["head"]["seq"] == 4 and page["next"] is None
    assert [e["seq"] for e in two["items"]] == [1, 2] and two["next"] == "2"
    assert [e["seq"] for e in rest["items"]] == [3, 4]

    database = await Database.open(audit_config.db_path)
    try:
        async with database.reader() as tx:
            anchors = await AuditRepo(tx).anchors()
        assert [(a.seq, a.head_hash) for a in anchors] == [(4, page["head"]["hash"])]
        verdict = await verify_audit(database, [audit_pki.root_cert])
        assert verdict.ok, verdict.report.problems
        assert verdict.tokens_checked == 1
        # A TSA root that is not the test PKI's does not make the anchor trusted.
        untrusted = await verify_audit(database, [audit_pki.cert("lookalike")])
        assert [(p.seq, p.kind) for p in untrusted.report.problems] == [(4, "anchor")]
        assert "does not chain" in untrusted.report.problems[0].message
    finally:
        await database.close()


def _tamper(db_path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(db_path)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


async def _verify_cli(config: Config, pki: pki_cli.DevPki, capsys: Any) -> tuple[int, str]:
    # The command runs its own event loop: in a thread, as from a shell.
    code = await asyncio.to_thread(
        cli_main,
        [
            "audit", "verify", "--data-dir", str(config.storage.data_dir),
            "--trust", str(pki.directory / "trust" / "root.cert.pem"),
        ]
    )  # fmt: skip
    return code, capsys.readouterr().out


async def _recorded_log(config: Config) -> None:
    run = await _start(config)
    try:
        for _ in range(2):
            await _exchange(run)
    finally:
        await run.client.close()


async def test_cli_verify_names_edited_deleted_and_reordered_entries(
    audit_config: Config, audit_pki: pki_cli.DevPki, capsys: Any
) -> None:
    await _recorded_log(audit_config)  # 8 entries, anchored at seq 8
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 0, out
    assert out.startswith("audit log OK: 8 entries (head seq 8") and "1 anchor(s) verified" in out

    db = audit_config.db_path
    _tamper(db, ("UPDATE audit_log SET actor = ? WHERE seq = 3", ("000.00.00.Z99",)))
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 1
    assert "seq 3: edited" in out and "TAMPERED" in out.splitlines()[-1]

    _tamper(db, ("UPDATE audit_log SET actor = ? WHERE seq = 3", (NGHE_AN,)))  # restored
    assert (await _verify_cli(audit_config, audit_pki, capsys))[0] == 0

    _tamper(
        db,
        ("UPDATE audit_log SET seq = -1 WHERE seq = 5", ()),
        ("UPDATE audit_log SET seq = 5 WHERE seq = 6", ()),
        ("UPDATE audit_log SET seq = 6 WHERE seq = -1", ()),
    )
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 1
    assert "seq 5: moved: the entry stored at seq 5 is entry 6" in out
    assert "seq 6: moved: the entry stored at seq 6 is entry 5" in out

    _tamper(
        db,
        ("UPDATE audit_log SET seq = -1 WHERE seq = 5", ()),
        ("UPDATE audit_log SET seq = 5 WHERE seq = 6", ()),
        ("UPDATE audit_log SET seq = 6 WHERE seq = -1", ()),
        ("DELETE FROM audit_log WHERE seq = 2", ()),
    )
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 1
    assert "seq 2: deleted: entry 2 is missing" in out
    assert "moved" not in out

    # Cutting the tail leaves a consistent chain: the anchor names the truncation.
    _tamper(db, ("DELETE FROM audit_log WHERE seq >= 7", ()))
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 1 and "seq 8: truncated" in out


async def test_a_forged_anchor_is_named(
    audit_config: Config, audit_pki: pki_cli.DevPki, capsys: Any
) -> None:
    await _recorded_log(audit_config)
    db = audit_config.db_path
    conn = sqlite3.connect(db)
    try:
        seq, head_hash = conn.execute("SELECT seq, head_hash FROM audit_anchors").fetchone()
        token = conn.execute("SELECT token FROM audit_anchors").fetchone()[0]
    finally:
        conn.close()
    # Rewrite the whole chain from entry 4 on with recomputed hashes: the chain alone is
    # consistent again, but the anchor's head no longer matches, and the token cannot be moved
    # onto the new head (its imprint is the old one).
    from storage.audit import entry_hash

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT seq, logged_at, actor, action, objects, details, prev_hash FROM audit_log"
            " WHERE seq >= 3 ORDER BY seq"
        ).fetchall()
        prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 3").fetchone()[0]
        for seq_, logged_at, actor, action, objects, details, _ in rows[1:]:
            actor = "000.00.00.Z99" if seq_ == 4 else actor
            new = entry_hash(seq_, logged_at, actor, action, objects, details, prev)
            conn.execute(
                "UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (actor, prev, new, seq_),
            )
            prev = new
        conn.commit()
    finally:
        conn.close()
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 1
    assert f"seq {seq}: anchor: entry {seq} is not the entry timestamped" in out
    assert "rewritten" in out
    # Moving the anchor onto the forged head does not help: the token certifies the old one.
    _tamper(db, ("UPDATE audit_anchors SET head_hash = ?", (prev,)))
    code, out = await _verify_cli(audit_config, audit_pki, capsys)
    assert code == 1
    assert "message imprint differs" in out
    assert head_hash != prev and token
