"""Cancel and leave over HTTP, against the emulator over its app: a supervisor hangs up their
own leg only, the call goes on, the audit row says how and when, and the supervisor may ring
again at once; everyone else is refused. Also the dialog's word on who is already on the
call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.test import AsyncClient, Client
from starlette.applications import Starlette

from calls import store
from calls.connection import use_uapi_client
from calls.demo_data import SUPERVISORS_GROUP
from calls.live import Watcher
from calls.models import BargeInAttempt, Extension, Organization, Supervisor
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.wire import ViewStatus
from tests.conftest import EMULATOR_URL, AnsweredCall, answered_call
from tests.support.layer import acme_id
from tests.support.waiting import eventually, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class Recording(httpx.AsyncBaseTransport):
    """The emulator in process, recording each request's method and full URL."""

    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.sent: list[tuple[str, httpx.URL]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, request.url))
        return await self._inner.handle_async_request(request)


@pytest.fixture
def recording(emulator_app: Starlette) -> Recording:
    return Recording(emulator_app)


@pytest.fixture
async def views_uapi(recording: Recording) -> AsyncIterator[UapiClient]:
    """The views' UAPI client: the emulator, every request recorded."""
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=recording) as client:
        with use_uapi_client(client):
            yield client


@pytest.fixture
async def running(watcher: Watcher) -> AsyncIterator[Watcher]:
    """The watcher's loop: it hears the services on its channel and polls often."""
    watcher.poll_interval = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        yield watcher
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def logged_in(user: User) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


def leg_of(emulator: Emulator, call_id: str, phone: str) -> int | None:
    call = emulator.calls.get(call_id)
    views = call.views.values() if call else ()
    return next((v.status for v in views if v.source == [phone]), None)


@sync_to_async
def latest_attempt(username: str = "alice") -> BargeInAttempt:
    return BargeInAttempt.objects.filter(username=username).latest("at")


async def barge(
    client: AsyncClient, call: AnsweredCall, phone: str = "0001*024", **more: str
) -> Any:
    return await client.post(
        f"/calls/{call.id}/barge/",
        {"phone_call_view_id": call.agent_view, "send_call_to": phone, "mode": "barge", **more},
    )


async def the_rest_goes_on(emulator: Emulator, call: AnsweredCall) -> None:
    live = emulator.calls[call.id]
    assert sorted(live.views) == ["00", "01"]
    assert all(v.status == ViewStatus.ON_CALL for v in live.views.values())


