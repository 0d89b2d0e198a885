"""The audit log (nhật ký kiểm tra): an append-only hash chain of every action on the axis.

Each entry records who (an organ id, ``admin`` or ``axis``) did what (``document.send``,
``delivery.ack``, ``token.create``...) to which objects, with a small JSON ``details`` object.
Its ``hash`` is the SHA-256 of a canonical encoding of all its fields *including the previous
entry's hash*, so that:

- editing an entry makes its hash wrong;
- rewriting an entry *and* its hash breaks the link from the next entry;
- deleting an entry leaves a gap in ``seq`` and a broken link;
- moving entries around changes their ``seq``, which is hashed too.

Only a rewrite of an entry and of every entry after it goes unnoticed by the chain alone:
that is what the anchors are for. Every N minutes (and at shutdown) the server asks an RFC 3161
time-stamping authority to sign the chain head's hash (``server/runtime/audit.py``); the anchors are
kept here, and :func:`verify_log` checks the chain against them.

:func:`append` takes the write :class:`~storage.db.Tx` of the action it records, so the entry
commits (or rolls back) with the action itself. Appends are serialised by the database's single
writer (and SQLite's write lock across processes), so ``seq`` never forks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from storage.db import Tx
from storage.errors import StorageError
from storage.ids import from_db_time, new_id, to_db_time, utcnow

GENESIS_HASH = "0" * 64  # the prev_hash of entry 1
ENCODING_VERSION = 1
# How far from its stored seq an entry whose hash fails is searched for (to tell "moved" from
# "edited"); past this distance it is reported as edited.
_MOVE_SEARCH = 5000
_MAX_RESOLVED_SUSPECTS = 200
_PAGE = 2000


class AuditError(StorageError):
    """The audit log cannot be written or read as asked (e.g. an append outside a write Tx)."""


@dataclass(frozen=True)
class AuditEntry:
    """One link of the chain, as stored. ``objects`` and ``details`` keep their stored text
    (canonical JSON), which is exactly what is hashed."""

    seq: int
    logged_at: str
    actor: str
    action: str
    objects_json: str
    details_json: str
    prev_hash: str
    hash: str

    @property
    def time(self) -> datetime:
        """When the entry was written (aware, UTC)."""
        return from_db_time(self.logged_at)

    @property
    def objects(self) -> list[str]:
        """The ids of the objects the action touched (empty if unreadable)."""
        value = _loads(self.objects_json)
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def details(self) -> dict[str, Any]:
        """The details object (empty if unreadable)."""
        value = _loads(self.details_json)
        return value if isinstance(value, dict) else {}

    def computed_hash(self, seq: int | None = None) -> str:
        """The hash this entry's fields give (with ``seq`` replaced when given)."""
        return entry_hash(
            self.seq if seq is None else seq,
            self.logged_at,
            self.actor,
            self.action,
            self.objects_json,
            self.details_json,
            self.prev_hash,
        )

    def as_json(self) -> dict[str, Any]:
        """The entry for the API and the CLI (objects and details decoded)."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "objects": self.objects,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Anchor:
    """An RFC 3161 timestamp token over the hash of entry ``seq`` (the head when anchored)."""

    id: str
    seq: int
    head_hash: str
    tsa_url: str | None
    token_der: bytes
    gen_time: datetime
    created_at: datetime


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"audit details cannot hold a {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """The one spelling of a JSON value: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def entry_hash(
    seq: int,
    logged_at: str,
    actor: str,
    action: str,
    objects_json: str,
    details_json: str,
    prev_hash: str,
) -> str:
    """SHA-256 hex over the canonical encoding of one entry (documented in docs/audit.md).

    The encoding is the canonical JSON of an object with the keys ``v`` (1), ``seq``,
    ``logged_at``, ``actor``, ``action``, ``objects``, ``details`` (the stored texts) and
    ``prev_hash``, encoded as UTF-8.
    """
    encoded = canonical_json(
        {
            "v": ENCODING_VERSION,
            "seq": seq,
            "logged_at": logged_at,
            "actor": actor,
            "action": action,
            "objects": objects_json,
            "details": details_json,
            "prev_hash": prev_hash,
        }
    ).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


