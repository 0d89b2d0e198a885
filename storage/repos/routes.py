"""Routes out of this axis: agencies' webhooks, links to other axes, and the push queue.

The push queue is the ``deliveries`` table itself (migration 0004): a delivery to push has
``next_attempt_at`` set; a worker *leases* due deliveries inside a write transaction
(``BEGIN IMMEDIATE`` serialises writers across processes too), so one delivery is never sent by
two workers at once while its lease runs. A lease that expires (its worker died) makes the
delivery due again: at least once on the wire; the receiving side de-duplicates.

Webhook secrets and axis-link tokens are kept sealed (migration 0007): the repository seals on
write and opens on read through a :class:`SecretCipher` the server gives it (storage holds no
key). The associated data binds each ciphertext to its row and purpose.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.db import Tx
from storage.dialects import skip_locked
from storage.ids import from_db_time, from_db_time_opt, to_db_time, utcnow
from storage.repos import sealed
from storage.repos.sealed import SealedColumn
from storage.repos.sealed import SecretCipher as SecretCipher  # where callers import it

PUSH_STATES: frozenset[str] = frozenset({"new", "acked", "dead"})


def _webhook_aad(organ_id: str) -> bytes:
    return f"lienthong-webhook-secret\x00{organ_id}".encode()


def _link_aad(organ_id: str) -> bytes:
    return f"lienthong-axis-link-token\x00{organ_id}".encode()


# The sealed columns of this module (migration 0007), for re-sealing and the start-up sealing.
ROUTE_SECRETS = (
    SealedColumn("webhooks", "organ_id", "secret", "sealed", _webhook_aad),
    SealedColumn("axis_links", "organ_id", "token", "sealed", _link_aad),
)


@dataclass(frozen=True)
class Webhook:
    """Where an agency wants its packages pushed, and the HMAC secret of the requests."""

    organ_id: str
    url: str
    secret: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AxisLink:
    """Another axis (child or peer): its id here, its URL, our token there, what it hosts."""

    organ_id: str
    url: str
    token: str
    hosts: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PushItem:
    """A leased delivery with what the worker needs to send it."""

    delivery_id: str
    package_id: str
    recipient: str
    kind: str
    attempts: int
    created_at: datetime
    push_since: datetime
    sender: str
    document_id: str
    sha256: str
    size: int
    meta_json: str


@dataclass(frozen=True)
class PushRow:
    """One delivery as the admin lists it (``lienthong deliveries list``)."""

    delivery_id: str
    package_id: str
    sender: str
    recipient: str
    kind: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    acked_at: datetime | None
    pushed_at: datetime | None


class RouteRepo:
    """Webhooks and axis links, through a Tx; ``cipher`` seals and opens their secrets."""

    def __init__(self, tx: Tx, cipher: SecretCipher) -> None:
        self.tx = tx
        self.cipher = cipher

    def _open(self, row: sqlite3.Row, column: str, aad: bytes) -> str:
        # sealed = 0: a row written before migration 0007, not yet sealed at start-up.
        return self.cipher.open(row[column], aad) if row["sealed"] else str(row[column])

    def _webhook(self, row: sqlite3.Row) -> Webhook:
        return Webhook(
            row["organ_id"],
            row["url"],
            self._open(row, "secret", _webhook_aad(row["organ_id"])),
            from_db_time(row["created_at"]),
            from_db_time(row["updated_at"]),
        )

    def _link(self, row: sqlite3.Row) -> AxisLink:
        return AxisLink(
            row["organ_id"],
            row["url"],
            self._open(row, "token", _link_aad(row["organ_id"])),
            tuple(row["hosts"].split()),
            from_db_time(row["created_at"]),
            from_db_time(row["updated_at"]),
        )

    async def set_webhook(self, organ_id: str, url: str, secret: str) -> Webhook:
        """Register (or replace) the agency's webhook, its secret sealed. MissingReference if
        the agency is unknown."""
        now = to_db_time(utcnow())
        stored = self.cipher.seal(secret, _webhook_aad(organ_id))
        changed = await self.tx.execute(
            "UPDATE webhooks SET url = ?, secret = ?, sealed = 1, updated_at = ?"
            " WHERE organ_id = ?",
            (url, stored, now, organ_id),
        )
        if not changed:
            await self.tx.execute(
                "INSERT INTO webhooks (organ_id, url, secret, sealed, created_at, updated_at)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                (organ_id, url, stored, now, now),
            )
        hook = await self.webhook(organ_id)
        assert hook is not None
        return hook

    async def webhook(self, organ_id: str) -> Webhook | None:
        """The agency's webhook, or None (it pulls from its inbox)."""
        row = await self.tx.fetchone(
            "SELECT organ_id, url, secret, sealed, created_at, updated_at FROM webhooks"
            " WHERE organ_id = ?",
            (organ_id,),
        )
        return None if row is None else self._webhook(row)

    async def webhooks(self) -> list[Webhook]:
        """Every registered webhook, by organ id."""
        rows = await self.tx.fetchall(
            "SELECT organ_id, url, secret, sealed, created_at, updated_at FROM webhooks"
            " ORDER BY organ_id"
        )
        return [self._webhook(r) for r in rows]

    async def remove_webhook(self, organ_id: str) -> bool:
        """Forget the agency's webhook; True if there was one."""
        return await self.tx.execute("DELETE FROM webhooks WHERE organ_id = ?", (organ_id,)) > 0

    async def set_link(self, organ_id: str, url: str, token: str, hosts: Iterable[str]) -> AxisLink:
        """Register (or replace) a link to another axis, our token there sealed.
        MissingReference if ``organ_id`` (the other axis's account here) is not an agency."""
        now = to_db_time(utcnow())
        text = " ".join(hosts)
        stored = self.cipher.seal(token, _link_aad(organ_id))
        changed = await self.tx.execute(
            "UPDATE axis_links SET url = ?, token = ?, sealed = 1, hosts = ?, updated_at = ?"
            " WHERE organ_id = ?",
            (url, stored, text, now, organ_id),
        )
        if not changed:
            await self.tx.execute(
                "INSERT INTO axis_links"
                " (organ_id, url, token, sealed, hosts, created_at, updated_at)"
                " VALUES (?, ?, ?, 1, ?, ?, ?)",
                (organ_id, url, stored, text, now, now),
            )
        link = await self.link(organ_id)
        assert link is not None
        return link

    async def link(self, organ_id: str) -> AxisLink | None:
        """The link whose account is ``organ_id``, or None."""
        row = await self.tx.fetchone(
            "SELECT organ_id, url, token, sealed, hosts, created_at, updated_at FROM axis_links"
            " WHERE organ_id = ?",
            (organ_id,),
        )
        return None if row is None else self._link(row)

    async def links(self) -> list[AxisLink]:
        """Every link to another axis, by organ id."""
        rows = await self.tx.fetchall(
            "SELECT organ_id, url, token, sealed, hosts, created_at, updated_at FROM axis_links"
            " ORDER BY organ_id"
        )
        return [self._link(r) for r in rows]

    async def remove_link(self, organ_id: str) -> bool:
        """Forget a link; True if there was one."""
        return await self.tx.execute("DELETE FROM axis_links WHERE organ_id = ?", (organ_id,)) > 0

    async def reseal(self, new: SecretCipher) -> int:
        """Open every sealed webhook secret and axis-link token with this repository's cipher
        and store it sealed by ``new`` instead (secrets key rotation); return how many rows.
        Raises what the cipher raises when a row does not open: run it in a transaction so a
        failure changes nothing. Rows not yet sealed (``sealed = 0``) are left to
        :meth:`seal_plaintext`."""
        return await sealed.reseal(self.tx, ROUTE_SECRETS, self.cipher, new)

    async def seal_plaintext(self) -> int:
        """Seal the secrets of rows written before migration 0007 (``sealed = 0``); return
        how many rows were sealed (see :func:`storage.repos.sealed.seal_plaintext`)."""
        return await sealed.seal_plaintext(self.tx, ROUTE_SECRETS, self.cipher)


