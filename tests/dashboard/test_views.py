"""Pages and the barge-in endpoint over HTTP: login, CSRF, status codes and their fragments."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import Permission, User
from django.test import AsyncClient, Client

from calls.connection import use_uapi_client
from calls.live import Watcher
from calls.models import BargeInAttempt, Organization
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

    fields = {"phone_call_view_id": agent, "send_call_to": "0001*024", "mode": "barge"}
    response = await client.post(f"/calls/{call.id}/barge/", fields)

    assert response.status_code == 200
    assert "0001*024 is ringing: pick up to join." in response.content.decode()
    again = await client.post(f"/calls/{call.id}/barge/", fields)
    assert again.status_code == 409
    assert "already ringing" in again.content.decode()
    assert len(emulator.rings) == 1


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"phone_call_view_id": "99", "send_call_to": "0001*024"}, 400, "not part of this call"),
        ({"send_call_to": "0001*201"}, 403, "not one of your phones"),
        ({"send_call_to": "0001*024", "wait_for_pickup": "0"}, 400, "from 1 to 600"),
        ({"send_call_to": "0001*024", "wait_for_pickup": "10" * 20}, 400, "from 1 to 600"),
        ({"send_call_to": "0001*024", "caller_id": "nobody"}, 400, "Name &lt;number&gt;"),
        # Longer than the caller ID column: refused, not replaced by the phone's own.
        ({"send_call_to": "0001*024", "caller_id": "A" * 201 + " <1>"}, 400, "at most 200"),
        ({"send_call_to": "0001*024", "caller_id": "Ann <1>\r\nX"}, 400, "one line"),
        ({"send_call_to": "0001*024", "mode": "shout"}, 400, "Choose listen, whisper or barge in"),
        ({"send_call_to": "0001*024", "mode": "barge\n"}, 400, "Choose listen, whisper or barge"),
    ],
)
async def test_bad_input_gets_a_fragment_that_says_why(
    fields: dict[str, str | None],
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

    posted = {"phone_call_view_id": agent, "mode": "barge", **fields}
    response = await client.post(
        f"/calls/{call.id}/barge/", {k: v for k, v in posted.items() if v is not None}
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
        f"/calls/{call.id}/barge/",
        {"phone_call_view_id": agent, "send_call_to": "0001*024", "mode": "barge"},
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


# ---- rights per mode, the reason, the address -------------------------------------------------


@sync_to_async
def holding_only(user: User, *codenames: str) -> User:
    """``user`` with exactly these calls rights, given directly; a fresh object."""
    user.groups.clear()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="calls", codename__in=codenames)
    )
    return User.objects.get(pk=user.pk)


def offered_modes(html: str) -> list[tuple[str, bool]]:
    """The dialog's modes in order, each with whether it is the one checked."""
    return [
        (value, "checked" in rest)
        for value, rest in re.findall(
            r'<input type="radio" name="mode" value="(\w+)"([^>]*)>', html
        )
    ]


@pytest.mark.parametrize(
    ("codenames", "modes", "hint"),
    [
        (
            ("listen", "whisper", "barge_in"),
            [("barge", True), ("whisper", False), ("listen", False)],
            None,
        ),
        (("listen",), [("listen", True)], "Ask an admin for the rights to barge in and whisper."),
        (
            ("whisper", "listen"),
            [("whisper", True), ("listen", False)],
            "Ask an admin for the right to barge in.",
        ),
        (("barge_in",), [("barge", True)], "Ask an admin for the rights to whisper and listen."),
    ],
)
async def test_the_dialog_offers_only_the_modes_held(
    codenames: tuple[str, ...],
    modes: list[tuple[str, bool]],
    hint: str | None,
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
) -> None:
    alice = await holding_only(alice, *codenames)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)

    html = (await client.get(f"/calls/{call.id}/barge/")).content.decode()

    assert offered_modes(html) == modes
    assert html.count("Ask an admin for the right") == (hint is not None)
    if hint:
        assert hint in html


async def test_on_voipnow_3_a_listener_is_offered_nothing_and_told_why(
    alice: User, emulator: Emulator, watcher: Watcher, settings: Any
) -> None:
    settings.VOIPNOW_VERSION = "3.5.0"
    alice = await holding_only(alice, "listen")
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    html = (await client.get(f"/calls/{call.id}/barge/")).content.decode()
    assert offered_modes(html) == []
    assert "Listening needs VoipNow 5.6 or later" in html
    assert "Ask an admin for the rights to barge in and whisper." in html


