"""What Open311 reads of the feedback (migrations 0027 and 0033) and what it adds to a
feedback an app posted: the app, ``media_url`` (never fetched), ``device_id``, ``account_id``
and the token of a batch-type service.

Reads are of visible feedback only (``hidden = 0``) and never select the sender's name or
contacts: :class:`Open311Row` has no field for them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.ids import to_db_time, utcnow


@dataclass(frozen=True)
class Open311Row:
    """A visible feedback with what Open311 shows of it."""

    code: str
    status: str
    category: str
    category_name: str
    agency_name: str | None
    content: str
    address: str
    lat: float | None
    lon: float | None
    receiving_unit: str
    agency: str
    received_at: datetime
    updated_at: datetime
    classify_due: datetime
    transfer_due: datetime
    answer_due: datetime
    publish_due: datetime | None
    answer: str
    published_at: datetime | None
    media_url: str | None


_SELECT = (
    "SELECT f.code, f.status, f.category, c.name AS category_name, a.name AS agency_name,"
    " f.content, f.address, f.lat, f.lon, f.receiving_unit, f.agency, f.received_at,"
    " f.updated_at, f.classify_due, f.transfer_due, f.answer_due, f.publish_due, f.answer,"
    " f.published_at, o.media_url"
    " FROM feedback f JOIN feedback_categories c ON c.code = f.category"
    " LEFT JOIN agencies a ON a.organ_id = f.agency"
    " LEFT JOIN open311_requests o ON o.feedback = f.code"
)


def _time(text: str) -> datetime:
    # stored times are fixed-width UTC ending in Z (storage.ids.to_db_time): fromisoformat
    # reads them aware, without from_db_time's checks (a thousand rows, seven times each)
    return datetime.fromisoformat(text)


def _time_opt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _row(row: sqlite3.Row) -> Open311Row:
    return Open311Row(
        code=row["code"],
        status=row["status"],
        category=row["category"],
        category_name=row["category_name"],
        agency_name=row["agency_name"],
        content=row["content"],
        address=row["address"],
        lat=row["lat"],
        lon=row["lon"],
        receiving_unit=row["receiving_unit"],
        agency=row["agency"],
        received_at=_time(row["received_at"]),
        updated_at=_time(row["updated_at"]),
        classify_due=_time(row["classify_due"]),
        transfer_due=_time(row["transfer_due"]),
        answer_due=_time(row["answer_due"]),
        publish_due=_time_opt(row["publish_due"]),
        answer=row["answer"],
        published_at=_time_opt(row["published_at"]),
        media_url=row["media_url"],
    )


def _marks(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


class Open311Repo:
    """Reads the visible feedback for Open311 and writes its Open311 extras, through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def add(
        self,
        code: str,
        app: str,
        *,
        media_url: str | None,
        device_id: str | None,
        account_id: str | None,
        token: str | None,
        idempotency_key: str | None = None,
        body_hash: str | None = None,
    ) -> None:
        """Record what an app posted with the feedback ``code`` (``idempotency_key`` and
        ``body_hash`` hashed: migration 0038)."""
        await self.tx.execute(
            "INSERT INTO open311_requests (feedback, app, media_url, device_id, account_id,"
            " token, idempotency_key, body_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (code, app, media_url, device_id, account_id, token, idempotency_key, body_hash,
             to_db_time(utcnow())),
        )  # fmt: skip

    async def posted_with_key(self, app: str, idempotency_key: str) -> str | None:
        """The feedback ``app`` posted with this (hashed) ``Idempotency-Key``, or None."""
        row = await self.tx.fetchone(
            "SELECT feedback FROM open311_requests WHERE app = ? AND idempotency_key = ?",
            (app, idempotency_key),
        )
        return None if row is None else str(row["feedback"])

    async def posted_since(self, app: str, body_hash: str, since: datetime) -> str | None:
        """The latest feedback ``app`` posted with this body since ``since``, or None."""
        row = await self.tx.fetchone(
            "SELECT feedback FROM open311_requests WHERE app = ? AND body_hash = ?"
            " AND created_at >= ? ORDER BY created_at DESC LIMIT 1",
            (app, body_hash, to_db_time(since)),
        )
        return None if row is None else str(row["feedback"])

    async def token_of(self, code: str) -> str | None:
        """The batch token recorded with the feedback ``code``, or None."""
        row = await self.tx.fetchone(
            "SELECT token FROM open311_requests WHERE feedback = ?", (code,)
        )
        return None if row is None or row["token"] is None else str(row["token"])

    async def services_changed(self) -> datetime | None:
        """When a category (a service, its definition) was last added or changed; None if
        there is none."""
        row = await self.tx.fetchone("SELECT max(updated_at) AS at FROM feedback_categories", ())
        return None if row is None or row["at"] is None else _time(row["at"])

    async def code_of_token(self, token: str) -> str | None:
        """The feedback a batch token stands for, or None."""
        row = await self.tx.fetchone(
            "SELECT feedback FROM open311_requests WHERE token = ? LIMIT 1", (token,)
        )
        return None if row is None else str(row["feedback"])

    async def by_codes(self, codes: Sequence[str]) -> list[Open311Row]:
        """The visible feedback among ``codes``, the newest first."""
        if not codes:
            return []
        rows = await self.tx.fetchall(
            f"{_SELECT} WHERE f.code IN ({_marks(codes)}) AND f.hidden = 0"
            " ORDER BY f.received_at DESC, f.code DESC",
            list(codes),
        )
        return [_row(r) for r in rows]

    async def window(
        self,
        start: datetime,
        end: datetime,
        categories: Sequence[str],
        statuses: Sequence[str],
        limit: int,
    ) -> list[Open311Row]:
        """Up to ``limit`` visible feedback received in ``[start, end]``, of those categories and
        statuses (none given: all), the newest first: a client polling
        the default window sees what is new even past 1,000."""
        conditions = ["f.hidden = 0", "f.received_at >= ?", "f.received_at <= ?"]
        params: list[object] = [to_db_time(start), to_db_time(end)]
        if categories:
            conditions.append(f"f.category IN ({_marks(categories)})")
            params.extend(categories)
        if statuses:
            conditions.append(f"f.status IN ({_marks(statuses)})")
            params.extend(statuses)
        rows = await self.tx.fetchall(
            f"{_SELECT} WHERE {' AND '.join(conditions)}"
            " ORDER BY f.received_at DESC, f.code DESC LIMIT ?",
            [*params, limit],
        )
        return [_row(r) for r in rows]
