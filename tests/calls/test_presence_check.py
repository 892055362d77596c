"""A phone that is really there: before ringing the supervisor's phone, the barge-in asks
VoipNow's Presence whether it is registered and free; when Presence cannot tell, it rings
anyway and says the phone was not checked. Against the emulator in process, both versions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient

from calls import services
from calls.connection import use_uapi_client
from calls.exceptions import AlreadyRinging, BadInput, NotAllowed, PhoneNotReady, Refused
from calls.live import Watcher
from calls.models import BargeInAttempt
from calls.services import UNCHECKED, BargeInResult, barge_in
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.conftest import EMULATOR_URL, AnsweredCall, answered_call, every_voipnow
from tests.support.transport import EmulatorTransport
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

PHONE = "0001*024"
PRESENCE = f"/uapi/extensions/@me/{PHONE}/presence"
NOT_REGISTERED = f"Your phone {PHONE} is not registered: is it on?"
ON_A_CALL = f"Your phone {PHONE} is already on a call: hang up first."


@pytest.fixture
async def client(transport: EmulatorTransport) -> AsyncIterator[UapiClient]:
    """A client on the emulator that records every request it sends."""
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        yield uapi


@pytest.fixture
async def call(emulator: Emulator, watcher: Watcher) -> AnsweredCall:
    return await answered_call(emulator, watcher)


async def ask(uapi: UapiClient, user: User, call: AnsweredCall, **fields: Any) -> BargeInResult:
    fields = {"phone_call_view_id": call.agent_view, "send_call_to": PHONE, **fields}
    return await barge_in(user=user, call_id=call.id, uapi=uapi, **fields)


@sync_to_async
def rows() -> list[tuple[str, int | None, str]]:
    return [
        (a.outcome, a.http_status, a.message) for a in BargeInAttempt.objects.order_by("at", "pk")
    ]


def presence_asked(transport: EmulatorTransport) -> int:
    return sum(path == PRESENCE for method, path, _ in transport.sent if method == "GET")


@pytest.mark.parametrize(
    "registration", [{"registered": False}, {"registration": -2}], ids=["not-registered", "expired"]
)
async def test_a_phone_that_is_not_registered_is_refused_and_nothing_rings(
    alice: User,
    emulator: Emulator,
    call: AnsweredCall,
    client: UapiClient,
    registration: dict[str, Any],
) -> None:
    emulator.set_phone(PHONE, **registration)

    with pytest.raises(PhoneNotReady) as refused:
        await ask(client, alice, call)

    assert (refused.value.status, refused.value.message) == (409, NOT_REGISTERED)
    assert await rows() == [("refused", 409, NOT_REGISTERED)]
    assert emulator.rings == []
    # Nothing rang, so nothing holds the supervisor back once the phone is on.
    emulator.set_phone(PHONE, registered=True)
    result = await ask(client, alice, call)
    assert result.message == f"{PHONE} is ringing: pick up to join."
    assert len(emulator.rings) == 1


async def test_a_phone_already_on_a_call_is_refused(
    alice: User, emulator: Emulator, watcher: Watcher, call: AnsweredCall, client: UapiClient
) -> None:
    emulator.set_phone(PHONE, pickup_delay=0.01)
    await ask(client, alice, call, mode="whisper")
    await wait_until(lambda: emulator.rings[0]["outcome"] == "answered", what="the pickup")
    other = await answered_call(emulator, watcher, "0001*101")

    with pytest.raises(PhoneNotReady) as refused:
        await ask(client, alice, other)

    assert (refused.value.status, refused.value.message) == (409, ON_A_CALL)
    assert [(r["phoneCallId"], r["action"]) for r in emulator.rings] == [(call.id, "Whisper")]
    assert (await rows())[-1] == ("refused", 409, ON_A_CALL)
    # Once she hangs up (the first call ends), the phone is free again.
    emulator.hangup_call(call.id)
    await ask(client, alice, other)
    assert [r["phoneCallId"] for r in emulator.rings] == [call.id, other.id]


async def test_a_phone_still_ringing_for_another_call_is_refused(
    alice: User, emulator: Emulator, watcher: Watcher, call: AnsweredCall, client: UapiClient
) -> None:
    emulator.set_phone(PHONE, answers=False)
    await ask(client, alice, call)
    other = await answered_call(emulator, watcher, "0001*101")

    with pytest.raises(PhoneNotReady) as refused:
        await ask(client, alice, other)

    assert refused.value.message == ON_A_CALL
    assert len(emulator.rings) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503},
        {"kind": "status", "status": 404},
        {"kind": "malformed"},
        {"kind": "drop"},
        {"kind": "timeout"},
    ],
    ids=["unavailable", "refused-with-a-code", "not-json", "cut", "no-answer"],
)
async def test_when_presence_cannot_tell_the_phone_rings_and_the_message_says_unchecked(
    alice: User,
    emulator: Emulator,
    call: AnsweredCall,
    client: UapiClient,
    fault: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "PRESENCE_DEADLINE", 0.3)
    emulator.faults.add({"path": PRESENCE, **fault})

    result = await ask(client, alice, call)

    expected = f"{PHONE} is ringing: pick up to join. {UNCHECKED}"
    assert result.message == expected
    assert await rows() == [("accepted", 200, expected)]
    assert [r["sendCallTo"] for r in emulator.rings] == [PHONE]


async def test_a_checked_phone_is_asked_for_once_before_the_put(
    alice: User, emulator: Emulator, call: AnsweredCall, client: UapiClient, transport: Any
) -> None:
    result = await ask(client, alice, call)

    assert UNCHECKED not in result.message
    uapi_requests = [(m, p) for m, p, _ in transport.sent if p.startswith("/uapi/")]
    assert uapi_requests == [
        ("GET", PRESENCE),
        ("PUT", f"/uapi/phoneCalls/@owner/{call.agent_extension}/{call.id}"),
    ]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"phone_call_view_id": "77"}, BadInput),
        ({"send_call_to": "0001*201"}, NotAllowed),
        ({"wait_for_pickup": "0"}, BadInput),
        ({"mode": "shout"}, BadInput),
    ],
    ids=["a-view-of-no-call", "not-her-phone", "no-wait", "no-such-mode"],
)
async def test_presence_is_not_asked_for_a_request_refused_before(
    alice: User,
    call: AnsweredCall,
    client: UapiClient,
    transport: EmulatorTransport,
    fields: dict[str, Any],
    error: type[Refused],
) -> None:
    with pytest.raises(error):
        await ask(client, alice, call, **fields)
    assert presence_asked(transport) == 0


async def test_presence_is_not_asked_while_the_phone_already_rings_for_this_call(
    alice: User, emulator: Emulator, call: AnsweredCall, client: UapiClient, transport: Any
) -> None:
    emulator.set_phone(PHONE, answers=False)
    await ask(client, alice, call)

    with pytest.raises(AlreadyRinging):
        await ask(client, alice, call)

    assert presence_asked(transport) == 1


async def test_the_dialog_says_why_the_phone_was_refused(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    emulator.set_phone(PHONE, registered=False)
    browser = AsyncClient()
    await sync_to_async(browser.force_login)(alice)

    with use_uapi_client(uapi):
        response = await browser.post(
            f"/calls/{call.id}/barge/",
            {"phone_call_view_id": call.agent_view, "send_call_to": PHONE, "mode": "barge"},
        )

    assert response.status_code == 409
    assert NOT_REGISTERED in response.content.decode()
    assert emulator.rings == []
