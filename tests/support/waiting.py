"""Waiting on conditions rather than for fixed times: a test proceeds as soon as what it needs
holds, and fails with a message naming what never came."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

DEFAULT_WITHIN = 5.0


def wait_for(
    predicate: Callable[[], object],
    within: float = DEFAULT_WITHIN,
    what: str = "the condition",
    interval: float = 0.05,
) -> None:
    """Call ``predicate`` until it is truthy, blocking this thread.

    Raises AssertionError after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        time.sleep(interval)


async def wait_until(
    predicate: Callable[[], object],
    within: float = DEFAULT_WITHIN,
    what: str = "the condition",
    interval: float = 0.01,
) -> None:
    """Call ``predicate`` until it is truthy, letting the event loop run in between.

    Raises AssertionError after ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(interval)


async def eventually(
    check: Callable[[], Awaitable[object]],
    within: float = DEFAULT_WITHIN,
    what: str = "the condition",
    interval: float = 0.01,
) -> None:
    """Await ``check`` until it answers truthy: ``wait_until`` for conditions that must be read
    asynchronously (the live store, the database through ``sync_to_async``).

    Raises AssertionError after ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(interval)


async def holds_throughout(
    predicate: Callable[[], object],
    seconds: float,
    what: str = "the condition",
    interval: float = 0.005,
) -> None:
    """Check ``predicate`` again and again for ``seconds`` while the event loop runs: how a
    test shows that something never happens (a limit never exceeded).

    Raises AssertionError the first time it is falsy.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if not predicate():
            raise AssertionError(f"{what} stopped holding")
        await asyncio.sleep(interval)
    if not predicate():
        raise AssertionError(f"{what} stopped holding")