_INSERT = (
    "INSERT INTO audit_log (seq, logged_at, actor, action, objects, details, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = "SELECT seq, logged_at, actor, action, objects, details, prev_hash, hash FROM audit_log"


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row[0]),
        logged_at=str(row[1]),
        actor=str(row[2]),
        action=str(row[3]),
        objects_json=str(row[4]),
        details_json=str(row[5]),
        prev_hash=str(row[6]),
        hash=str(row[7]),
    )


def _anchor(row: Any) -> Anchor:
    return Anchor(
        id=str(row[0]),
        seq=int(row[1]),
        head_hash=str(row[2]),
        tsa_url=None if row[3] is None else str(row[3]),
        token_der=base64.b64decode(row[4]),
        gen_time=from_db_time(str(row[5])),
        created_at=from_db_time(str(row[6])),
    )


class AuditRepo:
    """Reads and appends the audit log through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def append(
        self,
        actor: str,
        action: str,
        objects: Iterable[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry in this (write) transaction and return it.

        It commits or rolls back with the rest of the transaction: an action that did not
        happen leaves no entry, and an entry is never missing for one that did.
        """
        if not self.tx.writable:
            raise AuditError("audit entries are appended inside a write transaction only")
        if not actor or not action:
            raise AuditError("an audit entry needs an actor and an action")
        # One appender at a time up to COMMIT: every entry links to the one committed before it
        # (several nodes on PostgreSQL; SQLite's single writer does it already).
        await self.tx.serialize("lienthong:audit-chain")
        head = await self.head()
        seq = 1 if head is None else head[0] + 1
        prev_hash = GENESIS_HASH if head is None else head[1]
        logged_at = to_db_time(utcnow())
        objects_json = canonical_json([str(o) for o in objects])
        details_json = canonical_json(dict(details or {}))
        digest = entry_hash(seq, logged_at, actor, action, objects_json, details_json, prev_hash)
        await self.tx.execute(
            _INSERT,
            (seq, logged_at, actor, action, objects_json, details_json, prev_hash, digest),
        )
        return AuditEntry(
            seq, logged_at, actor, action, objects_json, details_json, prev_hash, digest
        )

    async def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the last entry, or None for an empty log."""
        row = await self.tx.fetchone("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return None if row is None else (int(row[0]), str(row[1]))

    async def page(self, after: int | None, limit: int) -> list[AuditEntry]:
        """Entries with ``seq > after``, oldest first, at most ``limit`` (>= 1)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        rows = await self.tx.fetchall(
            _SELECT + " WHERE seq > ? ORDER BY seq LIMIT ?",
            (-1 if after is None else after, limit),
        )
        return [_entry(r) for r in rows]

    async def for_object(self, object_id: str) -> list[AuditEntry]:
        """Entries whose objects name ``object_id`` (a document's trail), oldest first."""
        pattern = "%" + canonical_json(str(object_id)) + "%"
        rows = await self.tx.fetchall(_SELECT + " WHERE objects LIKE ? ORDER BY seq", (pattern,))
        return [e for e in map(_entry, rows) if str(object_id) in e.objects]

    async def get(self, seq: int) -> AuditEntry | None:
        """The entry stored at ``seq``, or None."""
        row = await self.tx.fetchone(_SELECT + " WHERE seq = ? LIMIT 1", (seq,))
        return None if row is None else _entry(row)

    async def find_hash(self, digest: str) -> int | None:
        """The seq of the entry whose stored hash is ``digest``, or None."""
        row = await self.tx.fetchone("SELECT seq FROM audit_log WHERE hash = ? LIMIT 1", (digest,))
        return None if row is None else int(row[0])

    async def add_anchor(
        self, seq: int, head_hash: str, token_der: bytes, gen_time: datetime, tsa_url: str | None
    ) -> Anchor:
        """Store a timestamp token over the hash of entry ``seq``."""
        anchor = Anchor(new_id(), seq, head_hash, tsa_url, token_der, gen_time, utcnow())
        await self.tx.execute(
            "INSERT INTO audit_anchors (id, seq, head_hash, tsa_url, token, gen_time, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                anchor.id,
                seq,
                head_hash,
                tsa_url,
                base64.b64encode(token_der).decode("ascii"),
                to_db_time(gen_time),
                to_db_time(anchor.created_at),
            ),
        )
        return anchor

    async def anchors(self) -> list[Anchor]:
        """Every anchor, oldest (lowest seq) first."""
        rows = await self.tx.fetchall(
            "SELECT id, seq, head_hash, tsa_url, token, gen_time, created_at"
            " FROM audit_anchors ORDER BY seq, created_at"
        )
        return [_anchor(r) for r in rows]

    async def latest_anchor(self) -> Anchor | None:
        """The anchor of the highest seq, or None."""
        rows = await self.tx.fetchall(
            "SELECT id, seq, head_hash, tsa_url, token, gen_time, created_at"
            " FROM audit_anchors ORDER BY seq DESC, created_at DESC LIMIT 1"
        )
        return _anchor(rows[0]) if rows else None


