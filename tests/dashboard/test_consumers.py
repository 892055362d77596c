"""The live socket through the real ASGI router: who may connect, what each screen receives."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from calls.live import Watcher, org_group
from calls.models import Extension
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from dashboard.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def socket_for(
    user: User | None, path: str = "/ws/calls/", origin: tuple[bytes, bytes] = ORIGIN
) -> WebsocketCommunicator:
    headers = [origin]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, path, headers=headers)


async def drain(comm: WebsocketCommunicator, quiet: float = 0.3) -> list[str]:
    """Everything the socket receives until it stays quiet for ``quiet`` seconds."""
    out = []
    while not await comm.receive_nothing(timeout=quiet):
        out.append(await comm.receive_from())
    return out


def row_ids(html: str) -> set[str]:
    return set(re.findall(r'<tr id="call-([0-9a-f]+)"', html))


async def organization_of(user: User) -> int:
    """The primary key of the Organization ``user`` supervises."""
    return await sync_to_async(lambda: user.supervisor.organization_id)()


class LossyLayer:
    """The channel layer, except that it loses the next message sent to one group, as a
    layer may (a Redis hiccup, a full channel)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.losing: str | None = None
        self.lost = 0

    def lose_next(self, group: str) -> None:
        self.losing = group

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if group == self.losing:
            self.losing = None
            self.lost += 1
            return
        await self.layer.group_send(group, message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)


async def test_an_anonymous_socket_is_told_it_is_signed_out_and_gets_nothing(world: Any) -> None:
    comm = await socket_for(None)
    connected, _ = await comm.connect()
    assert connected

    # Closed before anything is sent, with the code that sends the page to the login page.
    assert await comm.receive_output(timeout=1) == {"type": "websocket.close", "code": 4003}
    await comm.disconnect()


async def test_a_socket_from_another_origin_is_refused(alice: User) -> None:
    comm = await socket_for(alice, origin=(b"origin", b"http://evil.example"))
    connected, _ = await comm.connect()
    assert connected is False


async def test_a_user_who_supervises_nothing_is_closed_before_any_data(world: Any) -> None:
    admin = await User.objects.aget(username="admin")
    comm = await socket_for(admin)
    connected, _ = await comm.connect()
    assert connected

    assert await comm.receive_output(timeout=1) == {"type": "websocket.close", "code": 4004}
    await comm.disconnect()


async def test_each_supervisor_sees_only_their_organization(
    alice: User, bob: User, emulator: Emulator, watcher: Watcher
) -> None:
    acme = emulator.create_call("0001*100", auto=False)
    globex = emulator.create_call("0002*100", auto=False)
    await watcher.refresh_all()
    alice_ws, bob_ws = await socket_for(alice), await socket_for(bob)
    assert (await alice_ws.connect())[0]
    assert (await bob_ws.connect())[0]

    alice_snapshot = "".join(await drain(alice_ws))
    bob_snapshot = "".join(await drain(bob_ws))
    assert row_ids(alice_snapshot) == {acme.id}
    assert row_ids(bob_snapshot) == {globex.id}
    assert '<tbody id="calls-body" hx-swap-oob="true">' in alice_snapshot

    later = emulator.create_call("0001*101", auto=False)
    emulator.answer_call(acme.id)
    await watcher.refresh_all()

    alice_got = "".join(await drain(alice_ws))
    bob_got = "".join(await drain(bob_ws))
    assert row_ids(alice_got) == {acme.id, later.id}
    assert f'<tr id="call-{later.id}"' in alice_got
    assert 'hx-swap-oob="true"' in alice_got
    assert acme.id not in bob_got
    assert later.id not in bob_got

    emulator.hangup_call(acme.id)
    await watcher.refresh_all()
    gone = "".join(await drain(alice_ws))
    assert f'<tr id="call-{acme.id}" hx-swap-oob="delete"' in gone
    assert acme.id not in "".join(await drain(bob_ws))
    await alice_ws.disconnect()
    await bob_ws.disconnect()