async def test_cancel_while_ringing_hangs_up_only_the_supervisor_s_phone(
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    running: Watcher,
    views_uapi: UapiClient,
    recording: Recording,
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    rang = await barge(client, call)
    assert rang.status_code == 200
    # The dialog's answer offers Cancel.
    assert f'hx-post="/calls/{call.id}/cancel/"' in rang.content.decode()
    assert leg_of(emulator, call.id, "0001*024") == ViewStatus.RINGING

    response = await client.post(f"/calls/{call.id}/cancel/")

    assert response.status_code == 200
    assert "Cancelled: 0001*024 stops ringing." in response.content.decode()
    assert leg_of(emulator, call.id, "0001*024") is None
    await the_rest_goes_on(emulator, call)
    assert emulator.rings[0]["outcome"] == "cancelled"
    deletes = [url for method, url in recording.sent if method == "DELETE"]
    assert [(u.path, u.query) for u in deletes] == [
        (f"/uapi/phoneCalls/@me/0001*024/{call.id}", b"")
    ]
    row = await latest_attempt()
    assert (row.left_how, row.joined_at) == ("cancelled", None)
    assert row.left_at is not None
    # The guard is free: she may ring again at once.
    again = await barge(client, call)
    assert again.status_code == 200, again.content
    assert len(emulator.rings) == 2


async def test_leave_after_joining_hangs_up_only_the_supervisor_s_leg(
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    running: Watcher,
    views_uapi: UapiClient,
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    assert (await barge(client, call, mode="listen")).status_code == 200

    async def joined() -> bool:
        return (await latest_attempt()).joined_at is not None

    await eventually(joined, what="the watcher recording the join")
    assert 'data-supervisor="alice" data-mode="listen" data-state="on_call"' in (
        await store.published_rows(await acme_id(), [call.id])
    ).get(call.id, "")

    response = await client.post(f"/calls/{call.id}/leave/")

    assert response.status_code == 200
    assert "You left the call: 0001*024 was hung up." in response.content.decode()
    assert leg_of(emulator, call.id, "0001*024") is None
    await the_rest_goes_on(emulator, call)
    row = await latest_attempt()
    assert row.left_how == "left"
    assert row.left_at is not None
    assert row.joined_at is not None
    assert row.left_at >= row.joined_at

    async def row_without_her() -> bool:
        rows = await store.published_rows(await acme_id(), [call.id])
        return 'data-supervisor="alice"' not in rows.get(call.id, "x")

    await eventually(row_without_her, what="the row without alice")
    # The watcher saw the leg go after she left: the row keeps what she did.
    await running.refresh_all()
    assert (await latest_attempt()).left_how == "left"
    again = await barge(client, call)
    assert again.status_code == 200, again.content


async def test_leaving_twice_is_refused_the_second_time(
    alice: User, emulator: Emulator, watcher: Watcher, views_uapi: UapiClient
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    await barge(client, call)
    assert (await client.post(f"/calls/{call.id}/cancel/")).status_code == 200

    second = await client.post(f"/calls/{call.id}/leave/")

    assert second.status_code == 409
    assert "not on this call" in second.content.decode()
    assert (await latest_attempt()).left_how == "cancelled"


async def test_a_call_of_another_organization_is_404_and_hangs_up_nothing(
    alice: User,
    bob: User,
    emulator: Emulator,
    watcher: Watcher,
    views_uapi: UapiClient,
    recording: Recording,
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    await barge(await logged_in(alice), call)

    response = await (await logged_in(bob)).post(f"/calls/{call.id}/leave/")

    assert response.status_code == 404
    assert "no longer live" in response.content.decode()
    assert leg_of(emulator, call.id, "0001*024") == ViewStatus.RINGING
    assert not [m for m, _ in recording.sent if m == "DELETE"]
    assert (await latest_attempt()).left_at is None


async def test_a_call_the_supervisor_has_no_leg_on_is_409(
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    views_uapi: UapiClient,
    recording: Recording,
) -> None:
    call = await answered_call(emulator, watcher)
    carol = await make_carol()
    emulator.set_phone("0001*025", answers=False)
    await barge(await logged_in(carol), call, "0001*025")

    response = await (await logged_in(alice)).post(f"/calls/{call.id}/leave/")

    assert response.status_code == 409
    assert "Your phone is not on this call" in response.content.decode()
    assert leg_of(emulator, call.id, "0001*025") == ViewStatus.RINGING
    assert not [m for m, _ in recording.sent if m == "DELETE"]


def test_cancel_and_leave_need_a_login(world: Any) -> None:
    client = Client()
    for path in ["/calls/abc/cancel/", "/calls/abc/leave/"]:
        response = client.post(path)
        assert response.status_code == 302, path
        assert "/login/" in response["Location"]


def test_cancel_and_leave_need_the_csrf_token(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for path in ["/calls/abc/cancel/", "/calls/abc/leave/"]:
        assert client.post(path).status_code == 403, path


def test_cancel_and_leave_are_posts(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    for path in ["/calls/abc/cancel/", "/calls/abc/leave/"]:
        assert client.get(path).status_code == 405, path


async def test_voipnow_failing_the_hang_up_says_so_and_keeps_the_leg_followed(
    alice: User, emulator: Emulator, watcher: Watcher, views_uapi: UapiClient
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    await barge(client, call)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "DELETE", "kind": "status", "status": 503}
    )

    response = await client.post(f"/calls/{call.id}/cancel/")

    assert response.status_code == 502
    text = response.content.decode()
    assert "VoipNow could not be reached" in text
    assert "hang up on the phone itself" in text
    assert leg_of(emulator, call.id, "0001*024") == ViewStatus.RINGING
    row = await latest_attempt()
    assert (row.left_at, row.left_how) == (None, "")
    # The phone still rings: a second ring is still refused.
    assert (await barge(client, call)).status_code == 409


async def test_voipnow_refusing_the_hang_up_gives_its_reason(
    alice: User, emulator: Emulator, watcher: Watcher, views_uapi: UapiClient
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    client = await logged_in(alice)
    await barge(client, call)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "DELETE", "kind": "status", "status": 403}
    )

    response = await client.post(f"/calls/{call.id}/cancel/")

    assert response.status_code == 502
    assert "VoipNow refused to hang up 0001*024" in response.content.decode()
    assert (await latest_attempt()).left_at is None


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


async def test_the_dialog_warns_that_a_colleague_is_already_listening(
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    running: Watcher,
    views_uapi: UapiClient,
) -> None:
    carol = await make_carol()
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = await answered_call(emulator, watcher)
    alice_client = await logged_in(alice)
    await barge(alice_client, call, mode="listen")
    await wait_until(
        lambda: leg_of(emulator, call.id, "0001*024") == ViewStatus.ON_CALL, what="the join"
    )

    async def listed() -> bool:
        rows = await store.published_rows(await acme_id(), [call.id])
        return 'data-state="on_call"' in rows.get(call.id, "")

    await eventually(listed, what="the watcher publishing the join")

    dialog = (await (await logged_in(carol)).get(f"/calls/{call.id}/barge/")).content.decode()
    assert 'data-supervisor="alice" data-mode="listen">alice is already listening.' in dialog
    mine = (await alice_client.get(f"/calls/{call.id}/barge/")).content.decode()
    assert "You are already listening." in mine
    assert f'hx-post="/calls/{call.id}/leave/"' in mine
    assert "is already" not in mine


async def test_a_phone_rung_by_an_attempt_whose_answer_was_lost_is_shown_and_can_be_cancelled(
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    running: Watcher,
    views_uapi: UapiClient,
) -> None:
    emulator.set_phone("0001*024", answers=False)
    call = await answered_call(emulator, watcher)
    emulator.faults.add({"path": "/uapi/phoneCalls", "method": "PUT", "kind": "drop", "times": 1})
    client = await logged_in(alice)

    lost = await barge(client, call)

    assert lost.status_code == 502
    assert (await latest_attempt()).outcome == "uncertain"
    assert leg_of(emulator, call.id, "0001*024") == ViewStatus.RINGING

    async def shown_ringing() -> bool:
        rows = await store.published_rows(await acme_id(), [call.id])
        return 'data-supervisor="alice"' in rows.get(call.id, "")

    await eventually(shown_ringing, what="alice shown on the call while her phone rings")

    response = await client.post(f"/calls/{call.id}/cancel/")

    assert response.status_code == 200, response.content
    assert leg_of(emulator, call.id, "0001*024") is None
    await the_rest_goes_on(emulator, call)
    row = await latest_attempt()
    assert (row.outcome, row.left_how) == ("uncertain", "cancelled")