_PUSH_SELECT = (
    "SELECT dl.id, dl.document_id, dl.recipient, dl.kind, dl.state, dl.attempts,"
    " COALESCE(dl.push_since, dl.created_at) AS push_since, dl.next_attempt_at,"
    " dl.last_error, dl.created_at, dl.acked_at, dl.pushed_at,"
    " d.sender, d.document_id AS doc_key, d.sha256, d.size, d.meta_json"
    " FROM deliveries dl JOIN documents d ON d.id = dl.document_id"
)
# The push worker's two polls, both on the index deliveries_due (migration 0045): a seek, never
# a walk over the pull inboxes' undelivered rows (tests/unit/storage/test_storage_push_plans.py).
DUE_PUSHES = (
    _PUSH_SELECT + " WHERE dl.state = 'new' AND dl.next_attempt_at IS NOT NULL"
    " AND dl.next_attempt_at <= ? AND (dl.lease_until IS NULL OR dl.lease_until <= ?)"
    " ORDER BY dl.next_attempt_at, dl.id LIMIT ?"
)
OLDEST_DUE = (
    "SELECT MIN(next_attempt_at) AS due FROM deliveries"
    " WHERE state = 'new' AND next_attempt_at IS NOT NULL"
)


class PushRepo:
    """The push queue: scheduling, leasing and settling deliveries, through a Tx."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def schedule(self, delivery_id: str, at: datetime) -> None:
        """Make a 'new' delivery due for pushing at ``at``."""
        await self.tx.execute(
            "UPDATE deliveries SET next_attempt_at = ?, push_since = COALESCE(push_since, ?)"
            " WHERE id = ? AND state = 'new'",
            (to_db_time(at), to_db_time(at), delivery_id),
        )

    async def schedule_recipient(self, recipient: str, at: datetime) -> int:
        """Make every waiting delivery of ``recipient`` due (it just got a push route)."""
        return await self.tx.execute(
            "UPDATE deliveries SET next_attempt_at = ?, push_since = COALESCE(push_since, ?)"
            " WHERE recipient = ? AND state = 'new' AND next_attempt_at IS NULL",
            (to_db_time(at), to_db_time(at), recipient),
        )

    async def unschedule_recipient(self, recipient: str) -> int:
        """Stop pushing ``recipient``'s waiting deliveries (it pulls again)."""
        return await self.tx.execute(
            "UPDATE deliveries SET next_attempt_at = NULL WHERE recipient = ? AND state = 'new'",
            (recipient,),
        )

    async def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[PushItem]:
        """Lease up to ``limit`` due deliveries to ``owner`` until ``lease_until``.

        Call inside ``Database.transaction()``: the write lock makes select-and-lease atomic,
        between processes too (on PostgreSQL the rows are locked FOR UPDATE and those another
        node is leasing skipped). A delivery whose lease has run out is due again.
        """
        stamp = to_db_time(now)
        rows = await self.tx.fetchall(
            DUE_PUSHES + skip_locked(self.tx.dialect, "dl"), (stamp, stamp, limit)
        )
        items = []
        for row in rows:
            changed = await self.tx.execute(
                "UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE id = ?"
                " AND (lease_until IS NULL OR lease_until <= ?)",
                (owner, to_db_time(lease_until), row["id"], stamp),
            )
            if changed:
                items.append(
                    PushItem(
                        delivery_id=row["id"],
                        package_id=row["document_id"],
                        recipient=row["recipient"],
                        kind=row["kind"],
                        attempts=int(row["attempts"]),
                        created_at=from_db_time(row["created_at"]),
                        push_since=from_db_time(row["push_since"]),
                        sender=row["sender"],
                        document_id=row["doc_key"],
                        sha256=row["sha256"],
                        size=int(row["size"]),
                        meta_json=row["meta_json"],
                    )
                )
        return items

    async def release(self, delivery_id: str, owner: str) -> bool:
        """Stop pushing a leased delivery (its recipient pulls it now)."""
        return (
            await self.tx.execute(
                "UPDATE deliveries SET next_attempt_at = NULL, lease_owner = NULL,"
                " lease_until = NULL WHERE id = ? AND lease_owner = ? AND state = 'new'",
                (delivery_id, owner),
            )
            > 0
        )

    async def succeed(self, delivery_id: str, owner: str, now: datetime) -> bool:
        """The push was answered 2xx: the delivery is acknowledged (pushed_at set). False if
        ``owner`` no longer holds the lease (another worker took it over)."""
        stamp = to_db_time(now)
        return (
            await self.tx.execute(
                "UPDATE deliveries SET state = 'acked', acked_at = COALESCE(acked_at, ?),"
                " pushed_at = ?, attempts = attempts + 1, last_error = NULL,"
                " next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND lease_owner = ? AND state = 'new'",
                (stamp, stamp, delivery_id, owner),
            )
            > 0
        )

    async def retry_later(self, delivery_id: str, owner: str, at: datetime, error: str) -> bool:
        """The push failed; try again at ``at``. False if the lease was lost."""
        return (
            await self.tx.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = ?, lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND lease_owner = ? AND state = 'new'",
                (error[:500], to_db_time(at), delivery_id, owner),
            )
            > 0
        )

    async def bury(self, delivery_id: str, owner: str, error: str) -> bool:
        """Give up: move the delivery to the dead-letter state 'dead'."""
        return (
            await self.tx.execute(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND lease_owner = ? AND state = 'new'",
                (error[:500], delivery_id, owner),
            )
            > 0
        )

    async def revive(self, delivery_ids: Iterable[str] | None, now: datetime) -> int:
        """Put dead deliveries back in the queue (all of them when ``delivery_ids`` is None),
        due now with a fresh attempt count; return how many."""
        stamp = to_db_time(now)
        sql = (
            "UPDATE deliveries SET state = 'new', attempts = 0, next_attempt_at = ?,"
            " push_since = ?, lease_owner = NULL, lease_until = NULL WHERE state = 'dead'"
        )
        if delivery_ids is None:
            return await self.tx.execute(sql, (stamp, stamp))
        total = 0
        for delivery_id in delivery_ids:
            total += await self.tx.execute(sql + " AND id = ?", (stamp, stamp, delivery_id))
        return total

    async def list(
        self,
        *,
        state: str | None = None,
        recipient: str | None = None,
        sender: str | None = None,
        pushed_only: bool = False,
        after: str | None = None,
        limit: int = 100,
    ) -> list[PushRow]:
        """Deliveries for the admin, oldest first, filtered by state/recipient/sender."""
        if state is not None and state not in PUSH_STATES:
            raise ValueError(f"unknown delivery state {state!r}")
        sql = _PUSH_SELECT + " WHERE 1 = 1"
        params: list[object] = []
        filters = (("dl.state", state), ("dl.recipient", recipient), ("d.sender", sender))
        for column, value in filters:
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        if pushed_only:
            sql += " AND (dl.next_attempt_at IS NOT NULL OR dl.pushed_at IS NOT NULL"
            sql += " OR dl.state = 'dead')"
        if after is not None:
            sql += " AND dl.id > ?"
            params.append(after)
        sql += " ORDER BY dl.id LIMIT ?"
        params.append(limit)
        rows = await self.tx.fetchall(sql, params)
        return [
            PushRow(
                delivery_id=r["id"],
                package_id=r["document_id"],
                sender=r["sender"],
                recipient=r["recipient"],
                kind=r["kind"],
                state=r["state"],
                attempts=int(r["attempts"]),
                next_attempt_at=from_db_time_opt(r["next_attempt_at"]),
                last_error=r["last_error"],
                created_at=from_db_time(r["created_at"]),
                acked_at=from_db_time_opt(r["acked_at"]),
                pushed_at=from_db_time_opt(r["pushed_at"]),
            )
            for r in rows
        ]

    async def oldest_due(self) -> datetime | None:
        """When the earliest scheduled push is due (for the worker's sleep), or None."""
        row = await self.tx.fetchone(OLDEST_DUE)
        return None if row is None else from_db_time_opt(row["due"])


class StatusReceiptRepo:
    """Which status packages were already accepted (an axis may forward one twice)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    async def find(self, sender: str, dedup_key: str) -> str | None:
        """The package id of the status accepted under this key, or None."""
        row = await self.tx.fetchone(
            "SELECT package_id FROM status_receipts WHERE sender = ? AND dedup_key = ?",
            (sender, dedup_key),
        )
        return None if row is None else str(row["package_id"])

    async def record(self, sender: str, dedup_key: str, package_id: str) -> None:
        """Remember an accepted status package; Conflict if the key was used."""
        await self.tx.execute(
            "INSERT INTO status_receipts (sender, dedup_key, package_id) VALUES (?, ?, ?)",
            (sender, dedup_key, package_id),
        )
