"""What one accepted package costs on PostgreSQL, in round trips: sends of one client to one
recipient through the app, counted by `PgDatabase.round_trips` (docs/operations.md, "The
database")."""

from __future__ import annotations

from collections import Counter

import pytest
from axis_client import NGHE_AN, VPCP, Axis, document

from server.http.appkeys import DATABASE
from storage.pg import PgDatabase

SENDS = 20


async def test_a_send_takes_no_savepoint_and_few_round_trips(axis: Axis, db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("round trips to a PostgreSQL server")
    database = axis.client.app[DATABASE]
    assert isinstance(database, PgDatabase)
    await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))  # the first: caches warm
    before = Counter(database.round_trips)
    for _ in range(SENDS):
        await axis.send_ok(VPCP, document(VPCP, [NGHE_AN]))
    sent = database.round_trips - before
    per_package = sum(sent.values()) / SENDS
    print(f"round trips per accepted package: {per_package:.1f} {dict(sent)}")
    # savepoints only where a Conflict is caught and the transaction goes on (Tx.attempt):
    # none on the send path
    assert sent["SAVEPOINT"] == 0, sent
    assert sent["INSERT"] >= 3 * SENDS  # the package, its delivery, its audit entry
    # 39.5 before (a savepoint around every write, a reset at every release)
    assert per_package <= 30, sent
