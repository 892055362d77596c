"""Who is on a call: every screen's row names the supervisors on it and how (from the audit's
accepted attempts and the call's legs, in the emulator in process), and the watcher records on
each attempt when its leg joined and when and how it ended, once."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls import store
from calls.demo_data import SUPERVISORS_GROUP
from calls.live import WATCHER_CHANNEL, Watcher, org_group
from calls.models import BargeInAttempt, Extension, Organization, Supervisor
from calls.services import barge_in
from calls.supervising import OpenAttempt
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.wire import ViewStatus
from tests.conftest import AnsweredCall, answered_call, every_voipnow
from tests.support.layer import acme_id, listen, received
from tests.support.waiting import eventually, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

SUPERVISOR_RE = re.compile(
    r'<li class="supervisor[^"]*" data-supervisor="([^"]+)" data-mode="([^"]+)" '
    r'data-state="([^"]+)">'
)


def on_the_row(html: str) -> dict[str, tuple[str, str]]:
    """The supervisors a row names: username → (mode, state)."""
    return {user: (mode, state) for user, mode, state in SUPERVISOR_RE.findall(html)}


async def row_of(call_id: str) -> str:
    rows = await store.published_rows(await acme_id(), [call_id])
    return rows.get(call_id, "")


@sync_to_async
def make_carol() -> User:
    """A second supervisor of Acme, ringing from 0001*025."""
    user = User.objects.create_user("carol", first_name="Carol")
    user.groups.add(Group.objects.get(name=SUPERVISORS_GROUP))
    supervisor = Supervisor.objects.create(
        user=user, organization=Organization.objects.get(name="Acme")
    )
    supervisor.phones.set([Extension.objects.get(number="0001*025")])
    return user


@sync_to_async
def attempt_of(user: User) -> BargeInAttempt:
    return BargeInAttempt.objects.filter(user=user, outcome="accepted").latest("at")


async def join(
    uapi: UapiClient, user: User, call: AnsweredCall, phone: str, mode: str = "listen", **more: str
) -> None:
    await barge_in(
        user=user,
        call_id=call.id,
        phone_call_view_id=call.agent_view,
        send_call_to=phone,
        mode=mode,
        uapi=uapi,
        **more,
    )


def leg_of(emulator: Emulator, call_id: str, phone: str) -> int | None:
    """The status of the phone's leg in the call, None when it has none."""
    call = emulator.calls.get(call_id)
    views = call.views.values() if call else ()
    return next((v.status for v in views if v.source == [phone]), None)


@pytest.fixture
async def running(watcher: Watcher) -> AsyncIterator[Watcher]:
    """The watcher's loop, polling often and listening to its channel (the services tell it
    when an attempt changed)."""
    watcher.poll_interval = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        yield watcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def told(*watchers: Watcher) -> None:
    """Each watcher hears what the services sent to the watcher's channel (as the active one
    does in its loop), then polls."""
    layer = get_channel_layer()
    messages = []
    with contextlib.suppress(TimeoutError):
        while True:
            messages.append(await asyncio.wait_for(layer.receive(WATCHER_CHANNEL), 0.05))
    for w in watchers:
        for message in messages:
            w.heard(message)
        await w.refresh_all()


async def shown(call_id: str, expected: dict[str, tuple[str, str]]) -> None:
    async def matches() -> bool:
        return on_the_row(await row_of(call_id)) == expected

    await eventually(matches, what=f"the row naming {expected}")


