"""Problem types (RFC 9457) and the base of every refusal a domain of the axis raises.

A domain says *what* went wrong in its own words: each of its error classes names a
:class:`ProblemType` (slug, HTTP status, title, description) as its ``problem``. The HTTP layer
(``server/http/errors.py``) turns any :class:`DomainError` into a problem+json answer from that
alone, without importing the domain. A domain defines its problem types beside its errors with
:func:`problem_type`; the types several domains share are here.

The slugs are a stable part of the API (docs/api.md lists them): never rename one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

PROBLEM_PATH = "/problems/"


@dataclass(frozen=True)
class ProblemType:
    """One kind of error answer: its slug (the stable part of ``type``), status and title.

    ``retry``: the failure is the axis's, temporary (a ``Retry-After`` header goes with it).
    """

    slug: str
    status: int
    title: str
    description: str
    retry: bool = False

    @property
    def uri(self) -> str:
        """The ``type`` member of the problem document."""
        return PROBLEM_PATH + self.slug


_REGISTRY: dict[str, ProblemType] = {}

# Every problem type defined so far, by slug (read-only). The app imports every domain before it
# serves a request, so by then it holds them all.
PROBLEM_TYPES: Mapping[str, ProblemType] = MappingProxyType(_REGISTRY)


def problem_type(
    slug: str, status: int, title: str, description: str, *, retry: bool = False
) -> ProblemType:
    """Define (and register) a problem type; a slug can be defined once only."""
    ptype = ProblemType(slug, status, title, description, retry)
    known = _REGISTRY.setdefault(slug, ptype)
    if known != ptype:
        raise ValueError(f"problem type {slug} is defined twice, differently")
    return ptype


class DomainError(Exception):
    """Base of every refusal raised by a domain of the axis.

    ``detail`` is one sentence in plain words about *this* request; ``extra`` holds members
    added to the problem document (``unknown``, ``problems``...); ``headers`` HTTP headers the
    answer carries (``Retry-After``...).
    """

    problem: ClassVar[ProblemType]

    def __init__(
        self, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


# --- the types several domains share ------------------------------------------------------

BAD_REQUEST = problem_type("bad-request", 400, "Bad request", "The request itself is unusable.")
UNAUTHORIZED = problem_type(
    "unauthorized",
    401,
    "Authentication required",
    "No valid bearer token: send `Authorization: Bearer <token>`.",
)
NOT_FOUND = problem_type(
    "not-found",
    404,
    "Not found",
    "No such resource, or it belongs to other agencies (the two are not told apart).",
)
UNSUPPORTED_MEDIA_TYPE = problem_type(
    "unsupported-media-type",
    415,
    "Unsupported content type",
    "Send the package as application/xml, text/xml or application/octet-stream.",
)
STORAGE_FULL = problem_type(
    "storage-full",
    503,
    "Storage full",
    "The axis is out of disk space; nothing was stored. Retry later.",
    retry=True,
)
OBJECT_UNAVAILABLE = problem_type(
    "object-unavailable",
    503,
    "Stored object unavailable",
    "The bytes of this resource are missing from the object store, or no stored version of "
    "them matches their SHA-256; nothing is served. The operators are alerted.",
)
STORAGE_UNAVAILABLE = problem_type(
    "storage-unavailable",
    503,
    "Storage unavailable",
    "The database or object store failed; nothing was stored. Retry later.",
    retry=True,
)
