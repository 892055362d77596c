"""Pages and the barge-in endpoint over HTTP: login, CSRF, status codes and their fragments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import AsyncClient, Client

from calls.connection import use_uapi_client
from calls.live import Watcher
from calls.models import BargeInAttempt
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.conftest import answered_call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def use_emulator(uapi: UapiClient) -> AsyncIterator[UapiClient]:
    """The views' UAPI client is the one talking to the in-process emulator."""
    with use_uapi_client(uapi):
        yield uapi


async def logged_in(user: User) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


def test_every_page_needs_a_login(world: Any) -> None:
    client = Client()
    for path in ["/", "/calls/abc/barge/", "/admin/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login/" in response["Location"]


def test_the_login_page_and_healthz_need_none(world: Any) -> None:
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["database"] is True


def test_the_live_page_connects_to_the_socket(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert 'ws-connect="/ws/calls/"' in html
    assert "Acme" in html
    assert "can-barge" in html


async def test_the_barge_dialog_offers_the_calls_views_and_only_her_phones(
    alice: User, emulator: Emulator, watcher: Watcher
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id)
    await watcher.refresh_all()
    client = await logged_in(alice)

    response = await client.get(f"/calls/{call.id}/barge/")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<select name="send_call_to"' in html
    assert 'value="0001*024"' in html
    assert 'value="0001*025"' in html
    assert "0002*024" not in html
    assert 'value="0001*201"' not in html
    for view_id in call.views:
        assert f'name="phone_call_view_id" value="{view_id}"' in html
    assert 'name="wait_for_pickup" type="number" min="1" step="1" value="25"' in html


async def test_bob_cannot_open_the_dialog_of_an_acme_call(
    bob: User, emulator: Emulator, watcher: Watcher
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    await watcher.refresh_all()
    client = await logged_in(bob)
    response = await client.get(f"/calls/{call.id}/barge/")
    assert response.status_code == 404
    assert "no longer live" in response.content.decode()


async def test_barging_in_over_http_answers_the_ringing_phone(
    alice: User, emulator: Emulator, watcher: Watcher, use_emulator: UapiClient
) -> None:
    call = await answered_call(emulator, watcher)
    agent = call.agent_view
    client = await logged_in(alice)

    response = await client.post(
        f"/calls/{call.id}/barge/", {"phone_call_view_id": agent, "send_call_to": "0001*024"}
    )

    assert response.status_code == 200
    assert "0001*024 is ringing: pick up to join." in response.content.decode()
    again = await client.post(
        f"/calls/{call.id}/barge/", {"phone_call_view_id": agent, "send_call_to": "0001*024"}
    )
    assert again.status_code == 409
    assert "already ringing" in again.content.decode()
    assert len(emulator.rings) == 1


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"phone_call_view_id": "99", "send_call_to": "0001*024"}, 400, "not part of this call"),
        ({"send_call_to": "0001*201"}, 403, "not one of your phones"),
        ({"send_call_to": "0001*024", "wait_for_pickup": "0"}, 400, "above 0"),
        ({"send_call_to": "0001*024", "caller_id": "nobody"}, 400, "Name &lt;number&gt;"),
        ({"send_call_to": "0001*024", "mode": "shout"}, 400, "barge in, whisper or listen"),
    ],
)
async def test_bad_input_gets_a_fragment_that_says_why(
    fields: dict[str, str],
    status: int,
    words: str,
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    use_emulator: UapiClient,
) -> None:
    call = await answered_call(emulator, watcher)
    agent = call.agent_view
    client = await logged_in(alice)

    response = await client.post(
        f"/calls/{call.id}/barge/", {"phone_call_view_id": agent, **fields}
    )

    assert response.status_code == status
    assert words in response.content.decode()
    assert await BargeInAttempt.objects.filter(outcome="refused", http_status=status).acount() == 1
    assert emulator.rings == []


async def test_a_voipnow_timeout_answers_504_and_rings_nothing_twice(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient, use_emulator: UapiClient
) -> None:
    call = await answered_call(emulator, watcher)
    agent = call.agent_view
    emulator.faults.add({"path": "/uapi/phoneCalls", "method": "PUT", "kind": "timeout"})
    uapi.deadline = 0.3
    client = await logged_in(alice)

    response = await client.post(
        f"/calls/{call.id}/barge/", {"phone_call_view_id": agent, "send_call_to": "0001*024"}
    )

    assert response.status_code == 504
    assert "VoipNow may have rung your phone" in response.content.decode()
    row = await BargeInAttempt.objects.aget()
    assert (row.outcome, row.http_status) == ("uncertain", 504)


