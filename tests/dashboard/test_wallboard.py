"""The wallboard as a TV meets it: its page without a login, and its socket through the real
ASGI router: only its queues, callers masked or no calls at all, and "revoked" at once."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from calls import live
from calls.live import Watcher
from calls.models import Extension, Organization, Wallboard
from calls.rows import mask_number
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from dashboard.version import page_version
from tests.dashboard.test_consumers import drain, socket_for
from tests.support.layer import listen, received

pytestmark = pytest.mark.django_db(transaction=True)

CALLER = "+442071838750"
MASKED = "+4420••••8750"


def panel(queue: str, waiting: int) -> str:
    """A queue's figures as the watcher publishes them (the DOM contract: an element with
    ``data-queue`` holding ``data-metric`` elements)."""
    number = queue.replace("*", "-")
    return (
        f'<section id="queue-{number}" data-queue="{queue}" hx-swap-oob="true">'
        f'<span data-metric="waiting">{waiting}</span></section>'
    )


AGENTS = '<section id="agents" hx-swap-oob="true"><p data-agent="0001*201">Ann</p></section>'


def queues_in(html: str) -> list[str]:
    return sorted(re.findall(r'<section id="queue-[^"]*" data-queue="([^"]+)"', html))


async def board_of(org: str = "Acme", queues: tuple[str, ...] = (), **fields: Any) -> Wallboard:
    """A wallboard of ``org`` showing ``queues`` (none: all), with ``fields`` set."""

    def make() -> Wallboard:
        board = Wallboard.objects.create(
            organization=Organization.objects.get(name=org), name="floor", **fields
        )
        board.queues.set(Extension.objects.filter(number__in=queues))
        return board

    return await sync_to_async(make)()


async def connected(board: Wallboard) -> WebsocketCommunicator:
    comm = await socket_for(None, f"/ws/wallboard/{board.token}/")
    connected, _ = await comm.connect()
    assert connected
    return comm


async def acme_org(watcher: Watcher) -> int:
    return (await Organization.objects.aget(name="Acme")).pk


@pytest.fixture
async def third_queue(world: Any) -> str:
    acme = await Organization.objects.aget(name="Acme")
    await Extension.objects.acreate(
        organization=acme, number="0001*102", type=Extension.Type.QUEUE, label="Billing"
    )
    return "0001*102"


async def test_a_wallboard_with_two_chosen_queues_gets_exactly_their_panels(
    watcher: Watcher, third_queue: str
) -> None:
    org = await acme_org(watcher)
    await watcher.refresh_all()
    everything = ["0001*100", "0001*101", third_queue]
    await watcher.publish_panels(org, {q: panel(q, 1) for q in everything} | {"agents": AGENTS})
    board = await board_of(queues=("0001*100", third_queue))
    comm = await connected(board)

    snapshot = "".join(await drain(comm))
    await watcher.publish_panels(org, {q: panel(q, 2) for q in everything})
    change = "".join(await drain(comm))

    assert queues_in(snapshot) == ["0001*100", "0001*102"]
    assert queues_in(change) == ["0001*100", "0001*102"]
    assert '<span data-metric="waiting">2</span>' in change
    assert 'id="agents"' not in snapshot + change
    await comm.disconnect()


async def test_a_panel_change_of_another_queue_sends_the_screen_nothing(
    watcher: Watcher,
) -> None:
    org = await acme_org(watcher)
    await watcher.refresh_all()
    board = await board_of(queues=("0001*100",))
    comm = await connected(board)
    await drain(comm)

    await watcher.publish_panels(org, {"0001*101": panel("0001*101", 5)})

    assert await drain(comm) == []
    await comm.disconnect()


async def test_a_wallboard_that_does_not_list_calls_is_sent_none(
    emulator: Emulator, watcher: Watcher
) -> None:
    waiting = emulator.create_call("0001*100", CALLER, auto=False)
    await watcher.refresh_all()
    comm = await connected(await board_of())

    snapshot = "".join(await drain(comm))
    later = emulator.create_call("0001*101", CALLER, auto=False)
    emulator.answer_call(waiting.id)
    await watcher.refresh_all()
    emulator.hangup_call(later.id)
    await watcher.refresh_all()
    changes = "".join(await drain(comm))

    for html in (snapshot, changes):
        assert "<tr" not in html
        assert waiting.id not in html
        assert later.id not in html
        assert "2071838750" not in html
    await comm.disconnect()


async def test_a_wallboard_that_lists_calls_gets_its_queues_calls_with_callers_masked(
    emulator: Emulator, watcher: Watcher
) -> None:
    board = await board_of(queues=("0001*100",), show_calls=True)
    await watcher.load_directory()  # as the admin's save tells the watcher
    mine = emulator.create_call("0001*100", CALLER, auto=False)
    other = emulator.create_call("0001*101", CALLER, auto=False)
    await watcher.refresh_all()
    comm = await connected(board)

    snapshot = "".join(await drain(comm))
    emulator.answer_call(mine.id)
    later = emulator.create_call("0001*100", CALLER, auto=False)
    await watcher.refresh_all()
    changes = "".join(await drain(comm))
    emulator.hangup_call(mine.id)
    await watcher.refresh_all()
    gone = "".join(await drain(comm))

    assert '<tbody id="calls-body" hx-swap-oob="true">' in snapshot
    assert re.findall(r'<tr id="call-(\w+)"', snapshot) == [mine.id]
    assert sorted(re.findall(r'<tr id="call-(\w+)"', changes)) == sorted([mine.id, later.id])
    assert f'<tr id="call-{mine.id}" hx-swap-oob="delete"' in gone
    for html in (snapshot, changes):
        assert f'<td class="caller">{MASKED}</td>' in html
        assert other.id not in html
    everything = snapshot + changes + gone
    assert "2071838750" not in everything
    assert mine.caller_name not in everything  # a name is not shown either
    assert "data-view-id" not in everything  # no legs, and so no sources
    await comm.disconnect()


def test_numbers_are_masked_keeping_the_first_five_and_last_four_characters() -> None:
    assert mask_number("+442071838750") == "+4420••••8750"
    assert mask_number("+14155550101") == "+1415•••0101"
    assert mask_number("0001*024") == "00••••24"
    assert mask_number("") == ""


@pytest.mark.parametrize("show_calls", [False, True])
async def test_the_first_message_names_the_servers_version(
    watcher: Watcher, show_calls: bool
) -> None:
    await watcher.refresh_all()
    comm = await connected(await board_of(show_calls=show_calls))

    first = await comm.receive_from()

    assert f'<div id="wall-version" hx-swap-oob="true" data-version="{page_version()}"' in first
    await comm.disconnect()


async def test_a_screen_on_an_unknown_token_is_told_it_was_revoked(world: Any) -> None:
    comm = await socket_for(None, "/ws/wallboard/not-a-token/")
    connected, _ = await comm.connect()
    assert connected

    assert await comm.receive_output(timeout=1) == {"type": "websocket.close", "code": 4001}
    await comm.disconnect()


def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    return client


def run_action(board: Wallboard, action: str) -> None:
    response = admin_client().post(
        "/admin/calls/wallboard/", {"action": action, "_selected_action": [board.pk]}
    )
    assert response.status_code == 302


def delete(board: Wallboard) -> None:
    response = admin_client().post(f"/admin/calls/wallboard/{board.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302


def save_with_a_new_threshold(board: Wallboard, enabled: bool = True) -> None:
    form = {
        "name": board.name,
        "organization": board.organization_id,
        "wait_amber": "10",
        "wait_red": "20",
        "service_level_amber": "80",
        "service_level_red": "60",
    }
    if enabled:
        form["enabled"] = "on"
    response = admin_client().post(f"/admin/calls/wallboard/{board.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]


def untick_enabled(board: Wallboard) -> None:
    save_with_a_new_threshold(board, enabled=False)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: run_action(b, "rotate_token"), 4001),
        (lambda b: run_action(b, "revoke"), 4001),
        (delete, 4001),
        (untick_enabled, 4001),
        (save_with_a_new_threshold, 4002),
    ],
    ids=["rotated", "revoked", "deleted", "disabled", "saved"],
)
async def test_an_admins_change_closes_the_screens_within_a_second(
    watcher: Watcher, change: Any, code: int
) -> None:
    await watcher.refresh_all()
    board = await board_of()
    comm = await connected(board)
    await drain(comm)

    await sync_to_async(change)(board)

    assert await comm.receive_output(timeout=1) == {"type": "websocket.close", "code": code}
    await comm.disconnect()
    if code == 4001:
        again = await socket_for(None, f"/ws/wallboard/{board.token}/")
        assert (await again.connect())[0]
        assert (await again.receive_output(timeout=1))["code"] == 4001
        await again.disconnect()


async def test_a_screen_of_another_wallboard_is_not_closed(watcher: Watcher) -> None:
    await watcher.refresh_all()
    board, other = await board_of(), await board_of()
    comm = await connected(other)
    await drain(comm)

    await sync_to_async(run_action)(board, "revoke")

    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


def test_the_page_needs_no_login_and_offers_no_action(world: Any) -> None:
    board = Wallboard.objects.get(organization__name="Acme")

    response = Client().get(f"/wallboard/{board.token}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert re.findall(r'<section id="(queue-[^"]+)" data-queue="([^"]+)"', html) == [
        ("queue-0001-100", "0001*100"),
        ("queue-0001-101", "0001*101"),
    ]
    assert f'ws-connect="/ws/wallboard/{board.token}/"' in html
    assert f'data-version="{page_version()}"' in html
    for action in ("<form", "<button", "hx-post", "hx-get", "<a ", "<input"):
        assert action not in html
    assert "wallboard.js" in html
    assert "wallboard.css" in html


def test_the_page_shows_the_chosen_queues_and_the_thresholds(world: Any) -> None:
    board = Wallboard.objects.create(
        organization=Organization.objects.get(name="Acme"), name="sales", wait_red=90, chime=True
    )
    board.queues.set(Extension.objects.filter(number="0001*101"))

    html = Client().get(f"/wallboard/{board.token}/").content.decode()

    assert re.findall(r'data-queue="([^"]+)"', html) == ["0001*101"]
    assert 'data-wait-amber="30" data-wait-red="90"' in html
    assert 'data-service-level-amber="80" data-service-level-red="60"' in html
    assert 'data-chime="on"' in html


@pytest.mark.parametrize("token", ["revoked", "never-was"])
def test_a_revoked_or_unknown_address_says_the_wallboard_was_revoked(
    world: Any, token: str
) -> None:
    board = Wallboard.objects.get(organization__name="Acme")
    board.token, board.enabled = "revoked", False
    board.save()

    response = Client().get(f"/wallboard/{token}/")

    assert response.status_code == 404
    assert "This wallboard was revoked" in response.content.decode()
    assert "ws-connect" not in response.content.decode()


async def test_screens_hear_the_heartbeat_while_call_events_keep_the_watcher_busy(
    world: Any, emulator: Emulator, uapi: UapiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "HEARTBEAT_EVERY", 0.1)
    call = emulator.create_call("0001*100", auto=False)
    watcher = Watcher(
        uapi,
        channel_layer=get_channel_layer(),
        poll_interval=0.05,
        call_events=False,
        events_poll_interval=60,  # events flowing: no poll, and so no poll's heartbeat
    )
    layer, channel = await listen(live.STATUS_GROUP)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        for _ in range(60):  # a call changing all the time, for 1.2 s
            watcher.call_event(call.id)
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    beats = [m for m in await received(layer, channel) if m["type"] == "calls.status"]

    assert len(beats) >= 5


class Waiting:
    """A floor whose one panel counts the calls of 0001*100, as the queue figures would."""

    async def calls_changed(self, org_id: int, calls: Any, ended: Any) -> None:
        return None

    async def panels(self, org_id: int, calls: Any) -> dict[str, str]:
        return {"0001*100": panel("0001*100", len(calls))}

    async def run(self, watcher: Any, stop: asyncio.Event) -> None:
        await stop.wait()


async def test_a_change_leads_with_its_rows_so_that_browsers_parse_them(
    alice: User, emulator: Emulator, uapi: UapiClient
) -> None:
    """htmx parses a message as a <template>'s content: a <tr> after a <section> is dropped,
    and a call that ended would stay on every screen."""
    watcher = Watcher(
        uapi,
        channel_layer=get_channel_layer(),
        poll_interval=1.0,
        call_events=False,
        floors=[Waiting()],
    )
    await watcher.load_directory()
    call = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    supervisor = await socket_for(alice)
    assert (await supervisor.connect())[0]
    await drain(supervisor)

    emulator.hangup_call(call.id)
    await watcher.refresh_all()  # the call goes, and the queue's figures change with it
    [message] = await drain(supervisor)

    assert f'<tr id="call-{call.id}" hx-swap-oob="delete"' in message
    assert '<span data-metric="waiting">0</span>' in message
    assert message.lstrip().startswith("<tr")
    await supervisor.disconnect()
