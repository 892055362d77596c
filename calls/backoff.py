"""How long to wait before trying again, the same way everywhere a watcher retries."""

from __future__ import annotations

import random


def backoff(failures: int, *, first: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling from ``first`` up to
    ``cap``, with ±20% jitter so that processes that failed together do not retry together."""
    return min(cap, first * 2.0 ** min(max(failures, 1) - 1, 16)) * random.uniform(0.8, 1.2)
