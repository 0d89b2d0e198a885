"""``lienthong deliveries list|retry`` and ``lienthong route ...`` on a real data directory."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from server.cli import main
from storage.db import Database
from storage.ids import new_id, utcnow
from storage.repos.agencies import AgencyRepo
from storage.repos.deliveries import DeliveryRepo
from storage.repos.documents import Document, DocumentRepo
from storage.repos.routes import PushRepo


async def make_dead_delivery(data: Path) -> str:
    db = await Database.open(data / "lienthong.sqlite3")
    try:
        async with db.transaction() as tx:
            for organ_id in ("000.00.00.G22", "000.00.00.H41"):
                await AgencyRepo(tx).add(organ_id, organ_id)
            doc = Document(new_id(), "000.00.00.G22", "X,1", "document", "ab" * 32, 10)
            await DocumentRepo(tx).insert(doc)
            delivery = await DeliveryRepo(tx).insert(doc.id, "000.00.00.H41", "document")
            now = utcnow()
            await PushRepo(tx).schedule(delivery.id, now - timedelta(seconds=1))
            [item] = await PushRepo(tx).claim("me", now, now + timedelta(seconds=60), 10)
            await PushRepo(tx).bury(item.delivery_id, "me", "HTTP 410: gone")
        return delivery.id
    finally:
        await db.close()


def test_list_and_retry_dead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    delivery_id = asyncio.run(make_dead_delivery(data))
    assert main(["deliveries", "list", "--state", "dead", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert delivery_id in out and "HTTP 410: gone" in out and "dead" in out
    assert main(["deliveries", "retry", "--data-dir", str(data)]) == 1  # nothing named
    assert "--all-dead" in capsys.readouterr().err
    assert main(["deliveries", "retry", delivery_id, "--data-dir", str(data)]) == 0
    assert "1 dead delivery queued again" in capsys.readouterr().out
    assert main(["deliveries", "list", "--state", "dead", "--data-dir", str(data)]) == 0
    assert delivery_id not in capsys.readouterr().out
    # no longer dead (and an unknown id): a one-line error on stderr, nothing on stdout, exit 1
    assert main(["deliveries", "retry", delivery_id, "nope", "--data-dir", str(data)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"lienthong: error: no dead delivery with id {delivery_id}, nope: nothing queued again\n"
    )
    assert main(["deliveries", "list", "--state", "new", "--data-dir", str(data)]) == 0
    assert delivery_id in capsys.readouterr().out


def test_route_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    asyncio.run(make_dead_delivery(data))
    secret = tmp_path / "secret"
    secret.write_text("0123456789abcdef-secret\n")
    args = ["--data-dir", str(data)]
    assert main(["route", "webhook", "000.00.00.H41", "--url", "http://127.0.0.1:9/h",
                 "--secret-file", str(secret), *args]) == 0  # fmt: skip
    assert main(["route", "axis", "000.00.00.G22", "--url", "http://127.0.0.1:9",
                 "--token-file", str(secret), "--hosts", "*.G22", *args]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["route", "list", *args]) == 0
    out = capsys.readouterr().out
    assert "webhook" in out and "*.G22" in out and "0123456789abcdef" not in out
    assert main(["route", "remove", "000.00.00.H41", *args]) == 0
    assert main(["route", "remove", "000.00.00.H41", *args]) == 1
    short = tmp_path / "short"
    short.write_text("x")
    assert main(["route", "webhook", "000.00.00.H41", "--url", "http://127.0.0.1:9/h",
                 "--secret-file", str(short), *args]) == 1  # fmt: skip
    assert "at least 16" in capsys.readouterr().err
