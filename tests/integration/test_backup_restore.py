"""``lienthong backup`` while the axis takes sends, then ``lienthong restore`` into a fresh data
directory: a new server on it serves every document the backup holds, byte for byte, to the
same tokens, and the backup holds at least every send acknowledged before it began."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document

from server.app.application import build_app
from server.cli import main
from server.runtime.config import load_config

# It reads the SQLite file itself: not on PostgreSQL yet (issue 20).
pytestmark = pytest.mark.sqlite_only


def _document_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM documents WHERE kind = 'document'")}
    finally:
        conn.close()


async def test_backup_while_sending_then_restore_serves_the_documents(
    axis: Axis, aiohttp_client: Any, tmp_path: Path
) -> None:
    async def send(n: int) -> tuple[str, bytes]:
        # Most packages are kept in the database; every fifth (over 256 KB) is an object file.
        payload = f"phụ lục {n} ".encode() * (200 if n % 5 else 20_000)
        attachments = [(f"phu-luc-{n}.txt", "text/plain", payload)]
        body = await axis.send_ok(VPCP, document(VPCP, [NGHE_AN], attachments=attachments))
        return str(body["id"]), payload

    before = dict([await send(n) for n in range(10)])
    backup_dir = tmp_path / "backup"
    data = str(axis.config.storage.data_dir)
    # Sends keep arriving while the backup runs (the CLI in a thread; the app on this loop).
    during = asyncio.gather(*(send(n) for n in range(10, 40)))
    code = await asyncio.to_thread(main, ["backup", str(backup_dir), "--data-dir", data])
    sent = before | dict(await during)
    assert code == 0
    manifest = json.loads((backup_dir / "backup.json").read_text())
    assert manifest["format"] == "lienthong-backup/1"
    assert manifest["objects"] >= 2 and manifest["inline_objects"] >= 8
    assert not (backup_dir / "secrets.key").exists()
    assert not (backup_dir / "lienthong.sqlite3-wal").exists()

    # A second backup into the same directory is refused; so is a restore over an axis.
    assert await asyncio.to_thread(main, ["backup", str(backup_dir), "--data-dir", data]) == 1
    assert await asyncio.to_thread(main, ["restore", str(backup_dir), "--data-dir", data]) == 1

    fresh = tmp_path / "restored"
    code = await asyncio.to_thread(main, ["restore", str(backup_dir), "--data-dir", str(fresh)])
    assert code == 0
    restored_ids = _document_ids(fresh / "lienthong.sqlite3")
    assert set(before) <= restored_ids <= set(sent)

    config = load_config(env={"LIENTHONG_SERVER_LOG_JSON": "0"}, data_dir=fresh)
    client = await aiohttp_client(build_app(config))
    auth = {"Authorization": f"Bearer {axis.tokens[NGHE_AN]}"}
    for doc_id in restored_ids:
        resp = await client.get(f"/api/v1/documents/{doc_id}/attachments/0", headers=auth)
        assert resp.status == 200, (doc_id, await resp.text())
        assert await resp.read() == sent[doc_id]
    resp = await client.get("/api/v1/inbox?limit=100", headers=auth)
    assert resp.status == 200
    assert {i["document_id"] for i in (await resp.json())["items"]} == restored_ids