def test_posting_without_the_csrf_token_is_refused(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/calls/abc/barge/", {"send_call_to": "0001*024"})
    assert response.status_code == 403
    assert not BargeInAttempt.objects.exists()


async def post_hook(path: str, body: bytes, method: str = "POST") -> dict[str, Any]:
    """A request to the dashboard's ASGI application, as VoipNow makes it."""
    from channels.testing import HttpCommunicator

    from dashboard.asgi import application

    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    return await HttpCommunicator(
        application, method, path, body=body, headers=headers
    ).get_response()


async def test_the_hook_needs_the_secret(world: Any, settings: Any) -> None:
    from channels.layers import get_channel_layer

    from calls.live import WATCHER_CHANNEL

    assert (await post_hook("/hooks/voipnow/wrong/", b"CallAPIID=x"))["status"] == 404
    ok = await post_hook(
        f"/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/", b"CallAPIID=abc&CallStatus=ANSWER"
    )
    assert (ok["status"], ok["body"]) == (200, b"OK")
    message = await get_channel_layer().receive(WATCHER_CHANNEL)
    assert message == {"type": "call.event", "call_id": "abc", "extensions": []}


@pytest.mark.parametrize(
    ("form", "call_id", "extensions"),
    [
        # An inbound queue call on VoipNow 3.x: no UAPI id; CallID is the PBX's, never used.
        (
            "CallID=1764240000.17&CallAPIID=&CalledExtension=0001*100&CallerExtension=",
            None,
            ["0001*100"],
        ),
        (
            "CallID=1764240000.17&CalledExtension=0001*100&CallerExtension=0001*201",
            None,
            ["0001*100", "0001*201"],
        ),
        # Not of its documented form: never put in a VoipNow URL (test_hooks.py).
        ("CallAPIID=a/b&CallerExtension=0001*201", None, ["0001*201"]),
    ],
)
async def test_an_event_without_a_uapi_id_names_its_extensions_never_the_pbx_id(
    form: str, call_id: str | None, extensions: list[str], world: Any, settings: Any
) -> None:
    from channels.layers import get_channel_layer

    from calls.live import WATCHER_CHANNEL

    path = f"/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/"
    assert (await post_hook(path, form.encode()))["status"] == 200
    message = await get_channel_layer().receive(WATCHER_CHANNEL)
    assert (message["call_id"], message["extensions"]) == (call_id, extensions)


async def test_the_hook_takes_get_events_too_and_refuses_other_methods(
    world: Any, settings: Any
) -> None:
    from channels.layers import get_channel_layer

    from calls.live import WATCHER_CHANNEL

    path = f"/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/"
    assert (await post_hook(path + "?CallID=1.2&CallAPIID=def", b"", "GET"))["status"] == 200
    assert (await get_channel_layer().receive(WATCHER_CHANNEL))["call_id"] == "def"
    assert (await post_hook(path, b"", "PUT"))["status"] == 405


def test_the_admin_lists_the_audit_read_only(world: Any) -> None:
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    assert client.get("/admin/calls/bargeinattempt/").status_code == 200
    assert client.get("/admin/calls/bargeinattempt/add/").status_code == 403
    assert client.get("/admin/calls/extension/add/").status_code == 200


@sync_to_async
def audit_rows() -> list[BargeInAttempt]:
    return list(BargeInAttempt.objects.all())


async def test_on_a_voipnow_before_5_6_the_dialog_offers_no_listening_and_a_listen_is_refused(
    alice: User, emulator: Emulator, watcher: Watcher, use_emulator: UapiClient, settings: Any
) -> None:
    settings.VOIPNOW_VERSION = "3.5.0"
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    dialog = (await client.get(f"/calls/{call.id}/barge/")).content.decode()
    assert 'value="whisper"' in dialog
    assert 'value="listen"' not in dialog
    assert "Listening needs VoipNow 5.6 or later" in dialog

    response = await client.post(
        f"/calls/{call.id}/barge/",
        {"phone_call_view_id": call.agent_view, "send_call_to": "0001*024", "mode": "listen"},
    )
    assert response.status_code == 400
    assert "Your VoipNow does not support listening" in response.content.decode()
    assert emulator.rings == []
    [row] = await audit_rows()
    assert (row.outcome, row.mode) == ("refused", "listen")


async def test_a_voipnow_without_the_action_says_so_in_words(
    alice: User, emulator: Emulator, watcher: Watcher, use_emulator: UapiClient
) -> None:
    call = await answered_call(emulator, watcher)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "PUT", "kind": "status", "status": 501}
    )
    client = await logged_in(alice)
    response = await client.post(
        f"/calls/{call.id}/barge/",
        {"phone_call_view_id": call.agent_view, "send_call_to": "0001*024", "mode": "listen"},
    )
    assert "Your VoipNow does not support listening." in response.content.decode()
    [row] = await audit_rows()
    assert (row.outcome, row.uapi_code) == ("rejected", "request_not_implemented")


async def test_healthz_shows_the_call_event_registrations_and_the_request_count(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    from calls.call_events import CallEventRegistration
    from calls.uapi.budget import RequestBudget

    await CallEventRegistration(uapi, "http://callboard.test/hooks/voipnow/x/").reconcile(
        "0001*100"
    )
    uapi.budget = RequestBudget(100)
    watcher = Watcher(uapi, channel_layer=get_channel_layer(), poll_interval=60, call_events=False)
    await watcher.load_directory()
    await watcher.refresh_all()
    health = (await AsyncClient().get("/healthz")).json()
    assert health["call_events"] == {"0001*100": {"registered": [0, 1, 2, 3, 4]}}
    assert health["watcher"]["uapi"] == {"requests_last_minute": 1, "limit_per_minute": 100}
