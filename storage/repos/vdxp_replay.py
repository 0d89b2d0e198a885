"""Signatures of VDXP requests already seen (migration 0026): a replayed request is one whose
signature is here, within the timestamp window; shared by every process on the database."""

from __future__ import annotations

from datetime import datetime

from storage.db import Tx
from storage.ids import to_db_time


class SeenSignatureRepo:
    """Reads and writes ``vdxp_seen_signatures`` through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def first_sighting(self, signature: str, now: datetime, horizon: datetime) -> bool:
        """Record ``signature`` as seen at ``now``; True when it had not been seen since
        ``horizon`` (then it is new), False for a repeat. Rows older than ``horizon`` are
        pruned first: past the window their requests are refused for their timestamp."""
        await self.tx.execute(
            "DELETE FROM vdxp_seen_signatures WHERE seen_at < ?", (to_db_time(horizon),)
        )
        inserted = await self.tx.execute(
            "INSERT INTO vdxp_seen_signatures (signature, seen_at) VALUES (?, ?)"
            " ON CONFLICT (signature) DO NOTHING",
            (signature, to_db_time(now)),
        )
        return inserted > 0
