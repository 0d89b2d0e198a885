"""Citizen feedback (migration 0027): categories, feedback rows, photos, events, transfers.

The domain (server/feedback/) decides; this module only reads and writes rows through a Tx.
:meth:`FeedbackRepo.next_seq` must be called in the write transaction that inserts the
feedback: SQLite's single writer makes "one more than the day's highest" gapless and unique.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from storage.db import Tx
from storage.ids import from_db_time, from_db_time_opt, to_db_time

# Statuses still to be answered in time (server/feedback/lifecycle.py).
OPEN_FOR_ANSWER = ("received", "classified", "transferred", "processing")
# Statuses in which a limit can still pass (the supplement pauses them all): as SQL, the same
# literal list as the partial indexes of migration 0027, so that the overdue list uses them.
OPEN = "status IN ('received', 'classified', 'transferred', 'processing', 'answered')"


@dataclass(frozen=True)
class CategoryRow:
    """One category (an Open311 service)."""

    code: str
    name: str
    agency: str
    description: str = ""
    group: str = ""
    keywords: tuple[str, ...] = ()
    type: str = "realtime"
    attributes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class FeedbackRow:
    """One stored feedback."""

    code: str
    day: str
    seq: int
    category: str
    receiving_unit: str
    agency: str
    channel: str
    status: str
    title: str
    content: str
    address: str
    lat: float | None
    lon: float | None
    attributes: dict[str, Any]
    sender: dict[str, str]
    token_hash: str
    idempotency_key: str | None
    received_at: datetime
    classify_due: datetime
    transfer_due: datetime
    answer_due: datetime
    publish_due: datetime | None = None
    paused_at: datetime | None = None
    supplements: int = 0
    answer: str = ""
    answered_at: datetime | None = None
    published_at: datetime | None = None
    hidden: bool = False
    hidden_reason: str = ""
    rating: str | None = None
    rated_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def but(self, **changes: Any) -> FeedbackRow:
        """A copy with ``changes``."""
        return replace(self, **changes)


@dataclass(frozen=True)
class PhotoRow:
    """One photo of a feedback (``n`` from 1)."""

    n: int
    content_type: str
    sha256: str
    size: int
    width: int
    height: int
    approved: bool = False


@dataclass(frozen=True)
class EventRow:
    """One move (``from_status`` None: the intake)."""

    id: int
    actor: str
    at: datetime
    from_status: str | None
    to_status: str
    note: str


@dataclass(frozen=True)
class TransferRow:
    """A feedback sent over the axis (``out``) or received from it (``in``)."""

    id: int
    direction: str
    feedback: str
    origin: str
    agency: str
    package: str
    document_id: str
    status: str
    answer: str
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FeedbackFilter:
    """An officer's list: what ``agency`` received or must answer, and the options."""

    agency: str
    status: str | None = None
    category: str | None = None
    competent: str | None = None  # only feedback this agency must answer (``agency=``)
    overdue_at: datetime | None = None  # only feedback past one of its limits at this moment


_COLUMNS = (
    "code, day, seq, category, receiving_unit, agency, channel, status, title, content,"
    " address, lat, lon, attributes, sender, token_hash, idempotency_key, received_at,"
    " classify_due, transfer_due, answer_due, publish_due, paused_at, supplements, answer,"
    " answered_at, published_at, hidden, hidden_reason, rating, rated_at, created_at, updated_at"
)
_NAMES = [c.strip() for c in _COLUMNS.split(",")]
_TIMES = {
    "received_at",
    "classify_due",
    "transfer_due",
    "answer_due",
    "publish_due",
    "paused_at",
    "answered_at",
    "published_at",
    "rated_at",
    "created_at",
    "updated_at",
}
_JSON = {"attributes", "sender"}


