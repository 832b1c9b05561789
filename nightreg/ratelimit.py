"""Fixed-window counters for the kiosk's abuse limits (per client address, per point).

Litestar's RateLimitMiddleware keys on the client address only and answers with a bare 429;
the kiosk needs a limit per check-in point too and an answer the visitor understands.
Counters live in the process: with several instances each keeps its own, which loosens the
limit by the number of instances but never locks out an honest visitor.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, limit: int, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> bool:
        """Count one request for key; False when it is over the limit."""
        now = self._clock()
        window_start, count = self._counts.get(key, (now, 0))
        if now - window_start >= self.window:
            window_start, count = now, 0
        count += 1
        self._counts[key] = (window_start, count)
        if len(self._counts) > 50_000:
            self._forget_old(now)
        return count <= self.limit

    def _forget_old(self, now: float) -> None:
        # Keeps memory bounded when many addresses pass by.
        self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window}
