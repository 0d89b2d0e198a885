"""The same package sent twice at once: one 201, one 200, one row (group commit included)."""

from __future__ import annotations

import asyncio

from axis_client import NGHE_AN, VPCP, Axis, document

import edxml


async def test_simultaneous_resends_answer_the_first_receipt(axis: Axis) -> None:
    for _ in range(5):
        body = edxml.serialize(document(VPCP, [NGHE_AN]))
        first, second = await asyncio.gather(axis.send(VPCP, body), axis.send(VPCP, body))
        assert sorted([first.status, second.status]) == [200, 201], await first.text()
        a, b = await first.json(), await second.json()
        assert a["id"] == b["id"]
    assert (await axis.snapshot())["rows"]["documents"] == 5
