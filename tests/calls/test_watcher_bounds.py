"""What Call Events may cost VoipNow, even sent with the hook's secret: at most one refresh of
a call per window, a cap on events a second past which one poll replaces them, and ids not of
VoipNow's form never put in a URL. Requests are counted where they reach the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls import store
from calls.live import EVENT_WINDOW, EVENTS_PER_SECOND, WATCHER_CHANNEL, Watcher
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.paths import is_call_id, is_extension, is_user_id
from tests.conftest import EMULATOR_URL
from tests.support.layer import acme_id
from tests.support.transport import GET, LIST, EmulatorTransport
from tests.support.waiting import eventually, holds_throughout, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def client(transport: EmulatorTransport) -> AsyncIterator[UapiClient]:
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        yield uapi


@pytest.fixture
async def watcher(client: UapiClient, world: Any) -> AsyncIterator[Watcher]:
    """A watcher running its loop, polling only at start (every 60 s after)."""
    running = Watcher(
        client, channel_layer=get_channel_layer(), poll_interval=60, call_events=False
    )
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def shown_ids() -> set[str]:
    _, rows = await store.snapshot(await acme_id())
    return {row.split('id="call-', 1)[1].split('"', 1)[0] for row in rows}


async def row_of(call_id: str) -> str:
    _, rows = await store.snapshot(await acme_id())
    return next(row for row in rows if f'id="call-{call_id}"' in row)


async def settled(transport: EmulatorTransport, quiet: float = 1.5) -> None:
    """Wait until no request has reached VoipNow for ``quiet`` seconds."""
    loop = asyncio.get_running_loop()
    count, since = len(transport.sent), loop.time()
    while loop.time() - since < quiet:
        await asyncio.sleep(0.05)
        if len(transport.sent) != count:
            count, since = len(transport.sent), loop.time()


def well_formed(method: str, path: str) -> bool:
    """Every segment of a PhoneCalls request is of VoipNow's form."""
    parts = path.split("/")
    if parts[1:3] != ["uapi", "phoneCalls"]:
        return True
    user, extension, *rest = parts[3:]
    return (
        is_user_id(user)
        and is_extension(extension)
        and len(rest) <= 1
        and all(is_call_id(r) for r in rest)
    )


async def first_poll(watcher: Watcher, transport: EmulatorTransport) -> int:
    """Wait for the watcher's first poll; returns how many requests had been sent."""
    await wait_until(lambda: LIST in transport.reads, what="the first poll")
    await eventually(lambda: _status_ok(), what="the watcher ok")
    return len(transport.sent)


async def _status_ok() -> bool:
    return store.current_status()["state"] == "ok"


async def test_a_flood_of_10000_events_for_100_calls_costs_a_bounded_number_of_requests(
    emulator: Emulator, watcher: Watcher, transport: EmulatorTransport
) -> None:
    calls = [emulator.create_call(("0001*100", "0001*101")[i % 2], auto=False) for i in range(100)]
    await first_poll(watcher, transport)
    reads_before = len(transport.reads)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(10_000):
        watcher.call_event(calls[i % 100].id)
        if i == 5_000:
            for call in calls[:10]:  # changes in the middle of the flood still show
                emulator.hangup_call(call.id)
        if i % 100 == 99:
            await asyncio.sleep(0.02)
    await settled(transport)
    elapsed = loop.time() - started
    reads = transport.reads[reads_before:]

    # Without the bounds this was a poll every 10 ms: well over a hundred listings.
    polls_allowed = elapsed / EVENT_WINDOW + 2
    assert reads.count(LIST) <= polls_allowed, (reads.count(LIST), elapsed)
    assert reads.count(GET) <= EVENTS_PER_SECOND * (elapsed + 1)
    assert len(reads) <= polls_allowed + EVENTS_PER_SECOND * (elapsed + 1)
    assert await shown_ids() == {call.id for call in calls[10:]}
    assert store.current_status()["state"] == "ok"


