"""Migration 0039 on the real app: a step's agency moved a dossier transferred to it under a
version whose status messages waited in ``dossier_transfer_reports`` (migrations up to 0038),
and the process stopped before they were accepted. After the upgrade they are in the one outbox
(``carried_outbox``) and its next round sends them, in the order of the moves, so the dossier's
events at the originating unit are the agency's moves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from axis_client import SO_TTTT, XA, Axis
from test_api_dossiers import APPLICANT, form
from test_dossier_transfers import TWO_STEPS, call, seed

import edxml
import storage.db
from edxml import Organization, ResponseFor, StatusCode, StatusMessage
from server.app.application import build_app
from server.http.appkeys import DATABASE, EXCHANGE
from server.runtime.config import Config
from storage.db import Database, load_migrations
from storage.ids import to_db_time, utcnow
from storage.repos.dossier_transfers import TransferRepo


@pytest.fixture
def axis_config(axis_config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The app of the ``axis`` fixture opens its database without migration 0039 (the later
    ones, which the code of today needs, touch nothing 0039 reads or writes)."""
    without_0039 = [m for m in load_migrations() if m.version != 39]
    monkeypatch.setattr(storage.db, "load_migrations", lambda: without_0039)
    return axis_config


async def moved_before_0039(db: Database, transfer_id: int) -> None:
    """What a move of the step's agency wrote before 0039 (its event, its status and the status
    message in ``dossier_transfer_reports``, in one transaction), twice: 4, whose one attempt
    failed, then 9, never tried (the process stopped after the commit)."""
    now = utcnow()
    async with db.transaction() as tx:
        repo = TransferRepo(tx)
        row = await repo.get(transfer_id)
        assert row is not None
        for seq, (before, status, code) in enumerate(
            [(2, 4, StatusCode.PROCESSING), (4, 9, StatusCode.COMPLETED)], 1
        ):
            at = now + timedelta(seconds=seq - 3)  # in order, both due
            await repo.add_event(transfer_id, SO_TTTT, at, before, status, "")
            await repo.move(transfer_id, status, row.due_at, None, at)
            message = StatusMessage(
                from_=Organization(SO_TTTT),
                response_for=ResponseFor(organ_id=row.origin, document_id=row.document_id),
                status_code=code,
                description=f"[ho-so {status} {at.isoformat()} #{seq}] ",
                timestamp=at,
            )
            failed = seq == 1
            await tx.execute(
                "INSERT INTO dossier_transfer_reports (transfer, actor, message, created_at,"
                " attempts, next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    transfer_id, SO_TTTT, edxml.serialize(message), to_db_time(at),
                    int(failed), to_db_time(at), "OSError: the spool is full" if failed else None,
                ),
            )  # fmt: skip


@pytest.mark.sqlite_only  # the upgrade of a SQLite file (the PostgreSQL template is migrated)
async def test_a_pending_report_is_sent_after_the_upgrade(
    axis: Axis, axis_config: Config, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(axis)
    resp = await axis.client.post(
        "/api/v1/dossiers",
        data=form({"procedure": TWO_STEPS, "applicant": dict(APPLICANT), "channel": 1}),
        headers=axis.auth(XA),
    )
    code = (await resp.json())["code"]
    await call(axis, "POST", f"/api/v1/dossiers/{code}/transfer", XA, 201, json={"agency": SO_TTTT})
    await axis.client.app[EXCHANGE].settle()
    [copy] = (await call(axis, "GET", "/api/v1/dossier-transfers", SO_TTTT, 200))["items"]
    db = axis.client.app[DATABASE]
    async with db.reader() as tx:
        versions = {r[0] for r in await tx.fetchall("SELECT version FROM schema_migrations")}
    assert 38 in versions and 39 not in versions
    await moved_before_0039(db, copy["id"])
    await axis.client.close()

    # The upgrade: the same data directory opened with every migration.
    monkeypatch.setattr(storage.db, "load_migrations", load_migrations)
    app = build_app(axis_config)
    client = await aiohttp_client(app)
    upgraded = Axis(client, axis_config, tokens=axis.tokens)
    db = app[DATABASE]
    async with db.reader() as tx:
        tables = {r[0] for r in await tx.fetchall("SELECT name FROM sqlite_master")}
        moved = await tx.fetchall(
            "SELECT topic, kind, actor, attempts FROM carried_outbox"
            " WHERE topic LIKE 'dossier:%' ORDER BY id"
        )
    assert "dossier_transfer_reports" not in tables
    topic = f"dossier:report:{copy['id']}"
    assert [tuple(r[:3]) for r in moved] == [(topic, "status", SO_TTTT)] * 2
    assert moved[0][3] >= 1  # its failed attempt kept (the new round may have made another)

    # The outbox's round at start sends both, in order; the dossier gets the agency's moves.
    async def sent() -> bool:
        async with db.reader() as tx:
            row = await tx.fetchone(
                "SELECT count(*) FROM carried_outbox WHERE topic = ? AND package IS NULL",
                (topic,),
            )
        return row is not None and row[0] == 0

    for _ in range(400):
        if await sent():
            break
        await asyncio.sleep(0.05)
    assert await sent()
    await app[EXCHANGE].settle()
    full = await call(upgraded, "GET", f"/api/v1/dossiers/{code}", XA, 200)
    assert [(e["actor"], e["from"], e["to"]) for e in full["events"]] == [
        (XA, None, 2), (SO_TTTT, 2, 4), (SO_TTTT, 4, 9)
    ]  # fmt: skip
    assert full["status"] == 9
