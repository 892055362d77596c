"""The watcher with VoipNow as deployed: polling never waits on Call Event registration, an
event without a UAPI call id refreshes the extensions it names, polls slow down while events
arrive, and the request count reaches the status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from calls import store
from calls.live import Watcher
from calls.models import EventRegistration
from calls.uapi.budget import RequestBudget
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.conftest import EMULATOR_URL, every_voipnow
from tests.support.layer import acme_id
from tests.support.transport import GET, LIST, EmulatorTransport
from tests.support.waiting import eventually, holds_throughout, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

HOOK = "http://callboard.test/hooks/voipnow/s3cret/"


async def shown_ids() -> set[str]:
    _, rows = await store.snapshot(await acme_id())
    return {row.split('id="call-', 1)[1].split('"', 1)[0] for row in rows}


@pytest.fixture
async def client(transport: EmulatorTransport) -> AsyncIterator[UapiClient]:
    async with UapiClient(
        EMULATOR_URL,
        "demo-app",
        "demo-secret",
        transport=transport,
        budget=RequestBudget(6000),
    ) as uapi:
        yield uapi


async def quiet_watcher(client: UapiClient) -> Watcher:
    """A watcher that polls only when told to."""
    layer = get_channel_layer()
    watcher = Watcher(client, channel_layer=layer, poll_interval=60, call_events=False)
    await watcher.load_directory()
    return watcher


async def running(watcher: Watcher) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(watcher.run(stop))


async def stopped(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_polling_goes_on_when_voipnow_refuses_every_registration(
    world: Any, emulator: Emulator, client: UapiClient
) -> None:
    emulator.faults.add({"path": "/uapi/extensions", "kind": "status", "status": 503})
    call = emulator.create_call("0001*100", auto=False)
    watcher = Watcher(
        client,
        channel_layer=get_channel_layer(),
        poll_interval=0.05,
        call_events=True,
        hook_url=HOOK,
    )
    stop, task = await running(watcher)
    try:
        await wait_until_shown(call.id)
        await wait_until(lambda: store.current_status()["state"] == "ok", what="status ok")
        await eventually(registration_states, what="registrations recorded")
        assert await registration_states() == {"failed"}
    finally:
        await stopped(stop, task)


@sync_to_async
def registration_states() -> set[str]:
    return set(EventRegistration.objects.values_list("state", flat=True))


async def wait_until_shown(call_id: str) -> None:
    async def shown() -> bool:
        return call_id in await shown_ids()

    await eventually(shown, what=f"call {call_id} on screen")


async def test_an_event_without_a_call_id_refreshes_the_extensions_it_names(
    world: Any, emulator: Emulator, client: UapiClient, transport: EmulatorTransport
) -> None:
    watcher = await quiet_watcher(client)
    ending = emulator.create_call("0001*101", auto=False)
    await watcher.refresh_all()
    arriving = emulator.create_call("0001*100", auto=False)
    emulator.hangup_call(ending.id)
    transport.reads.clear()
    await watcher.refresh_extensions(["0001*100", "0001*101"])
    assert await shown_ids() == {arriving.id}
    # Two listings by extension and one lookup of the call 0001*101 no longer lists.
    assert sorted(transport.reads) == [GET, LIST, LIST]


async def test_listing_by_extension_refused_falls_back_to_one_poll(
    world: Any, emulator: Emulator, client: UapiClient, transport: EmulatorTransport
) -> None:
    watcher = await quiet_watcher(client)
    call = emulator.create_call("0001*100", auto=False)
    # 9999*999 is no extension VoipNow knows: it answers extension_invalid.
    await watcher.refresh_extensions(["9999*999"])
    assert await shown_ids() == {call.id}
    assert store.current_status()["state"] == "ok"


async def test_polls_slow_down_while_call_events_arrive(
    world: Any, emulator: Emulator, client: UapiClient, transport: EmulatorTransport
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    watcher = Watcher(
        client,
        channel_layer=get_channel_layer(),
        poll_interval=0.01,
        call_events=False,
        events_poll_interval=60,
    )
    stop, task = await running(watcher)
    try:
        await wait_until_shown(call.id)
        for _ in range(3):  # events flow: each is refreshed (the first by a poll, maybe)
            await refreshed_after_event(watcher, transport, call.id)
        lists = transport.reads.count(LIST)
        # Without events the watcher polls every 10 ms; with them, not before 60 s.
        await holds_throughout(
            lambda: transport.reads.count(LIST) == lists, seconds=0.3, what="no poll"
        )
        assert GET in transport.reads
    finally:
        await stopped(stop, task)


async def refreshed_after_event(
    watcher: Watcher, transport: EmulatorTransport, call_id: str
) -> None:
    reads = len(transport.reads)
    watcher.call_event(call_id)
    await wait_until(lambda: len(transport.reads) > reads, what="a refresh")


async def test_the_status_carries_the_requests_of_the_last_minute(
    world: Any, emulator: Emulator, client: UapiClient
) -> None:
    watcher = await quiet_watcher(client)
    await watcher.refresh_all()
    await watcher.refresh_all()
    usage = store.current_status().get("uapi")
    assert usage == {"requests_last_minute": 2, "limit_per_minute": 6000}
