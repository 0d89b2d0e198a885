"""Errors raised by storage/: one base class, a few kinds the callers map to answers.

The HTTP layer maps them in one place: NotFound -> 404, Conflict -> 409, StorageFull -> 503 with
Retry-After, any other StorageError -> 500/503.
"""


class StorageError(Exception):
    """Base class of every error raised by the metadata and object stores."""


class NotFound(StorageError):
    """The row or object asked for does not exist."""


class MissingReference(NotFound):
    """A write refers to a row that does not exist (a foreign key was violated)."""


class Conflict(StorageError):
    """A write would break a uniqueness rule (the row already exists)."""


class StorageFull(StorageError):
    """The disk (or quota) is full: nothing was stored; the caller may retry later."""


class StorageUnavailable(StorageError):
    """The store cannot be reached right now (S3 down, network): retry later, nothing stored."""


class IntegrityError(StorageError):
    """Stored bytes no longer match their SHA-256: the object is corrupt or was replaced."""


class ObjectMissing(NotFound):
    """A row names an object the store does not serve (absent, or hidden by a delete marker
    with no version of ours to read): the axis lost or was robbed of bytes it stored. A
    NotFound for the store's callers, a 503 (not a 404) for an HTTP client."""