async def test_fragments_are_escaped(alice: User, emulator: Emulator, watcher: Watcher) -> None:
    await Extension.objects.filter(number="0001*100").aupdate(label="<script>alert('x')</script>")
    await watcher.load_directory()
    emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    ws = await socket_for(alice)
    await ws.connect()

    html = "".join(await drain(ws))

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    await ws.disconnect()


async def test_every_view_of_a_call_carries_its_id_and_status_in_words(
    alice: User, emulator: Emulator, watcher: Watcher
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id)
    await watcher.refresh_all()
    ws = await socket_for(alice)
    await ws.connect()

    html = "".join(await drain(ws))

    views = re.findall(
        r'data-view-id="(\d+)"[^>]*><b>\d+</b>[^<]*<span class="status">([a-z ]+)</span>', html
    )
    assert views == [(v.id, "on call") for v in sorted(call.views.values(), key=lambda v: v.id)]
    await ws.disconnect()


async def test_a_missed_change_resends_the_snapshot(
    alice: User, emulator: Emulator, uapi: UapiClient
) -> None:
    layer = LossyLayer(get_channel_layer())
    watcher = Watcher(uapi, channel_layer=layer, poll_interval=1.0, call_events=False)
    await watcher.load_directory()
    first = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    ws = await socket_for(alice)
    await ws.connect()
    await drain(ws)
    # Publish a change the socket never hears of: the layer drops it.
    layer.lose_next(org_group(await organization_of(alice)))
    emulator.answer_call(first.id)
    await watcher.refresh_all()
    assert layer.lost == 1
    second = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()

    html = "".join(await drain(ws))

    assert '<tbody id="calls-body"' in html
    assert row_ids(html) == {first.id, second.id}
    await ws.disconnect()


async def test_a_heartbeat_newer_than_the_screen_resends_the_snapshot(
    alice: User, emulator: Emulator, watcher: Watcher
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    ws = await socket_for(alice)
    await ws.connect()
    await drain(ws)
    org = await organization_of(alice)
    layer = get_channel_layer()

    await layer.group_send(
        "calls.status",
        {"type": "calls.status", "html": "<div id='x'></div>", "versions": {str(org): 1}},
    )
    assert await drain(ws) == ["<div id='x'></div>"]  # an older version: nothing missed
    await layer.group_send(
        "calls.status",
        {"type": "calls.status", "html": "<div id='x'></div>", "versions": {str(org): 2**62}},
    )
    [resync] = await drain(ws)
    assert '<tbody id="calls-body"' in resync
    assert call.id in resync
    await ws.disconnect()


async def test_a_large_snapshot_arrives_in_several_messages_in_order(
    alice: User, emulator: Emulator, watcher: Watcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import consumers

    monkeypatch.setattr(consumers, "SNAPSHOT_CHUNK", 3000)
    ids = [emulator.create_call("0001*100", auto=False).id for _ in range(8)]
    await watcher.refresh_all()
    ws = await socket_for(alice)
    await ws.connect()

    messages = await drain(ws)

    assert len(messages) > 2
    assert '<tbody id="calls-body"' in messages[0]
    assert all("<tbody" not in m for m in messages[1:])
    assert all(len(m) < 3000 + 2000 for m in messages[1:])
    assert re.findall(r'<tr id="call-([0-9a-f]+)"', "".join(messages)) == ids
    await ws.disconnect()


async def test_a_new_screen_gets_the_panels_with_the_snapshot_and_then_their_changes(
    alice: User, emulator: Emulator, watcher: Watcher
) -> None:
    org = await organization_of(alice)
    await watcher.refresh_all()
    await watcher.publish_panels(
        org, {"agents": '<section id="agents" hx-swap-oob="true">1</section>'}
    )
    comm = await socket_for(alice)
    connected, _ = await comm.connect()
    assert connected
    [first] = await drain(comm)
    assert '<section id="agents" hx-swap-oob="true">1</section>' in first
    await watcher.publish_panels(
        org, {"agents": '<section id="agents" hx-swap-oob="true">2</section>'}
    )
    assert await drain(comm) == ['<section id="agents" hx-swap-oob="true">2</section>']
    await comm.disconnect()
