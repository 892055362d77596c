"""The watcher: what it publishes, how it survives a bad VoipNow, and one active at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from channels.layers import get_channel_layer

from calls import live, store
from calls.floor import PanelSink
from calls.live import Watcher
from calls.store import LeaderLock
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.types import PhoneCall
from tests.conftest import answered_call, every_voipnow
from tests.support.layer import acme_id, listen, received

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]


async def test_only_what_changed_is_broadcast_once_per_cycle(
    emulator: Emulator, watcher: Watcher
) -> None:
    a = emulator.create_call("0001*100", auto=False)
    b = emulator.create_call("0001*101", auto=False)
    await watcher.refresh_all()
    layer, channel = await listen(live.org_group(await acme_id()))

    emulator.answer_call(a.id)
    await watcher.refresh_all()
    await watcher.refresh_all()  # nothing changed since: nothing is sent

    [message] = await received(layer, channel)
    assert message["type"] == "calls.changes"
    assert f'id="call-{a.id}"' in message["html"]
    assert b.id not in message["html"]


async def test_the_snapshot_lists_rows_in_arrival_order(
    emulator: Emulator, watcher: Watcher
) -> None:
    ids = [emulator.create_call(q, auto=False).id for q in ("0001*100", "0001*101", "0001*100")]
    await watcher.refresh_all()

    version, rows = await store.snapshot(await acme_id())

    assert version >= 1
    assert [next(i for i in ids if i in row) for row in rows] == ids


async def test_a_call_event_refreshes_just_that_call(emulator: Emulator, watcher: Watcher) -> None:
    call = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    layer, channel = await listen(live.org_group(await acme_id()))
    emulator.answer_call(call.id)

    await watcher.refresh_calls([call.id])

    [message] = await received(layer, channel)
    assert 'class="call state-talking"' in message["html"]
    emulator.hangup_call(call.id)
    await watcher.refresh_calls([call.id])
    [gone] = await received(layer, channel)
    assert f'<tr id="call-{call.id}" hx-swap-oob="delete"' in gone["html"]


@pytest.mark.parametrize("kind", ["malformed", "truncated", "drop", "status"])
async def test_a_bad_answer_from_voipnow_never_stops_the_watcher(
    kind: str, emulator: Emulator, watcher: Watcher
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "GET", "kind": kind, "status": 500, "times": 1}
    )
    layer, channel = await listen(live.STATUS_GROUP)
    watcher.poll_interval = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            _, rows = await store.snapshot(await acme_id())
            if rows:
                break
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)

    assert any(call.id in row for row in rows)
    banners = [m["html"] for m in await received(layer, channel)]
    assert any("VoipNow cannot be reached" in html for html in banners)
    assert 'data-state="ok"' in banners[-1]


async def test_a_new_watcher_removes_the_rows_its_predecessor_left(
    emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    gone = emulator.create_call("0001*100", auto=False)
    kept = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    old_version, _ = await store.snapshot(await acme_id())
    emulator.hangup_call(gone.id)  # while no watcher runs

    successor = Watcher(uapi, channel_layer=get_channel_layer(), poll_interval=1, call_events=False)
    await successor.load_directory()
    layer, channel = await listen(live.org_group(await acme_id()))
    await successor.refresh_all()

    [message] = await received(layer, channel)
    assert message["prev"] == old_version
    assert message["version"] > old_version
    assert f'<tr id="call-{gone.id}" hx-swap-oob="delete"' in message["html"]
    assert kept.id not in message["html"]  # unchanged for the screens: not sent again
    _, rows = await store.snapshot(await acme_id())
    assert len(rows) == 1
    assert kept.id in rows[0]


async def test_only_one_watcher_holds_the_lock_and_another_takes_over_when_it_expires() -> None:
    first, second = LeaderLock(ttl=0.5), LeaderLock(ttl=0.5)
    assert await first.acquire() is True
    assert await second.acquire() is False
    assert await first.renew() is True
    await asyncio.sleep(0.7)  # the holder died: nobody renewed
    assert await second.acquire() is True
    assert await first.renew() is False


async def test_the_hook_wakes_the_watcher(
    emulator: Emulator, watcher: Watcher, settings: Any
) -> None:
    from tests.dashboard.test_views import post_hook

    call = emulator.create_call("0001*100", auto=False)
    watcher.poll_interval = 3600  # only the event can bring the call in
    stop = asyncio.Event()
    await watcher.refresh_all()
    task = asyncio.create_task(watcher.run(stop))
    try:
        await asyncio.sleep(0.1)
        emulator.answer_call(call.id)
        response = await post_hook(
            f"/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/",
            f"CallAPIID={call.id}&CallStatus=ANSWER".encode(),
        )
        assert response["status"] == 200
        for _ in range(50):
            await asyncio.sleep(0.05)
            _, rows = await store.snapshot(await acme_id())
            if rows and "state-talking" in rows[0]:
                break
    finally:
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
    assert "state-talking" in rows[0]


async def test_a_leg_that_joined_names_the_phone_that_joined(
    alice: Any, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    from calls.services import barge_in

    call = await answered_call(emulator, watcher)
    await barge_in(
        user=alice,
        call_id=call.id,
        phone_call_view_id=call.agent_view,
        send_call_to="0001*024",
        uapi=uapi,
    )
    await watcher.refresh_all()

    _, [row] = await store.snapshot(await acme_id())

    assert 'Alice desk phone <span class="status">ringing</span>' in row
    assert 'Ann <span class="status">on call</span>' in row


async def test_a_poll_reuses_the_calls_whose_json_did_not_change(
    emulator: Emulator, watcher: Watcher
) -> None:
    a = emulator.create_call("0001*100", auto=False)
    b = emulator.create_call("0001*101", auto=False)
    first = {c.id: c for c in await watcher.fetch_all()}
    emulator.answer_call(a.id)
    second = {c.id: c for c in await watcher.fetch_all()}
    assert second[b.id] is first[b.id]  # the same JSON: not parsed again
    assert second[a.id] is not first[a.id]
    assert second[a.id] != first[a.id]


async def test_panels_ride_the_calls_versions_and_reach_new_screens(
    emulator: Emulator, watcher: Watcher
) -> None:
    org = await acme_id()
    await watcher.refresh_all()
    before = await store.published(org)
    assert before is not None
    layer, channel = await listen(live.org_group(org))
    panel = '<section id="agents" hx-swap-oob="true">3 available</section>'

    await watcher.publish_panels(org, {"agents": panel})
    await watcher.publish_panels(org, {"agents": panel})  # unchanged: nothing is sent

    [message] = await received(layer, channel)
    assert message["prev"] == before.version
    assert message["html"] == panel
    found = await store.read_snapshot(org)
    assert (found.version, found.panels) == (message["version"], [panel])
    assert (await store.read_snapshot(org, unless_version=found.version)).panels == [panel]


class CountingFloor:
    """A floor that counts the calls it is shown and the calls that end."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.ended: list[str] = []

    async def calls_changed(
        self, org_id: int, calls: Mapping[str, PhoneCall], ended: Sequence[PhoneCall]
    ) -> None:
        if self.fail:
            raise RuntimeError("broken floor")
        self.ended += [c.id for c in ended]

    async def panels(self, org_id: int, calls: Mapping[str, PhoneCall]) -> dict[str, str]:
        return {"count": f'<p id="count" hx-swap-oob="true">{len(calls)}</p>'}

    async def run(self, watcher: PanelSink, stop: asyncio.Event) -> None:
        await stop.wait()


