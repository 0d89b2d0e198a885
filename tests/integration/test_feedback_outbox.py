"""Forwarding a feedback and the agency's replies are durable (issue 17, loose end 4): the
move is recorded with the package or status message in one transaction and the message goes
through the outbox (server/exchange/carried.py): when the exchange fails, the feedback is
transferred all the same and the package reaches the agency on the retry, once, even when a
first attempt got through before a crash; a reply whose send failed still becomes the
feedback's answer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from axis_client import NGHE_AN, SO_TTTT, Axis
from test_api_feedback import BASE, seed
from test_dossier_transfers import call

from server.http.appkeys import DATABASE, EXCHANGE
from server.http.feedback import FORWARDING
from server.runtime.config import Config
from storage.repos.carried_outbox import OutboxRepo
from storage.repos.feedback import FeedbackTransferRepo


@pytest.fixture
def axis_config(axis_config: Config) -> Config:
    """The office receives; the outbox's own retries wait a minute after a failure, so that
    the test decides when a retry happens."""
    feedback = dataclasses.replace(axis_config.feedback, receiving_unit=NGHE_AN)
    delivery = dataclasses.replace(axis_config.delivery, base_delay_ms=60_000)
    return dataclasses.replace(axis_config, feedback=feedback, delivery=delivery)


class Outage:
    """The exchange's ``name`` fails while ``down``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, exchange: Any, name: str) -> None:
        self.down = True
        real = getattr(exchange, name)

        async def flaky(*args: Any) -> Any:
            if self.down:
                raise OSError("the exchange is down")
            return await real(*args)

        monkeypatch.setattr(exchange, name, flaky)


async def test_forward_and_reply_survive_a_failing_exchange(
    axis: Axis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(axis)
    app = axis.client.app
    exchange, forwarding = app[EXCHANGE], app[FORWARDING]
    resp = await axis.client.post("/api/v1/feedback", json=BASE)
    code = (await resp.json())["code"]
    events = f"/api/v1/feedback/{code}/events"
    await call(axis, "POST", events, NGHE_AN, 200, json={"status": "classified"})

    # The exchange fails: the feedback is transferred all the same, its package waiting.
    documents = Outage(monkeypatch, exchange, "accept_document")
    moved = await call(axis, "POST", events, NGHE_AN, 200, json={"status": "transferred"})
    assert moved["status"] == "transferred"
    async with app[DATABASE].reader() as tx:
        [out] = await FeedbackTransferRepo(tx).of_feedback(code)
        [waiting] = await OutboxRepo(tx).waiting(f"feedback:forward:{code}")
    assert out.package == f"outbox:{waiting.id}" and waiting.attempts == 1
    assert (await axis.inbox(SO_TTTT))["items"] == []
    await call(axis, "POST", events, NGHE_AN, 409, json={"status": "transferred"})

    # A first attempt got through, then the process stopped before marking it: the retry
    # gets the exchange's first receipt; the agency has the package once.
    documents.down = False
    first = await exchange.accept_document(NGHE_AN, await exchange.receive(chunks(waiting)))
    assert await forwarding.outbox.send_due() == 0  # not due for a minute
    assert await forwarding.outbox.send(waiting.topic)
    await exchange.settle()
    async with app[DATABASE].reader() as tx:
        [out] = [
            t for t in await FeedbackTransferRepo(tx).of_feedback(code) if t.direction == "out"
        ]
        assert await OutboxRepo(tx).waiting(waiting.topic) == []
    assert out.package == first.document.id
    assert len((await axis.inbox(SO_TTTT))["items"]) == 1

    # The department answers while status messages fail: its copy moves, the answer waits
    # in the outbox and becomes the feedback's answer on the retry.
    listed = await call(axis, "GET", "/api/v1/feedback-inbox", SO_TTTT, 200)
    path = f"/api/v1/feedback-inbox/{listed['items'][0]['id']}/events"
    statuses = Outage(monkeypatch, exchange, "accept_status")
    answer = "Đã vá ổ gà."
    copy = await call(axis, "POST", path, SO_TTTT, 200, json={"status": "answered", "note": answer})
    assert copy["status"] == "answered"
    await exchange.settle()
    assert (await call(axis, "GET", f"/api/v1/feedback/{code}", NGHE_AN, 200))["answer"] == ""
    statuses.down = False
    assert await forwarding.outbox.send_due() == 0  # its retry is a minute away
    async with app[DATABASE].transaction() as tx:  # ... and the minute has passed
        await tx.execute("UPDATE carried_outbox SET next_attempt_at = '2000-01-01T00:00:00Z'")
    assert await forwarding.outbox.send_due() == 1  # the background round sends it
    await exchange.settle()
    full = await call(axis, "GET", f"/api/v1/feedback/{code}", NGHE_AN, 200)
    assert (full["status"], full["answer"]) == ("answered", answer)


async def chunks(row: Any) -> Any:
    yield row.message
