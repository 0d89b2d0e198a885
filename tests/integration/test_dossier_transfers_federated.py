"""One-stop dossiers across two federated axes (issue 16), on two real servers on 127.0.0.1.

The commune (the originating unit) lives on axis 1, the department (the agency of the
procedure's second step) on axis 2, each axis linked to the other for the ids it hosts. The
transfer package reaches axis 2, where the department works the dossier like its own (its list,
the dossier with its files, its moves); its moves (a supplement pause and its resumption, done)
come back to axis 1 as status messages and become events of the same dossier, with the due
dates moved as for local moves. While axis 2 cannot spool the status messages and axis 1 is
unreachable the moves stand and their messages wait; once both are back they arrive, in order,
and the commune sees the whole history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from test_api_dossiers import APPLICANT, FILES, form
from test_dossier_transfers import TWO_STEPS, store_two_steps
from test_federation_three_axes import Node, call, eventually, start

from server.http.appkeys import CALENDAR

AXIS1, AXIS2 = "000.00.00.LT1", "000.00.00.LT2"
XA = "001.01.00.H41"  # the commune, on axis 1
SO = "000.00.12.H41"  # a department of the province, on axis 2 (not above the commune)
OTHER = "000.00.13.H41"  # another department on axis 2, party to nothing


@pytest.fixture
async def axes(tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    one = await start(tmp_path, "one", AXIS1, [XA])
    two = await start(tmp_path, "two", AXIS2, [SO, OTHER])
    await one.add(XA, "UBND xã Nghi Phong")
    await one.add(SO, "Sở Tư pháp Nghệ An", token=False)
    two_at_one = await one.add(AXIS2, "Trục 2")
    await two.add(SO, "Sở Tư pháp Nghệ An")
    await two.add(OTHER, "Sở Y tế Nghệ An")
    await two.add(XA, "UBND xã Nghi Phong", token=False)
    one_at_two = await two.add(AXIS1, "Trục 1")
    assert two_at_one and one_at_two
    await one.link(AXIS2, two.url, one_at_two, [SO])
    await two.link(AXIS1, one.url, two_at_one, [XA])
    await store_two_steps(one.db, XA, SO)
    try:
        yield one, two
    finally:
        for node in (two, one):
            await node.runner.cleanup()


async def ok(session: aiohttp.ClientSession, node: Node, method: str, path: str, who: str,
             expect: int = 200, **kw: Any) -> Any:  # fmt: skip
    status, body = await call(session, node, method, path, who, **kw)
    assert status == expect, body
    return body


async def unreachable(node: Node) -> int:
    """Close the node's listening socket (the app keeps running); its port."""
    port = int(node.url.rsplit(":", 1)[1])
    for site in list(node.runner.sites):
        await site.stop()
    server = node.runner.server
    assert server is not None
    await server.shutdown(1.0)  # and the kept-alive connections of the other axis
    return port


async def reachable(node: Node, port: int) -> None:
    """Listen again on the same port."""
    await web.TCPSite(node.runner, "127.0.0.1", port).start()


async def pending(node: Node) -> list[int]:
    """The statuses of the moves whose status message the node has not sent yet."""
    async with node.db.reader() as tx:
        rows = await tx.fetchall(
            "SELECT message FROM carried_outbox WHERE topic LIKE 'dossier:%'"
            " AND package IS NULL ORDER BY id"
        )
    return [int(bytes(r[0]).split(b"[ho-so ", 1)[1].split(b" ", 1)[0]) for r in rows]


async def is_empty(pending: Any) -> bool:
    return not await pending


async def at_one_direct(node: Node, code: str) -> int:
    """The dossier's status in the node's database (while it does not listen)."""
    async with node.db.reader() as tx:
        row = await tx.fetchone("SELECT status FROM dossiers WHERE code = ?", (code,))
    assert row is not None
    return int(row[0])