async def test_floors_follow_the_calls_and_their_panels_go_out_with_the_change(
    emulator: Emulator, uapi: UapiClient, world: Any
) -> None:
    floor = CountingFloor()
    watcher = Watcher(
        uapi,
        channel_layer=get_channel_layer(),
        poll_interval=60,
        call_events=False,
        floors=[CountingFloor(fail=True), floor],
    )
    await watcher.load_directory()
    a = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    layer, channel = await listen(live.org_group(await acme_id()))
    emulator.hangup_call(a.id)
    await watcher.refresh_all()
    [message] = await received(layer, channel)
    assert f'id="call-{a.id}"' in message["html"]
    assert '<p id="count" hx-swap-oob="true">0</p>' in message["html"]
    assert floor.ended == [a.id]


async def test_a_queues_long_wait_threshold_rides_its_rows_and_a_change_renders_them_again(
    emulator: Emulator, watcher: Watcher
) -> None:
    from calls.models import Extension

    await Extension.objects.filter(number="0001*100").aupdate(long_wait_seconds=45)
    await watcher.load_directory()
    sales = emulator.create_call("0001*100", auto=False)
    support = emulator.create_call("0001*101", auto=False)
    await watcher.refresh_all()
    _, rows = await store.snapshot(await acme_id())
    [sales_row] = [r for r in rows if sales.id in r]
    [support_row] = [r for r in rows if support.id in r]
    assert 'data-long-wait="45"' in sales_row
    assert "data-long-wait" not in support_row
    assert 'data-arrived="' in sales_row

    # An admin lowers it while the caller waits: the row goes out again, alone.
    layer, channel = await listen(live.org_group(await acme_id()))
    await Extension.objects.filter(number="0001*100").aupdate(long_wait_seconds=30)
    await watcher.load_directory()
    await watcher.refresh_all()

    [message] = await received(layer, channel)
    assert f'id="call-{sales.id}"' in message["html"]
    assert 'data-long-wait="30"' in message["html"]
    assert support.id not in message["html"]
