"""Token buckets per key (a client address), in process: a small rate limit without a store.

Each key has a bucket of ``burst`` tokens that refills at ``per_minute`` tokens a minute; a
request takes one token or is refused with the seconds until one is back. Times are passed in
(``time.monotonic()`` by default), so the arithmetic is tested without waiting. Buckets live in
this process only: with ``serve --workers N`` every worker keeps its own (docs/dossiers.md,
"Public lookup"). At most ``max_keys`` buckets are kept; past that, the full ones (whose key has
been quiet long enough to refill) are forgotten first, then the oldest.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """``take(key)``: 0 when a token was taken, else the whole seconds to wait for one."""

    def __init__(self, per_minute: float, burst: float | None = None, max_keys: int = 10_000):
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0  # tokens a second
        self.burst = max(1.0, float(per_minute if burst is None else burst))
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> int:
        """Take a token for ``key``: 0 if there was one, else the seconds until there is."""
        moment = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(moment)
            bucket = self._buckets[key] = _Bucket(self.burst, moment)
        else:
            elapsed = max(0.0, moment - bucket.at)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.at = moment
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def __len__(self) -> int:
        return len(self._buckets)

    def _make_room(self, moment: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if moment - b.at >= full_after]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:  # dicts keep insertion order: oldest first
            del self._buckets[next(iter(self._buckets))]


class SharedBudget:
    """A budget of ``per_minute`` requests per key (a client address, an app's API key),
    divided among the ``workers`` server processes of ``serve --workers N``: each process keeps
    its own share in :class:`TokenBuckets`, in bursts of as many."""

    def __init__(self, per_minute: int, workers: int = 1) -> None:
        self.per_minute = per_minute
        self.workers = max(1, workers)
        share = max(1.0, per_minute / self.workers)
        self.buckets = TokenBuckets(share, burst=share)

    def wait(self, key: str, now: float | None = None) -> int:
        """Take one request of ``key``'s budget: 0, else the whole seconds to wait."""
        return self.buckets.take(key, now)
