"""The barge-in service: every rule, the audit row of every attempt, and VoipNow's answers,
against the emulator in process."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from calls.exceptions import (
    AlreadyRinging,
    BadInput,
    CallboardError,
    NoSuchCall,
    NotAllowed,
    VoipNowRejected,
    VoipNowUnavailable,
)
from calls.live import Watcher
from calls.models import BargeInAttempt
from calls.services import BargeInResult, barge_in
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.conftest import AnsweredCall, answered_call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def call(emulator: Emulator, watcher: Watcher) -> AnsweredCall:
    """An Acme call an agent answered, as the watcher published it."""
    return await answered_call(emulator, watcher)


async def ask(uapi: UapiClient, user: User, call: AnsweredCall, **fields: Any) -> BargeInResult:
    """Barge in on ``call``'s agent leg from 0001*024 unless ``fields`` say otherwise."""
    fields = {"phone_call_view_id": call.agent_view, "send_call_to": "0001*024", **fields}
    return await barge_in(user=user, call_id=call.id, uapi=uapi, **fields)


async def refused(
    expected: type[CallboardError], uapi: UapiClient, user: User, call: AnsweredCall, **fields: Any
) -> CallboardError:
    with pytest.raises(expected) as info:
        await ask(uapi, user, call, **fields)
    return info.value


@sync_to_async
def attempts() -> list[BargeInAttempt]:
    return list(BargeInAttempt.objects.order_by("at", "pk"))


