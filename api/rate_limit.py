"""Write endpoints are rate-limited per API key: a token bucket each, refused with 429.

A bucket holds ``burst`` tokens and refills at ``rate_per_s``; each write takes one. A dashboard
user clicking never empties it; a script firing 1,000 fault injections in 4 s gets about
``burst + 4 × rate`` through and the rest refused with ``Retry-After`` (whole seconds until a
token is back). Keys are kept as a digest, never as the secret itself.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class WriteLimiter:
    """Token buckets by key; :meth:`take` is thread-safe."""

    def __init__(
        self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Take a token for ``key``: ``None`` if there was one, else seconds until there is."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(digest)
            if bucket is None:
                bucket = self._buckets[digest] = _Bucket(float(self.burst), now)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s
            )
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate_per_s


def retry_after(wait_s: float) -> str:
    """The ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
