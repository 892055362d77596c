"""The watcher's guards, seen from outside: what the live store holds, what an Organization's
screens receive and which requests reach VoipNow when a poll races a Call Event, when the
store loses what was published, and when Call Events name many calls at once."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache

from calls import live, store
from calls.live import Watcher
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.conftest import EMULATOR_URL, every_voipnow
from tests.support.layer import acme_id, listen, received
from tests.support.transport import GET, LIST, EmulatorTransport

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]


@dataclass(frozen=True)
class Watched:
    """A watcher whose requests to the emulator go through ``transport``."""

    watcher: Watcher
    transport: EmulatorTransport


@pytest.fixture
async def watched(emulator_app: Any, world: dict[str, str]) -> AsyncIterator[Watched]:
    transport = EmulatorTransport(emulator_app)
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as client:
        watcher = Watcher(
            client, channel_layer=get_channel_layer(), poll_interval=1.0, call_events=False
        )
        await watcher.load_directory()
        yield Watched(watcher, transport)


@contextlib.asynccontextmanager
async def poll_in_flight(watched: Watched) -> AsyncIterator[None]:
    """A poll that started and has VoipNow's answer on its way: what the block does happens
    after the poll started, and the poll's (older) answer is applied when the block ends."""
    gate = watched.transport.hold_next_list()
    poll = asyncio.create_task(watched.watcher.refresh_all())
    try:
        await asyncio.wait_for(watched.transport.list_answered.wait(), 5)
        yield
    finally:
        gate.set()
        await asyncio.wait_for(poll, 5)


async def banner(layer: Any, channel: str, state: str) -> None:
    """Wait until the freshness banner says ``state``."""
    async with asyncio.timeout(5):
        while f'data-state="{state}"' not in (await layer.receive(channel))["html"]:
            pass


def row_state(html: str, call_id: str) -> str | None:
    """The state a row of ``html`` shows for the call, None when it has no row for it."""
    found = re.search(rf'<tr id="call-{re.escape(call_id)}" class="call state-([a-z]+)"', html)
    return found.group(1) if found else None


def gone(html: str, call_id: str) -> bool:
    return f'<tr id="call-{call_id}" hx-swap-oob="delete"' in html


# ---- a poll against a Call Event that came after it started ---------------------------------


async def test_a_poll_does_not_overwrite_a_call_an_event_refreshed_after_it_started(
    emulator: Emulator, watched: Watched
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    await watched.watcher.refresh_all()
    org_id = await acme_id()
    layer, channel = await listen(live.org_group(org_id))

    async with poll_in_flight(watched):  # its answer shows the call still waiting
        emulator.answer_call(call.id)
        await watched.watcher.refresh_calls([call.id])

    _, [row] = await store.snapshot(org_id)
    assert row_state(row, call.id) == "talking"
    sent = await received(layer, channel)
    # The event's refresh reached the screens; the older poll sent nothing after it.
    assert [row_state(m["html"], call.id) for m in sent] == ["talking"]


async def test_a_poll_does_not_bring_back_a_call_an_event_found_gone_after_it_started(
    emulator: Emulator, watched: Watched
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    await watched.watcher.refresh_all()
    org_id = await acme_id()
    layer, channel = await listen(live.org_group(org_id))

    async with poll_in_flight(watched):  # its answer still lists the call
        emulator.hangup_call(call.id)
        await watched.watcher.refresh_calls([call.id])

    assert (await store.snapshot(org_id))[1] == []
    [message] = await received(layer, channel)
    assert gone(message["html"], call.id)
    assert row_state(message["html"], call.id) is None


async def test_a_poll_that_started_after_the_event_wins(
    emulator: Emulator, watched: Watched
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    await watched.watcher.refresh_all()
    await watched.watcher.refresh_calls([call.id])
    emulator.answer_call(call.id)

    await watched.watcher.refresh_all()  # the event is older than this poll: the poll counts

    _, [row] = await store.snapshot(await acme_id())
    assert row_state(row, call.id) == "talking"


# ---- the store lost what was published ------------------------------------------------------


async def test_after_the_store_lost_its_rows_the_watcher_publishes_them_all_again(
    emulator: Emulator, watcher: Watcher
) -> None:
    for queue in ("0001*100", "0001*101"):
        emulator.create_call(queue, auto=False)
    await watcher.refresh_all()
    org_id = await acme_id()
    version, rows = await store.snapshot(org_id)
    assert len(rows) == 2

    cache.clear()  # Redis restarted without persistence; VoipNow's calls did not change
    assert await store.snapshot(org_id) == (0, [])
    layer, channel = await listen(live.org_group(org_id))
    status_layer, status_channel = await listen(live.STATUS_GROUP)
    # The watcher looks at the store when it sends a heartbeat, at once when its state
    # changes: one failed poll (down), then a good one (ok).
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "GET", "kind": "status", "status": 500, "times": 1}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        await banner(status_layer, status_channel, "down")
        watcher.call_event(None)  # poll again now rather than after the back-off
        await banner(status_layer, status_channel, "ok")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)

    # A new screen gets every row again, and screens already open get them all too.
    new_version, rows_again = await store.snapshot(org_id)
    assert rows_again == rows
    assert new_version > version
    [message] = await received(layer, channel)
    assert (message["prev"], message["version"]) == (version, new_version)
    assert message["html"] == "".join(rows)


# ---- many calls named at once ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("named", "reads"),
    [(21, [LIST]), (20, [GET] * 20)],
    ids=["more-than-twenty-one-poll", "up-to-twenty-one-by-one"],
)
async def test_calls_named_at_once_are_read_one_by_one_up_to_twenty_then_by_one_poll(
    emulator: Emulator, watched: Watched, named: int, reads: list[str]
) -> None:
    calls = [emulator.create_call("0001*100", auto=False) for _ in range(named)]
    await watched.watcher.refresh_all()
    for call in calls:
        emulator.hangup_call(call.id)
    watched.transport.reads.clear()

    await watched.watcher.refresh_calls(call.id for call in calls)

    assert watched.transport.reads == reads
    assert (await store.snapshot(await acme_id()))[1] == []