async def test_events_for_one_call_within_the_window_become_one_refresh(
    emulator: Emulator, client: UapiClient, transport: EmulatorTransport, world: Any
) -> None:
    # A window longer than the default, so that a loaded machine cannot stretch the test's
    # events past it.
    window = 2.0
    watcher = Watcher(
        client,
        channel_layer=get_channel_layer(),
        poll_interval=60,
        call_events=False,
        event_window=window,
    )
    call = emulator.create_call("0001*100", auto=False)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        await first_poll(watcher, transport)
        before = await row_of(call.id)
        watcher.call_event(call.id)
        # The first event of a call is refreshed at once.
        await wait_until(lambda: transport.reads.count(GET) == 1, what="the first refresh")
        emulator.answer_call(call.id)
        for _ in range(5):
            watcher.call_event(call.id)
            await asyncio.sleep(0.02)
        # The others wait for the window's end...
        await holds_throughout(
            lambda: transport.reads.count(GET) == 1, seconds=window / 2, what="one refresh"
        )
        # ...and become one refresh, which shows the call as it is now.
        await wait_until(lambda: transport.reads.count(GET) == 2, within=2 * window)
        await holds_throughout(
            lambda: transport.reads.count(GET) == 2, seconds=0.5, what="two refreshes"
        )
        assert await row_of(call.id) != before
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_past_the_events_a_second_allowed_one_poll_replaces_them(
    emulator: Emulator, client: UapiClient, transport: EmulatorTransport, world: Any
) -> None:
    capped = Watcher(
        client,
        channel_layer=get_channel_layer(),
        poll_interval=60,
        call_events=False,
        events_per_second=3,
    )
    calls = [emulator.create_call("0001*100", auto=False) for _ in range(10)]
    stop = asyncio.Event()
    task = asyncio.create_task(capped.run(stop))
    try:
        await first_poll(capped, transport)
        reads = len(transport.reads)
        for call in calls:  # ten different calls at once: the fourth is past the cap
            capped.call_event(call.id)
        await settled(transport, quiet=EVENT_WINDOW + 0.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    # The first poll was under a second ago: the one poll asked for waits for its window,
    # and covers every call named, so none is read alone.
    assert transport.reads[reads:] == [LIST]


MALFORMED_EVENTS: list[dict[str, Any]] = [
    {"call_id": "..", "extensions": []},
    {"call_id": ".", "extensions": []},
    {"call_id": "%2e%2e", "extensions": []},
    {"call_id": "../../x", "extensions": []},
    {"call_id": "x" * 300, "extensions": []},
    {"call_id": "..", "extensions": ["../x"]},
    {"call_id": None, "extensions": ["..", "%2e%2e", ""]},
    {"call_id": 12, "extensions": []},
    {"call_id": ["abc"], "extensions": []},
    {"call_id": None, "extensions": "0001*100"},
]


async def test_ids_not_of_voipnow_form_never_reach_it(
    watcher: Watcher, transport: EmulatorTransport
) -> None:
    before = await first_poll(watcher, transport)
    layer = get_channel_layer()
    for event in MALFORMED_EVENTS:
        # As the hook's messages arrive: through the channel layer.
        await layer.send(WATCHER_CHANNEL, {"type": "call.event", **event})
    await holds_throughout(
        lambda: len(transport.sent) == before, seconds=EVENT_WINDOW + 0.5, what="nothing sent"
    )
    assert store.current_status()["state"] == "ok"


async def test_a_malformed_id_beside_a_good_extension_refreshes_the_extension_only(
    emulator: Emulator, watcher: Watcher, transport: EmulatorTransport
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    before = await first_poll(watcher, transport)
    watcher.call_event("..", ["0001*100", "../x"])
    await wait_until(lambda: len(transport.sent) > before, what="a refresh")
    await settled(transport, quiet=0.5)
    assert [path for _, path, _ in transport.sent[before:]] == ["/uapi/phoneCalls/@me/0001*100"]
    assert call.id in await shown_ids()


ids = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.sampled_from(["..", ".", "", "%2e%2e", "a/b", "@me", "0001*100", "abc123"]),
    st.integers(),
    st.lists(st.text(max_size=5), max_size=3),
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call_id=ids, extensions=st.one_of(ids, st.lists(ids, max_size=4)))
async def test_any_message_gives_well_formed_requests_only(
    call_id: Any, extensions: Any, watcher: Watcher, transport: EmulatorTransport
) -> None:
    if LIST not in transport.reads:
        await first_poll(watcher, transport)
    watcher.call_event(call_id, extensions)
    await asyncio.sleep(0.01)
    assert all(well_formed(method, path) for method, path, _ in transport.sent)
    assert store.current_status()["state"] == "ok"
