"""Several processes, one source of truth: two daphne processes and watchers on Redis and
PostgreSQL, with screens that must always end up showing what VoipNow has."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import skip_or_fail
from tests.integration.stack import Screen, Stack
from tests.support.ports import port_open
from tests.support.waiting import wait_for, wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

POSTGRES_URL = os.environ.get(
    "CALLBOARD_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


def _postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except psycopg.Error:  # refused, timed out or a bad URL: every one means it does not answer
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not _postgres_answers():
        skip_or_fail(f"PostgreSQL does not answer at {POSTGRES_URL}")
    import shutil

    if not shutil.which("redis-server"):
        skip_or_fail("redis-server is not installed")
    s = Stack(workdir=Path(tmp_path_factory.mktemp("stack")), postgres_admin_url=POSTGRES_URL)
    try:
        s.setup()
        s.start_daphne("daphne-a", s.ports["a"], s.ports["a"])
        s.start_daphne("daphne-b", s.ports["b"], s.ports["a"])
        s.start_watcher("watcher-1", s.ports["a"], wait=True)
        yield s
    finally:
        s.teardown()


@pytest.fixture
async def screens(stack: Stack) -> AsyncIterator[list[Screen]]:
    session = stack.session("alice")
    out = []
    for name in ("a", "b"):
        url = stack.url(name)
        screen = Screen(f"{url.replace('http', 'ws', 1)}/ws/calls/", session, url)
        screen.start()
        out.append(screen)
    for screen in out:
        await screen.until(lambda s: s.snapshots >= 1, 15, "the first snapshot")
    yield out
    for screen in out:
        await screen.stop()


def active_watcher(stack: Stack) -> str:
    """The watcher that holds the lock: the latest one started that still runs."""
    return next(n for n in ("watcher-2", "watcher-1") if n in stack.procs.running)


def live_ids(stack: Stack) -> set[str]:
    import httpx

    calls = httpx.get(f"{stack.emulator_url}/_emulator/calls", timeout=5).json()
    entries = calls if isinstance(calls, list) else calls.get("entry", calls.get("calls", []))
    return {c["id"] for c in entries if c.get("ownerId") == "1"}


async def test_a_screen_on_each_daphne_receives_the_same_change(
    stack: Stack, screens: list[Screen]
) -> None:
    call_id = stack.start_call("0001*100")

    for screen in screens:
        await screen.until(lambda s: call_id in s.rows, 10, f"call {call_id}")

    assert screens[0].rows[call_id] == screens[1].rows[call_id]
    assert "0002*" not in "".join(screens[0].rows.values())
    stack.hang_up(call_id)
    for screen in screens:
        await screen.until(lambda s: call_id not in s.rows, 10, f"call {call_id} to end")


async def test_killing_the_active_watcher_hands_over_within_ten_seconds(
    stack: Stack, screens: list[Screen]
) -> None:
    stack.start_watcher("watcher-2", stack.ports["a"])
    wait_for(lambda: "standing by" in stack.log("watcher-2"), 15, "the second watcher to stand by")
    assert "watching VoipNow" not in stack.log("watcher-2")

    stack.stop("watcher-1", signal.SIGKILL)
    call_id = stack.start_call("0001*101")
    # Ten seconds from the kill is the promise: it is the deadline for every screen.
    await wait_until(
        lambda: all(call_id in s.rows for s in screens), 10, "the new watcher to publish"
    )

    assert "watching VoipNow" in stack.log("watcher-2")


async def test_restarting_redis_ends_with_every_screen_resynced(
    stack: Stack, screens: list[Screen]
) -> None:
    before = stack.start_call("0001*100")
    for screen in screens:
        await screen.until(lambda s: before in s.rows, 10, "the first call")

    watcher = active_watcher(stack)
    logged = len(stack.log(watcher))
    stack.stop("redis", signal.SIGKILL)
    during = stack.start_call("0001*101")
    stack.hang_up(before)
    # Redis comes back only once the watcher has lost it: an outage nobody noticed tests nothing.
    await wait_until(
        lambda: "watcher lock" in stack.log(watcher)[logged:],
        10,
        "the watcher to notice Redis gone",
        interval=0.1,
    )
    stack.start_redis()

    expected = live_ids(stack)
    assert during in expected
    assert before not in expected
    for screen in screens:
        await screen.until(lambda s: set(s.rows) == expected, 30, f"a resync to {expected}")


async def test_restarting_the_daphne_processes_ends_with_every_screen_resynced(
    stack: Stack, screens: list[Screen]
) -> None:
    for name in ("a", "b"):
        stack.stop(f"daphne-{name}")
    wait_for(lambda: not any(port_open(p) for p in stack.ports.values()), 10, "daphne to stop")
    changed = stack.start_call("0001*100")
    snapshots = [s.snapshots for s in screens]
    for name in ("a", "b"):
        stack.start_daphne(f"daphne-{name}", stack.ports[name], stack.ports["a"])

    expected = live_ids(stack)
    assert changed in expected
    for screen, seen in zip(screens, snapshots, strict=True):

        def resynced(s: Screen, seen: int = seen) -> bool:
            return s.snapshots > seen and set(s.rows) == expected

        await screen.until(resynced, 30, "a resync")
    assert all(re.fullmatch(r"[0-9a-f]+", i) for i in expected)


def test_a_watcher_stops_cleanly_on_sigterm_and_frees_the_lock(stack: Stack) -> None:
    import redis

    name = active_watcher(stack)
    proc = stack.procs.running[name]
    store = redis.Redis.from_url(stack.redis_url)

    def leader_locks() -> list[bytes]:
        # redis-py types its blocking client's replies as possibly awaitable.
        return cast(list[bytes], store.keys("*watcher-leader*"))

    wait_for(lambda: len(leader_locks()) == 1, 10, "the active watcher's lock")

    stack.stop(name, signal.SIGTERM)

    assert proc.returncode == 0
    assert "watcher stopped" in stack.log(name)
    assert store.keys("*watcher-leader*") == []  # released, not left to expire
    stack.start_watcher("watcher-3", stack.ports["a"])
    wait_for(lambda: "watching VoipNow" in stack.log("watcher-3"), 10, "the next watcher")