async def test_a_mode_not_held_is_refused_over_http_with_403_and_audited(
    alice: User, emulator: Emulator, watcher: Watcher, use_emulator: UapiClient
) -> None:
    alice = await holding_only(alice, "listen")
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)

    response = await client.post(
        f"/calls/{call.id}/barge/",
        {"phone_call_view_id": call.agent_view, "send_call_to": "0001*024", "mode": "barge"},
    )

    assert response.status_code == 403
    assert "You may not barge in on calls: ask an admin for the right." in response.content.decode()
    assert emulator.rings == []
    [row] = await audit_rows()
    assert (row.outcome, row.http_status, row.mode) == ("refused", 403, "barge")


@pytest.mark.parametrize(("codenames", "shown"), [((), False), (("listen",), True)])
def test_the_live_page_offers_the_dialog_to_a_holder_of_any_mode(
    codenames: tuple[str, ...], shown: bool, alice: User
) -> None:
    alice = async_to_sync(holding_only)(alice, *codenames)
    client = Client()
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert ("live can-barge" in html) is shown


@pytest.mark.parametrize(
    ("required", "reasons", "field"),
    [
        (False, "", '<input name="reason" maxlength="500" autocomplete="off">'),
        (True, "", '<input name="reason" maxlength="500" autocomplete="off" required>'),
        (True, "Coaching\nQuality <check>", '<select name="reason" required>'),
        (False, "Coaching\nQuality <check>", '<select name="reason">'),
    ],
)
async def test_the_dialog_asks_for_a_reason_as_the_organization_wants(
    required: bool,
    reasons: str,
    field: str,
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
) -> None:
    await Organization.objects.filter(name="Acme").aupdate(
        reason_required=required, reasons=reasons
    )
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)

    html = (await client.get(f"/calls/{call.id}/barge/")).content.decode()

    assert field in html
    assert ("Reason (optional)" in html) is not required
    if reasons:
        options = re.findall(r'<option value="([^"]*)">', html.split('name="reason"')[1])
        assert options == ["", "Coaching", "Quality &lt;check&gt;"]


class AsyncClientFrom(AsyncClient):
    """Requests from ``address``, put in the ASGI scope's ``client`` as daphne puts the peer's."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        scope["client"] = [self.address, 50000]
        return scope


async def test_the_client_address_is_audited_and_x_forwarded_for_is_not_trusted(
    alice: User, emulator: Emulator, watcher: Watcher, use_emulator: UapiClient
) -> None:
    call = await answered_call(emulator, watcher)
    client = AsyncClientFrom("203.0.113.9")
    await sync_to_async(client.force_login)(alice)

    response = await client.post(
        f"/calls/{call.id}/barge/",
        {"phone_call_view_id": call.agent_view, "send_call_to": "0001*024", "mode": "listen"},
        headers={"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.8"},
    )
    refused = await client.post(f"/calls/{call.id}/barge/", {"mode": "shout"})

    assert (response.status_code, refused.status_code) == (200, 400)
    assert [row.address for row in await audit_rows()] == ["203.0.113.9", "203.0.113.9"]


async def test_a_reason_and_an_unknown_field_over_http(
    alice: User, emulator: Emulator, watcher: Watcher, use_emulator: UapiClient
) -> None:
    await Organization.objects.filter(name="Acme").aupdate(
        reason_required=True, reasons="Coaching\nComplaint"
    )
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    fields = {"phone_call_view_id": call.agent_view, "send_call_to": "0001*024", "mode": "listen"}

    missing = await client.post(f"/calls/{call.id}/barge/", fields)
    chosen = await client.post(
        f"/calls/{call.id}/barge/", {**fields, "reason": "Complaint", "volume": "loud"}
    )

    assert missing.status_code == 400
    assert "Acme asks for a reason" in missing.content.decode()
    assert chosen.status_code == 200
    assert [(r.outcome, r.reason) for r in await audit_rows_in_order()] == [
        ("refused", ""),
        ("accepted", "Complaint"),
    ]


@sync_to_async
def audit_rows_in_order() -> list[BargeInAttempt]:
    return list(BargeInAttempt.objects.order_by("at", "pk"))


async def test_without_any_right_the_dialog_does_not_open(
    alice: User, emulator: Emulator, watcher: Watcher
) -> None:
    alice = await holding_only(alice)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    response = await client.get(f"/calls/{call.id}/barge/")
    assert response.status_code == 403
    assert "not allowed to barge in" in response.content.decode()
    assert 'name="mode"' not in response.content.decode()
