"""One structured access line per request, carrying what the handler added (server.runtime.logs)."""

from __future__ import annotations

import json
import logging

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document

from server.runtime.logs import JsonFormatter, annotate


async def test_one_access_line_carries_the_accepted_document(
    axis: Axis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lienthong")
    resp = await axis.send(VPCP, document(VPCP, [NGHE_AN]))
    assert resp.status == 201
    receipt = await resp.json()
    assert resp.headers["X-Lienthong-Worker"] == "0"
    sends = [r for r in caplog.records if getattr(r, "path", None) == "/api/v1/documents"]
    assert len(sends) == 1
    [line] = sends
    assert line.getMessage() == "request"
    assert vars(line)["id"] == receipt["id"]
    assert vars(line)["recipients"] == 1
    assert vars(line)["agency"] == VPCP
    assert vars(line)["status"] == 201
    # no second line for the same acceptance
    assert not [r for r in caplog.records if r.getMessage() == "document accepted"]
    # and the next request's line does not inherit the fields
    caplog.clear()
    assert (await axis.get("/api/v1/inbox", NGHE_AN)).status == 200
    [inbox] = [r for r in caplog.records if getattr(r, "path", None) == "/api/v1/inbox"]
    assert "id" not in vars(inbox)


def test_annotate_outside_a_request_keeps_nothing() -> None:
    assert annotate(id="x") is False


def test_json_time_matches_the_datetime_formatting() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("lienthong", logging.INFO, "", 0, "m", None, None)
    for created in (1700000000.0, 1700000000.25, 1700000001.5, 1700000060.999):
        record.created = created
        entry = json.loads(formatter.format(record))
        expected = {
            1700000000.0: "2023-11-14T22:13:20.000+00:00",
            1700000000.25: "2023-11-14T22:13:20.250+00:00",
            1700000001.5: "2023-11-14T22:13:21.500+00:00",
            1700000060.999: "2023-11-14T22:14:20.999+00:00",
        }[created]
        assert entry["time"] == expected