async def test_two_supervisors_on_one_call_see_each_other_on_every_screen(
    alice: User,
    emulator: Emulator,
    uapi: UapiClient,
    watcher: Watcher,
    running: Watcher,
    voipnow_version: int,
) -> None:
    carol = await make_carol()
    for phone in ("0001*024", "0001*025"):
        emulator.set_phone(phone, pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    layer, screen = await listen(org_group(await acme_id()))
    # Listening (Monitor) needs VoipNow 5.6: on 3.x alice barges in.
    alice_mode = "listen" if voipnow_version >= 5 else "barge"

    await join(uapi, alice, call, "0001*024", alice_mode)
    await join(uapi, carol, call, "0001*025", "whisper")

    both = {"alice": (alice_mode, "on_call"), "carol": ("whisper", "on_call")}
    await shown(call.id, both)
    html = await row_of(call.id)
    assert "Carol · whispering" in html
    assert f"alice · {'listening' if alice_mode == 'listen' else 'barging in'}" in html
    # Each has a Leave hidden in the shared row, for the page to show to its owner only.
    for user in ("alice", "carol"):
        assert re.search(
            rf'<button [^>]*data-supervisor="{user}" hx-post="/calls/{call.id}/leave/"[^>]*hidden>',
            html,
        )
    # What screens were sent is what the store holds.
    messages = await received(layer, screen)
    assert on_the_row(messages[-1]["html"]) == both


async def test_a_supervisor_rings_until_the_leg_joins_then_joined_at_is_recorded(
    alice: User, emulator: Emulator, uapi: UapiClient, watcher: Watcher, running: Watcher
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.6)
    call = await answered_call(emulator, watcher)

    await join(uapi, alice, call, "0001*024", "barge")

    await shown(call.id, {"alice": ("barge", "ringing")})
    assert "alice · ringing" in await row_of(call.id)
    assert (await attempt_of(alice)).joined_at is None
    await shown(call.id, {"alice": ("barge", "on_call")})
    row = await attempt_of(alice)
    assert row.joined_at is not None
    assert row.at < row.joined_at
    assert (row.left_at, row.left_how) == (None, "")


async def test_a_leg_hung_up_on_the_phone_is_recorded_as_hung_up_and_the_call_goes_on(
    alice: User, emulator: Emulator, uapi: UapiClient, watcher: Watcher, running: Watcher
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    await join(uapi, alice, call, "0001*024", "barge")
    await shown(call.id, {"alice": ("barge", "on_call")})

    # The supervisor hangs up the desk phone: VoipNow ends that leg only.
    assert await uapi.hang_up(call_id=call.id, extension="0001*024")

    await shown(call.id, {})
    row = await attempt_of(alice)
    assert (row.left_how, row.joined_at is not None) == ("hung_up", True)
    assert row.left_at is not None
    assert row.joined_at is not None
    assert row.left_at >= row.joined_at
    assert call.id in emulator.calls


async def test_the_call_ending_ends_the_supervisors_time_on_it(
    alice: User, emulator: Emulator, uapi: UapiClient, watcher: Watcher, running: Watcher
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    await join(uapi, alice, call, "0001*024", "whisper")
    await shown(call.id, {"alice": ("whisper", "on_call")})

    emulator.hangup_call(call.id)

    async def ended() -> bool:
        return (await attempt_of(alice)).left_how == "call_ended"

    await eventually(ended, what="the attempt recorded as ended with the call")
    assert (await attempt_of(alice)).left_at is not None


async def test_a_phone_that_is_not_picked_up_is_recorded_as_not_answered(
    alice: User, emulator: Emulator, uapi: UapiClient, watcher: Watcher, running: Watcher
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    await join(uapi, alice, call, "0001*024", "barge", wait_for_pickup="1")
    await shown(call.id, {"alice": ("barge", "ringing")})

    async def given_up() -> bool:
        return (await attempt_of(alice)).left_how == "not_answered"

    await eventually(given_up, within=5, what="the ring given up")
    row = await attempt_of(alice)
    assert (row.joined_at, row.left_at is not None) == (None, True)
    await shown(call.id, {})


async def test_joins_and_ends_are_written_once_whatever_the_number_of_watchers(
    alice: User, emulator: Emulator, uapi: UapiClient
) -> None:
    async def new_watcher() -> Watcher:
        w = Watcher(uapi, channel_layer=get_channel_layer(), poll_interval=60, call_events=False)
        await w.load_directory()
        return w

    first, second = await new_watcher(), await new_watcher()
    emulator.set_phone("0001*024", pickup_delay=0.3)
    call = await answered_call(emulator, first)
    await join(uapi, alice, call, "0001*024", "barge")
    await told(first, second)  # both see the phone ringing
    assert [s.state for s in second.supervisors.on(await acme_id(), call.id)] == ["ringing"]
    await wait_until(
        lambda: leg_of(emulator, call.id, "0001*024") == ViewStatus.ON_CALL, what="the join"
    )
    await first.refresh_all()
    joined = (await attempt_of(alice)).joined_at
    assert joined is not None
    await second.refresh_all()
    assert (await attempt_of(alice)).joined_at == joined

    await uapi.hang_up(call_id=call.id, extension="0001*024")
    await first.refresh_all()
    left = await attempt_of(alice)
    assert left.left_how == "hung_up"
    await asyncio.sleep(0.01)  # a later write would carry a later time
    await second.refresh_all()
    restarted = await new_watcher()
    await restarted.refresh_all()
    again = await attempt_of(alice)
    assert (again.left_at, again.left_how, again.joined_at) == (left.left_at, "hung_up", joined)
    for w in (first, second, restarted):
        assert w.supervisors.on(await acme_id(), call.id) == ()


async def test_a_watcher_that_starts_late_takes_a_joined_leg_from_the_audit(
    alice: User, emulator: Emulator, uapi: UapiClient, watcher: Watcher
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    await join(uapi, alice, call, "0001*024", "barge")
    await wait_until(
        lambda: leg_of(emulator, call.id, "0001*024") == ViewStatus.ON_CALL, what="the join"
    )
    await told(watcher)
    assert (await attempt_of(alice)).joined_at is not None
    # A new watcher (a restart) never saw the leg ring: the audit says it joined.
    await uapi.hang_up(call_id=call.id, extension="0001*024")
    later = Watcher(uapi, channel_layer=get_channel_layer(), poll_interval=60, call_events=False)
    await later.load_directory()
    await later.refresh_all()
    assert (await attempt_of(alice)).left_how == "hung_up"


async def test_changes_of_calls_cost_no_query_until_an_attempt_changes(
    alice: User, emulator: Emulator, uapi: UapiClient, watcher: Watcher
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    await join(uapi, alice, call, "0001*024", "barge")
    await wait_until(
        lambda: leg_of(emulator, call.id, "0001*024") == ViewStatus.ON_CALL, what="the join"
    )
    await told(watcher)
    await watcher.refresh_all()
    org = await acme_id()
    assert [s.username for s in watcher.supervisors.on(org, call.id)] == ["alice"]

    # The watcher's database work runs on asgiref's one thread: count the queries there.
    queries = CaptureQueriesContext(connection)
    await sync_to_async(queries.__enter__)()
    count = sync_to_async(lambda: len(queries.captured_queries))
    try:
        for _ in range(5):
            emulator.create_call("0001*101", auto=False)
            await watcher.refresh_all()
            assert await count() == 0
        watcher.attempts_changed(org, call.id)
        await watcher.refresh_all()
        assert await count() == 1
        await watcher.refresh_all()
        assert await count() == 1
    finally:
        await sync_to_async(queries.__exit__)(None, None, None)
    assert [s.username for s in watcher.supervisors.on(org, call.id)] == ["alice"]


def test_an_attempt_rings_no_longer_than_its_wait_and_the_grace(settings: Any) -> None:
    at = datetime(2026, 1, 1, 12, 0, 0)
    attempt = OpenAttempt(
        id=1,
        organization_id=1,
        call_id="c",
        username="alice",
        name="alice",
        mode="barge",
        phone="0001*024",
        at=at,
        wait_for_pickup=10,
        joined=False,
    )
    grace = settings.CALLBOARD_RINGING_GUARD_GRACE
    assert not attempt.ring_over(at + timedelta(seconds=10 + grace))
    assert attempt.ring_over(at + timedelta(seconds=10 + grace + 1))