async def test_a_dossier_worked_on_another_axis(axes: tuple[Node, Node]) -> None:
    one, two = axes
    clock = one.runner.app[CALENDAR].clock
    async with aiohttp.ClientSession() as s:
        intake = await ok(
            s, one, "POST", "/api/v1/dossiers", XA, 201,
            data=form({"procedure": TWO_STEPS, "applicant": dict(APPLICANT), "channel": 1}),
        )  # fmt: skip
        code = intake["code"]
        received = datetime.fromisoformat(intake["received_at"])
        sent = await ok(
            s, one, "POST", f"/api/v1/dossiers/{code}/transfer", XA, 201, json={"agency": SO}
        )
        assert sent["step"] == 2
        step_due = clock.due_at(received, 5)
        assert datetime.fromisoformat(sent["due_at"]) == step_due

        # The package reaches axis 2: the department has the dossier in its own list.
        async def listed() -> list[Any]:
            page = await ok(s, two, "GET", "/api/v1/dossiers", SO)
            return list(page["items"])

        [item] = await eventually(listed)
        assert item["code"] == code and item["status"] == 2
        assert item["transferred_in"]["step"] == 2
        assert item["transferred_in"]["origin"] == XA
        assert datetime.fromisoformat(item["due_at"]) == step_due
        assert item["procedure"] == TWO_STEPS and item["applicant_name"] == APPLICANT["name"]
        # Not overdue yet; no other agency of axis 2 sees it.
        assert (await ok(s, two, "GET", "/api/v1/dossiers?overdue=true", SO))["items"] == []
        assert (await ok(s, two, "GET", "/api/v1/dossiers", OTHER))["items"] == []
        await ok(s, two, "GET", f"/api/v1/dossiers/{code}", OTHER, 404)

        # The dossier with its files, each readable.
        full = await ok(s, two, "GET", f"/api/v1/dossiers/{code}", SO)
        assert full["transferred_in"]["step"] == 2
        assert full["applicant"]["id_number"] == APPLICANT["id_number"]
        assert [f["component"] for f in full["files"]] == ["TK", "GCS"]
        for f in full["files"]:
            status, data = await call(s, two, "GET", f["url"], SO)
            assert status == 200 and data == FILES[f["component"]]
            assert (await call(s, two, "GET", f["url"], OTHER))[0] == 404

        # The department takes it up and asks for a supplement: both arrive at axis 1.
        # It moves the dossier as its own (its step, in fact); not with files or a past time.
        events = f"/api/v1/dossiers/{code}/events"
        at = datetime.now(UTC).isoformat()
        await ok(s, two, "POST", events, SO, 422, json={"status": 4, "at": at})
        await ok(s, two, "POST", events, OTHER, 404, json={"status": 4})
        await ok(s, two, "POST", events, SO, json={"status": 4, "note": "Đang thẩm định"})
        await ok(s, two, "POST", events, SO, json={"status": 5, "note": "Thiếu bản sao"})

        async def at_one(status: int) -> dict[str, Any] | None:
            body = await ok(s, one, "GET", f"/api/v1/dossiers/{code}", XA)
            return dict(body) if body["status"] == status else None

        paused = await eventually(lambda: at_one(5))
        assert paused["paused"] is True
        due_before = datetime.fromisoformat(paused["due_at"])

        # The department resumes (5 -> 4) while its own axis cannot spool the status message
        # (the spool directory is gone): the move stands, its status message waits.
        spool = two.config.spool_dir
        spool.rename(spool.with_name("spool.away"))
        spool.write_bytes(b"")
        await ok(s, two, "POST", events, SO, json={"status": 4, "note": "Đã bổ sung"})
        assert await pending(two) == [4]
        # Axis 1 goes away too; the department finishes (9): its message waits behind the 4.
        port = await unreachable(one)
        done = await ok(s, two, "POST", events, SO, json={"status": 9, "note": "Đã cấp"})
        assert done["status"] == 9
        assert await pending(two) == [4, 9]
        async with two.db.reader() as tx:
            failed = await tx.fetchone(
                "SELECT attempts, last_error FROM carried_outbox WHERE topic LIKE 'dossier:%'"
                " AND package IS NULL ORDER BY id LIMIT 1"
            )
        assert failed is not None and failed[0] >= 1 and "spool" in failed[1], failed
        mine = await ok(s, two, "GET", f"/api/v1/dossiers/{code}", SO)
        assert [(e["from"], e["to"]) for e in mine["events"]] == [
            (None, 2), (2, 4), (4, 5), (5, 4), (4, 9)
        ]  # fmt: skip
        # The spool back: the retries hand both to the exchange, in order, which keeps them
        # for axis 1 (still unreachable: they wait in its delivery queue).
        spool.unlink()
        spool.with_name("spool.away").rename(spool)
        await eventually(lambda: is_empty(pending(two)))
        assert await at_one_direct(one, code) == 5

        await reachable(one, port)
        final = await eventually(lambda: at_one(9))
        moves = [(e["actor"], e["from"], e["to"]) for e in final["events"]]
        assert moves == [(XA, None, 2), (SO, 2, 4), (SO, 4, 5), (SO, 5, 4), (SO, 4, 9)]
        assert all(e["note"].startswith(f"Bước 2 ({SO})") for e in final["events"][1:])
        # The pause moved the dossier's due date and the step's as a local 5 -> 4 would.
        at5, at4 = (datetime.fromisoformat(final["events"][i]["at"]) for i in (2, 3))
        pause = clock.working_time_between(at5, at4)
        assert datetime.fromisoformat(final["due_at"]) == clock.add_working_time(due_before, pause)
        steps = await ok(s, one, "GET", f"/api/v1/dossiers/{code}/steps", XA)
        [transfer] = steps["transfers"]
        assert transfer["status"] == 9
        assert datetime.fromisoformat(transfer["due_at"]) == clock.add_working_time(step_due, pause)
        # The department's list at axis 2 shows its step done; the commune returns the result.
        [item] = await listed()
        assert item["status"] == 9 and item["overdue"] is False
        await ok(s, one, "POST", f"/api/v1/dossiers/{code}/events", XA, json={"status": 10})