async def test_it_rings_the_supervisor_phone_and_audits_the_acceptance(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    result = await ask(uapi, alice, call)

    assert result.message == "0001*024 is ringing: pick up to join."
    [row] = await attempts()
    assert row.outcome == BargeInAttempt.Outcome.ACCEPTED
    assert row.http_status == 200
    assert row.send_call_to == "0001*024"
    assert row.target_extension == call.agent_extension
    assert row.latency_ms is not None
    assert row.username == "alice"
    rings = emulator.rings
    assert [(r["phoneCallId"], r["sendCallTo"], r["action"]) for r in rings] == [
        (call.id, "0001*024", "BargeIn")
    ]
    # Nothing chosen: VoipNow's defaults apply (the phone's caller ID, 25 s).
    assert rings[0]["callerId"] == "Alice Supervisor <0001024>"
    assert float(rings[0]["waitForPickup"]) == 25


@pytest.mark.parametrize(("mode", "action"), [("whisper", "Whisper"), ("listen", "Monitor")])
async def test_whisper_and_listen_send_their_own_actions(
    mode: str, action: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    result = await ask(uapi, alice, call, mode=mode)

    assert result.message.startswith("0001*024 is ringing: pick up to ")
    assert [r["action"] for r in emulator.rings] == [action]
    [row] = await attempts()
    assert (row.mode, row.outcome) == (mode, "accepted")


async def test_it_refuses_a_call_of_another_organization_as_if_it_did_not_exist(
    bob: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(NoSuchCall, uapi, bob, call, send_call_to="0002*024")

    assert exc.status == 404
    [row] = await attempts()
    assert (row.outcome, row.http_status, row.username) == ("refused", 404, "bob")
    assert emulator.rings == []


async def test_it_refuses_a_call_that_is_not_live(
    alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    gone = AnsweredCall(id="0123456789abcdef0123", agent_view="01", agent_extension="0001*201")
    exc = await refused(NoSuchCall, uapi, alice, gone)
    assert exc.status == 404
    [row] = await attempts()
    assert row.outcome == "refused"


async def test_input_longer_than_the_audit_columns_is_audited_cut_to_fit(
    alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    long_id = "f" * 100
    gone = AnsweredCall(id=long_id, agent_view="0" * 40, agent_extension="0001*201")
    await refused(NoSuchCall, uapi, alice, gone, send_call_to="1" * 40, caller_id="A" * 300)
    [row] = await attempts()
    assert (row.phone_call_id, row.phone_call_view_id) == ("f" * 64, "0" * 16)
    assert (row.send_call_to, row.caller_id) == ("1" * 24, "A" * 200)


async def test_it_refuses_a_view_that_is_not_part_of_the_call(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, phone_call_view_id="77")
    assert exc.status == 400
    assert emulator.rings == []


@pytest.mark.parametrize(
    ("phone", "why"),
    [
        ("0001*100", "not a phone terminal"),
        ("0002*024", "not an extension of Acme"),
        ("0001*201", "not one of your phones"),
        ("9999*999", "not an extension of Acme"),
    ],
)
async def test_it_refuses_an_extension_the_supervisor_may_not_ring(
    phone: str, why: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(NotAllowed, uapi, alice, call, send_call_to=phone)
    assert why in exc.message
    [row] = await attempts()
    assert (row.outcome, row.http_status, row.send_call_to) == ("refused", 403, phone)
    assert emulator.rings == []


@pytest.mark.parametrize("wait", ["0", "-5", "abc", "2.5"])
async def test_it_refuses_a_wait_for_pickup_that_is_not_a_positive_integer(
    wait: str, alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    await refused(BadInput, uapi, alice, call, wait_for_pickup=wait)
    [row] = await attempts()
    assert (row.outcome, row.http_status, row.wait_for_pickup) == ("refused", 400, wait)


@pytest.mark.parametrize(
    "caller_id",
    [
        "John Doe",
        "<123>",
        "John <abc>",
        "John Doe 123",
        # Looser than VoipNow's grammar: VoipNow would refuse these after a phone was chosen.
        "O'Brien <123>",
        "Acme-Sales <0001100>",
        "Desk 2 <0001024>",
        "John Doe <12 34>",
        "John\tDoe <123>",
        "John\nDoe <123>",
    ],
)
async def test_it_refuses_a_caller_id_not_of_the_form_name_number(
    caller_id: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, caller_id=caller_id)
    assert "Name <number>" in exc.message
    assert emulator.rings == []


async def test_it_refuses_a_mode_it_does_not_know(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await refused(BadInput, uapi, alice, call, mode="shout")
    assert emulator.rings == []


async def test_it_sends_the_chosen_caller_id_and_wait(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await ask(
        uapi,
        alice,
        call,
        send_call_to="0001*025",
        caller_id="Quality Team <+3334444>",
        wait_for_pickup="12",
    )
    [ring] = emulator.rings
    assert ring["callerId"] == "Quality Team <+3334444>"
    assert float(ring["waitForPickup"]) == 12


async def test_a_second_barge_in_while_the_first_rings_is_refused_and_rings_nothing(
    alice: User, emulator: Emulator, watcher: Watcher, call: AnsweredCall, uapi: UapiClient
) -> None:
    emulator.set_phone("0001*024", answers=False)
    await ask(uapi, alice, call)
    await watcher.refresh_all()

    exc = await refused(AlreadyRinging, uapi, alice, call)

    assert exc.status == 409
    assert len(emulator.rings) == 1
    outcomes = [(a.outcome, a.http_status) for a in await attempts()]
    assert outcomes == [("accepted", 200), ("refused", 409)]


async def test_a_user_without_the_barge_in_permission_is_refused(
    alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    await sync_to_async(alice.groups.clear)()
    alice = await User.objects.aget(pk=alice.pk)  # fresh permission cache

    await refused(NotAllowed, uapi, alice, call)
    [row] = await attempts()
    assert (row.outcome, row.http_status) == ("refused", 403)


async def test_voipnow_refusing_a_call_that_ended_answers_404_with_its_code(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    emulator.hangup_call(call.id)  # the watcher has not seen it end yet

    exc = await refused(VoipNowRejected, uapi, alice, call)

    assert exc.status == 404
    assert exc.code == "pc_phonecall_invalid"
    [row] = await attempts()
    assert (row.outcome, row.uapi_code) == ("rejected", "pc_phonecall_invalid")
    # Nothing rang, so the supervisor may try again at once (no 409).
    await refused(VoipNowRejected, uapi, alice, call)


async def test_a_5xx_from_voipnow_says_unreachable_and_is_not_retried(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "PUT", "kind": "status", "status": 503, "times": 1}
    )

    exc = await refused(VoipNowUnavailable, uapi, alice, call)

    assert exc.status == 502
    # Had it been retried, the second PUT would have passed the one-shot fault and rung.
    assert emulator.rings == []
    [row] = await attempts()
    assert (row.outcome, row.http_status) == ("unavailable", 502)