def _to_db(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return to_db_time(value)
    if name in _JSON:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if name == "hidden":
        return int(value)
    return value


def _feedback(row: sqlite3.Row) -> FeedbackRow:
    values: dict[str, Any] = {}
    for name in _NAMES:
        value = row[name]
        if name in _TIMES:
            value = from_db_time_opt(value)
        elif name in _JSON:
            value = json.loads(value)
        elif name == "hidden":
            value = bool(value)
        values[name] = value
    return FeedbackRow(**values)


def _category(row: sqlite3.Row) -> CategoryRow:
    return CategoryRow(
        code=row["code"],
        name=row["name"],
        agency=row["agency"],
        description=row["description"],
        group=row["grp"],
        keywords=tuple(json.loads(row["keywords"])),
        type=row["type"],
        attributes=tuple(json.loads(row["attributes"])),
    )


def _transfer(row: sqlite3.Row) -> TransferRow:
    return TransferRow(
        row["id"],
        row["direction"],
        row["feedback"],
        row["origin"],
        row["agency"],
        row["package"],
        row["document_id"],
        row["status"],
        row["answer"],
        json.loads(row["body"]),
        from_db_time(row["created_at"]),
        from_db_time(row["updated_at"]),
    )


class CategoryRepo:
    """Reads and writes the categories through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def upsert(self, c: CategoryRow, now: datetime) -> bool:
        """Store a category (replacing one with its code); True when it is new."""
        existed = await self.get(c.code) is not None
        await self.tx.execute(
            "INSERT INTO feedback_categories (code, name, description, grp, keywords, type,"
            " agency, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name,"
            " description = excluded.description, grp = excluded.grp,"
            " keywords = excluded.keywords, type = excluded.type, agency = excluded.agency,"
            " attributes = excluded.attributes, updated_at = excluded.updated_at",
            (
                c.code,
                c.name,
                c.description,
                c.group,
                json.dumps(list(c.keywords), ensure_ascii=False),
                c.type,
                c.agency,
                json.dumps(list(c.attributes), ensure_ascii=False),
                to_db_time(now),
                to_db_time(now),
            ),
        )
        return not existed

    async def get(self, code: str) -> CategoryRow | None:
        """The category with this code, or None."""
        row = await self.tx.fetchone("SELECT * FROM feedback_categories WHERE code = ?", (code,))
        return None if row is None else _category(row)

    async def all(self) -> list[CategoryRow]:
        """Every category, by code."""
        rows = await self.tx.fetchall("SELECT * FROM feedback_categories ORDER BY code")
        return [_category(r) for r in rows]


class FeedbackRepo:
    """Reads and writes the feedback tables through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def next_seq(self, day: str) -> int:
        """The next number of day ``day`` (YYMMDD) on this axis: 1 for the first. Submissions
        of the same day wait for each other from here to COMMIT (no repeat, no gap, on any
        node)."""
        await self.tx.serialize(f"lienthong:feedback-seq:{day}")
        row = await self.tx.fetchone(
            "SELECT COALESCE(MAX(seq), 0) FROM feedback WHERE day = ?", (day,)
        )
        return int(row[0] if row else 0) + 1

    async def insert(self, f: FeedbackRow) -> None:
        """Store a new feedback row."""
        marks = ", ".join("?" * len(_NAMES))
        await self.tx.execute(
            f"INSERT INTO feedback ({_COLUMNS}) VALUES ({marks})",  # noqa: S608
            [_to_db(n, getattr(f, n)) for n in _NAMES],
        )

    async def update(self, f: FeedbackRow) -> None:
        """Write every changeable column of ``f`` (status, limits, answer, moderation...)."""
        names = [n for n in _NAMES if n not in {"code", "day", "seq", "created_at"}]
        sets = ", ".join(f"{n} = ?" for n in names)
        await self.tx.execute(
            f"UPDATE feedback SET {sets} WHERE code = ?",  # noqa: S608
            [*(_to_db(n, getattr(f, n)) for n in names), f.code],
        )

    async def get(self, code: str) -> FeedbackRow | None:
        """The feedback with this code, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM feedback WHERE code = ?",  # noqa: S608
            (code,),
        )
        return None if row is None else _feedback(row)

    async def by_idempotency_key(self, key: str) -> FeedbackRow | None:
        """The feedback an intake with this ``Idempotency-Key`` made, or None."""
        row = await self.tx.fetchone(
            f"SELECT {_COLUMNS} FROM feedback WHERE idempotency_key = ?",  # noqa: S608
            (key,),
        )
        return None if row is None else _feedback(row)

    async def add_photos(self, code: str, photos: list[PhotoRow]) -> None:
        """Name the stored photo objects as the feedback's."""
        await self.tx.executemany(
            "INSERT INTO feedback_photos"
            " (feedback, n, content_type, sha256, size, width, height, approved)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (code, p.n, p.content_type, p.sha256, p.size, p.width, p.height, int(p.approved))
                for p in photos
            ],
        )

    async def photos(self, code: str) -> list[PhotoRow]:
        """The feedback's photos, by number."""
        rows = await self.tx.fetchall(
            "SELECT n, content_type, sha256, size, width, height, approved FROM feedback_photos"
            " WHERE feedback = ? ORDER BY n",
            (code,),
        )
        return [PhotoRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    async def photos_of(self, codes: list[str]) -> dict[str, list[PhotoRow]]:
        """The photos of each of ``codes`` (a page of feedback), in one query."""
        found: dict[str, list[PhotoRow]] = {code: [] for code in codes}
        if not codes:
            return found
        marks = ", ".join("?" * len(codes))
        rows = await self.tx.fetchall(
            "SELECT feedback, n, content_type, sha256, size, width, height, approved"  # noqa: S608
            f" FROM feedback_photos WHERE feedback IN ({marks}) ORDER BY feedback, n",
            codes,
        )
        for r in rows:
            found[r[0]].append(PhotoRow(r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7])))
        return found

    async def approve_photos(self, code: str, approved: set[int]) -> None:
        """Approve exactly the photos numbered in ``approved`` for the public pages."""
        rows = await self.photos(code)
        for p in rows:
            await self.tx.execute(
                "UPDATE feedback_photos SET approved = ? WHERE feedback = ? AND n = ?",
                (int(p.n in approved), code, p.n),
            )

    async def add_event(
        self, code: str, actor: str, at: datetime, from_status: str | None, to: str, note: str
    ) -> int:
        """Append an event; its id."""
        row = await self.tx.fetchone(
            "INSERT INTO feedback_events (feedback, actor, at, from_status, to_status, note)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (code, actor, to_db_time(at), from_status, to, note),
        )
        return int(row[0]) if row else 0

    async def events(self, code: str) -> list[EventRow]:
        """The feedback's events, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT id, actor, at, from_status, to_status, note FROM feedback_events"
            " WHERE feedback = ? ORDER BY id",
            (code,),
        )
        return [EventRow(r[0], r[1], from_db_time(r[2]), r[3], r[4], r[5]) for r in rows]

    async def page(self, where: FeedbackFilter, after: str | None, limit: int) -> list[FeedbackRow]:
        """Up to ``limit`` feedback the filter keeps with a code after ``after``, in code order:
        the UNION of the agency's two sides (received; to answer), each on its own index."""
        conditions = ["code > ?"]
        params: list[Any] = [after or ""]
        if where.status is not None:
            conditions.append("status = ?")
            params.append(where.status)
        if where.category is not None:
            conditions.append("category = ?")
            params.append(where.category)
        if where.competent is not None:
            conditions.append("agency = ?")
            params.append(where.competent)
        if where.overdue_at is not None:
            now = to_db_time(where.overdue_at)
            conditions.append(OPEN)
            conditions.append(
                "((status = 'received' AND classify_due < ?)"
                " OR (status IN ('received', 'classified') AND agency != receiving_unit"
                " AND transfer_due < ?)"
                " OR (status IN ('received', 'classified', 'transferred', 'processing')"
                " AND paused_at IS NULL AND answer_due < ?)"
                " OR (status = 'answered' AND publish_due < ?))"
            )
            params.extend([now, now, now, now])
        rest = " AND ".join(conditions)
        sql = (
            f"SELECT {_COLUMNS} FROM feedback WHERE receiving_unit = ? AND {rest} "  # noqa: S608
            f"UNION SELECT {_COLUMNS} FROM feedback WHERE agency = ? AND {rest} "
            "ORDER BY code LIMIT ?"
        )
        rows = await self.tx.fetchall(sql, [where.agency, *params, where.agency, *params, limit])
        return [_feedback(r) for r in rows]

    async def published(self, after: str | None, limit: int) -> list[FeedbackRow]:
        """Published feedback not hidden, newest code first, before the cursor ``after``."""
        rows = await self.tx.fetchall(
            f"SELECT {_COLUMNS} FROM feedback"  # noqa: S608
            " WHERE published_at IS NOT NULL AND hidden = 0 AND code < ?"
            " ORDER BY code DESC LIMIT ?",
            (after or "\uffff", limit),
        )
        return [_feedback(r) for r in rows]