async def append(
    tx: Tx,
    actor: str,
    action: str,
    objects: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log inside the write transaction ``tx`` (see AuditRepo)."""
    return await AuditRepo(tx).append(actor, action, objects, details)


# --- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainProblem:
    """One thing wrong with the chain, naming the entry: ``kind`` is one of ``edited``,
    ``moved``, ``deleted``, ``rewritten``, ``truncated``, ``anchor``."""

    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


@dataclass
class ChainReport:
    """The outcome of checking the chain: the entries seen and every problem found."""

    entries: int = 0
    first_seq: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    anchors_checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


class ChainVerifier:
    """Checks entries fed in ``seq`` order; call :meth:`finish` to resolve and sort problems.

    Memory stays small for any log length: only the previous entry and the entries whose own
    hash failed ("suspects") are kept.
    """

    def __init__(self) -> None:
        self.report = ChainReport()
        self._prev: AuditEntry | None = None
        self._prev_suspect = False
        self._suspects: list[AuditEntry] = []
        self._links: list[tuple[AuditEntry, AuditEntry]] = []

    def feed(self, entry: AuditEntry) -> None:
        """Check one entry against itself and against the entry before it."""
        report = self.report
        prev = self._prev
        report.entries += 1
        if report.first_seq is None:
            report.first_seq = entry.seq
        expected_seq = 1 if prev is None else prev.seq + 1
        gap = entry.seq > expected_seq
        if gap:
            missing = (
                f"entry {expected_seq} is missing"
                if entry.seq - expected_seq == 1
                else f"entries {expected_seq} to {entry.seq - 1} are missing"
            )
            report.problems.append(
                ChainProblem(expected_seq, "deleted", f"{missing} (deleted from the log)")
            )
        suspect = entry.computed_hash() != entry.hash
        if suspect:
            self._suspects.append(entry)
        if prev is None and entry.seq == 1 and entry.prev_hash != GENESIS_HASH and not suspect:
            report.problems.append(
                ChainProblem(1, "rewritten", "the first entry does not start the chain")
            )
        if prev is not None and not gap and entry.prev_hash != prev.hash:
            if not suspect and not self._prev_suspect:
                self._links.append((prev, entry))
        self._prev = entry
        self._prev_suspect = suspect
        report.head_seq = entry.seq
        report.head_hash = entry.hash

    def finish(self) -> ChainReport:
        """Name what each suspect is (moved or edited) and return the sorted report."""
        report = self.report
        lo = report.first_seq or 1
        hi = report.head_seq or 0
        for n, entry in enumerate(self._suspects):
            origin = self._origin(entry, lo, hi) if n < _MAX_RESOLVED_SUSPECTS else None
            if origin is not None:
                report.problems.append(
                    ChainProblem(
                        entry.seq,
                        "moved",
                        f"the entry stored at seq {entry.seq} is entry {origin} "
                        f"({entry.action} by {entry.actor}) moved out of place: the log was "
                        "reordered",
                    )
                )
            else:
                report.problems.append(
                    ChainProblem(
                        entry.seq,
                        "edited",
                        f"the entry ({entry.action} by {entry.actor}) was edited: its content "
                        "no longer matches its hash",
                    )
                )
        for prev, entry in self._links:
            report.problems.append(
                ChainProblem(
                    prev.seq,
                    "rewritten",
                    f"entry {prev.seq} was rewritten with a recomputed hash (or replaced): "
                    f"entry {entry.seq} does not link to it",
                )
            )
        report.problems.sort(key=lambda p: (p.seq, p.kind))
        return report

    @staticmethod
    def _origin(entry: AuditEntry, lo: int, hi: int) -> int | None:
        """The seq at which the entry's own hash holds, searched near where it is stored."""
        for distance in range(1, min(_MOVE_SEARCH, max(hi - lo, 1)) + 1):
            for candidate in (entry.seq - distance, entry.seq + distance):
                if candidate >= 1 and entry.computed_hash(candidate) == entry.hash:
                    return candidate
        return None


def check_anchors(
    report: ChainReport, anchors: Sequence[Anchor], hashes: Mapping[int, str | None]
) -> None:
    """Compare each anchor's certified head hash with the stored hash of its entry.

    ``hashes`` maps each anchor's seq to the hash stored at that seq (None when no entry is
    there). A mismatch means entries up to that seq were rewritten; a missing entry past the
    end of the log means the log was truncated. The timestamp tokens themselves are checked by
    the caller (they need the TSA's trust roots).
    """
    previous_good = 0
    for anchor in anchors:
        report.anchors_checked += 1
        stored = hashes.get(anchor.seq)
        when = anchor.gen_time.isoformat()
        if stored is None:
            if report.head_seq is None or anchor.seq > report.head_seq:
                report.problems.append(
                    ChainProblem(
                        anchor.seq,
                        "truncated",
                        f"the anchor of {when} certifies entries up to {anchor.seq}, but the "
                        f"log ends at {report.head_seq or 0}: the entries after it were deleted",
                    )
                )
            # else: a deleted entry inside the log, already named by the chain check
        elif stored != anchor.head_hash:
            report.problems.append(
                ChainProblem(
                    anchor.seq,
                    "anchor",
                    f"entry {anchor.seq} is not the entry timestamped at {when}: entries "
                    f"between {previous_good + 1} and {anchor.seq} were rewritten",
                )
            )
        else:
            previous_good = anchor.seq
    report.problems.sort(key=lambda p: (p.seq, p.kind))


async def verify_log(tx: Tx) -> tuple[ChainReport, list[Anchor]]:
    """Check the whole chain and its anchors' head hashes; return the report and the anchors
    (whose timestamp tokens the caller verifies). Reads in pages of a few thousand entries."""
    verifier = ChainVerifier()
    repo = AuditRepo(tx)
    after: int | None = None
    while True:
        entries = await repo.page(after, _PAGE)
        if not entries:
            break
        for entry in entries:
            verifier.feed(entry)
        after = entries[-1].seq
    report = verifier.finish()
    anchors = await repo.anchors()
    hashes: dict[int, str | None] = {}
    for anchor in anchors:
        if anchor.seq not in hashes:
            stored = await repo.get(anchor.seq)
            hashes[anchor.seq] = None if stored is None else stored.hash
    check_anchors(report, anchors, hashes)
    return report, anchors
