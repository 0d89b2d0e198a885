"""Secrets kept sealed in rows: the columns that hold them, re-sealing them under a new key and
sealing the rows written in plain text before a column was sealed.

Storage holds no key: the server gives a :class:`SecretCipher` (its AES-GCM box,
server.runtime.secretbox). Each column has a flag column (1: the value is sealed; 0: plain text
from before the migration that sealed it) and the associated data that binds a ciphertext to
its row and purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from storage.db import Tx


class SecretCipher(Protocol):
    """Seals and opens secrets kept in rows (the server's AES-GCM box, server.runtime.secretbox)."""

    def seal(self, secret: str, aad: bytes) -> str:
        """The stored form of ``secret``, bound to ``aad``."""
        ...

    def open(self, stored: str, aad: bytes) -> str:
        """The secret sealed in ``stored`` for ``aad``; raises if it does not open."""
        ...


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed secrets: ``table.column``, the row's key column, the flag column, and
    the associated data of a row (from its key). Names are fixed in code, never input."""

    table: str
    key: str
    column: str
    flag: str
    aad: Callable[[str], bytes]


async def reseal(
    tx: Tx, columns: Sequence[SealedColumn], old: SecretCipher, new: SecretCipher
) -> int:
    """Open every sealed value of ``columns`` with ``old`` and store it sealed by ``new``
    (secrets key rotation); return how many rows. Raises what ``old`` raises when a value does
    not open: run it in a transaction so a failure changes nothing. Plain rows are left to
    :func:`seal_plaintext`."""
    count = 0
    for c in columns:
        rows = await tx.fetchall(
            f"SELECT {c.key} AS k, {c.column} AS stored FROM {c.table} WHERE {c.flag} = 1"  # noqa: S608
        )
        for r in rows:
            plain = old.open(r["stored"], c.aad(r["k"]))
            count += await tx.execute(
                f"UPDATE {c.table} SET {c.column} = ? WHERE {c.key} = ? AND {c.flag} = 1",  # noqa: S608
                (new.seal(plain, c.aad(r["k"])), r["k"]),
            )
    return count


async def open_all(tx: Tx, columns: Sequence[SealedColumn], cipher: SecretCipher) -> int:
    """Open every sealed value of ``columns`` (raises as ``cipher`` does when one does not);
    return how many opened."""
    count = 0
    for c in columns:
        for r in await tx.fetchall(
            f"SELECT {c.key} AS k, {c.column} AS stored FROM {c.table} WHERE {c.flag} = 1"  # noqa: S608
        ):
            cipher.open(r["stored"], c.aad(r["k"]))
            count += 1
    return count


async def seal_plaintext(tx: Tx, columns: Sequence[SealedColumn], cipher: SecretCipher) -> int:
    """Seal the values of rows still in plain text (flag 0); return how many rows were sealed.
    ``secure_delete`` is on while they are rewritten, so SQLite zeroes the plaintext it frees
    instead of leaving it in the file's free space."""
    plain = [
        (c, r["k"], r["plain"])
        for c in columns
        for r in await tx.fetchall(
            f"SELECT {c.key} AS k, {c.column} AS plain FROM {c.table} WHERE {c.flag} = 0"  # noqa: S608
        )
    ]
    if not plain:
        return 0
    before = await tx.fetchone("PRAGMA secure_delete")
    await tx.fetchall("PRAGMA secure_delete = ON")
    try:
        for c, key, secret in plain:
            await tx.execute(
                f"UPDATE {c.table} SET {c.column} = ?, {c.flag} = 1"  # noqa: S608 (fixed names)
                f" WHERE {c.key} = ? AND {c.flag} = 0",
                (cipher.seal(str(secret), c.aad(key)), key),
            )
    finally:
        # Back to the connection's setting (some SQLite builds have it on by default).
        previous = 1 if before is None else int(before[0])
        await tx.fetchall(f"PRAGMA secure_delete = {previous}")
    return len(plain)