class FeedbackTransferRepo:
    """The feedback sent over the axis and received from it."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def insert(self, t: TransferRow) -> int:
        """Store a transfer; its id."""
        row = await self.tx.fetchone(
            "INSERT INTO feedback_transfers (direction, feedback, origin, agency, package,"
            " document_id, status, answer, body, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                t.direction,
                t.feedback,
                t.origin,
                t.agency,
                t.package,
                t.document_id,
                t.status,
                t.answer,
                json.dumps(t.body, ensure_ascii=False),
                to_db_time(t.created_at),
                to_db_time(t.updated_at),
            ),
        )
        return int(row[0]) if row else 0

    async def get(self, transfer_id: int) -> TransferRow | None:
        """The transfer with this id, or None."""
        row = await self.tx.fetchone(
            "SELECT * FROM feedback_transfers WHERE id = ?", (transfer_id,)
        )
        return None if row is None else _transfer(row)

    async def by_package(self, direction: str, package: str) -> TransferRow | None:
        """The transfer of this direction made with this package, or None."""
        row = await self.tx.fetchone(
            "SELECT * FROM feedback_transfers WHERE direction = ? AND package = ?",
            (direction, package),
        )
        return None if row is None else _transfer(row)

    async def of_feedback(self, code: str) -> list[TransferRow]:
        """The transfers of one feedback, oldest first."""
        rows = await self.tx.fetchall(
            "SELECT * FROM feedback_transfers WHERE feedback = ? ORDER BY id", (code,)
        )
        return [_transfer(r) for r in rows]

    async def incoming(self, agency: str, after: int, limit: int) -> list[TransferRow]:
        """The feedback received for ``agency``, by id after ``after``."""
        rows = await self.tx.fetchall(
            "SELECT * FROM feedback_transfers WHERE direction = 'in' AND agency = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (agency, after, limit),
        )
        return [_transfer(r) for r in rows]

    async def package_sent(self, waiting: str, package: str) -> None:
        """The exchange accepted the package of the ``out`` transfer named ``waiting`` so far."""
        await self.tx.execute(
            "UPDATE feedback_transfers SET package = ? WHERE direction = 'out' AND package = ?",
            (package, waiting),
        )

    async def move(self, transfer_id: int, status: str, answer: str, now: datetime) -> None:
        """Set a transfer's status (and answer)."""
        await self.tx.execute(
            "UPDATE feedback_transfers SET status = ?, answer = ?, updated_at = ? WHERE id = ?",
            (status, answer, to_db_time(now), transfer_id),
        )
