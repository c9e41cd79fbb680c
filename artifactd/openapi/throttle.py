"""Per-access-key request rate limits (token buckets).

Off by default. When on, a key that exceeds its rate is refused with
``Throttling.User`` and an ``x-acs-retry-after`` hint, which the Tea SDK
turns into its ThrottlingException.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from artifactd.openapi.errors import GatewayError


class RateLimiter:
    """Allows ``rate`` requests per second per key, with bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._burst = burst if burst is not None else rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> None:
        """Take one token for ``key`` or raise Throttling.User with a retry hint."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                error = GatewayError("Throttling.User")
                error.retry_after = (1 - tokens) / self._rate
                raise error
            self._buckets[key] = (tokens - 1, now)
