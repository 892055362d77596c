"""A bound on how many requests a minute Callboard sends to VoipNow: a good citizen of the PBX.

A token bucket: ``per_minute`` requests a minute on average, in bursts of at most a sixth of
that (ten seconds' worth), so a burst of Call Events or a restart that registers every
extension is spread out instead of landing on VoipNow at once. It also counts what was sent in
the last minute, for ``/healthz``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable


class RequestBudget:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._burst = max(1.0, per_minute / 6.0)
        self._tokens = self._burst
        self._clock = clock
        self._at = clock()
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    async def spend(self) -> None:
        """Wait until a request may be sent, then count it."""
        async with self._lock:  # first come, first served
            self._refill()
            if self._tokens < 1.0:
                await asyncio.sleep((1.0 - self._tokens) / self._rate)
                self._refill()
            self._tokens -= 1.0
            self.count()

    def count(self) -> None:
        """Count a request sent without waiting (one a person is waiting for)."""
        now = self._clock()
        self._sent.append(now)
        self._forget(now)

    def last_minute(self) -> int:
        """How many requests were sent in the last 60 seconds."""
        self._forget(self._clock())
        return len(self._sent)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - 60.0:
            self._sent.popleft()
