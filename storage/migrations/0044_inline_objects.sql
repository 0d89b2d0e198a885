-- Small objects kept in the database (issue 21, storage/objects/inline.py): a package under
-- [storage] inline_max_bytes is written in the same transaction as the row that names it, so
-- the one group-committed WAL fsync makes both durable. Keyed by the SHA-256 of the bytes like
-- every object; never changed once written (a second put of the same bytes writes nothing).
-- Portable: BLOB maps to BYTEA on PostgreSQL.
CREATE TABLE inline_objects (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL
);
