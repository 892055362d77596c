"""The barge-in service: every rule, the audit row of every attempt, and VoipNow's answers,
against the emulator in process."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from calls.exceptions import (
    AlreadyRinging,
    BadInput,
    NoSuchCall,
    NotAllowed,
    VoipNowRejected,
    VoipNowUnavailable,
)
from calls.live import Watcher
from calls.models import BargeInAttempt
from calls.services import barge_in
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator

pytestmark = pytest.mark.django_db(transaction=True)


async def live_call(emulator: Emulator, watcher: Watcher, queue: str = "0001*100") -> Any:
    """A call answered by an agent, as the watcher has published it."""
    call = emulator.create_call(queue, auto=False)
    emulator.answer_call(call.id)
    await watcher.refresh_all()
    return call


def agent_view(call: Any) -> str:
    """The id of the agent's leg of an emulator call."""
    return next(v.id for v in call.views.values() if v.role == "agent")


def attempts() -> list[BargeInAttempt]:
    return list(BargeInAttempt.objects.order_by("at", "pk"))


async def test_it_rings_the_supervisor_phone_and_audits_the_acceptance(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)

    result = await barge_in(
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*024",
        uapi=uapi,
    )

    assert result.message == "0001*024 is ringing: pick up to join."
    [row] = await _attempts()
    assert row.outcome == BargeInAttempt.Outcome.ACCEPTED
    assert row.http_status == 200
    assert row.send_call_to == "0001*024"
    assert row.latency_ms is not None
    assert row.username == "alice"
    rings = emulator.rings
    assert [(r["phoneCallId"], r["sendCallTo"], r["action"]) for r in rings] == [
        (call.id, "0001*024", "BargeIn")
    ]
    # Nothing chosen: VoipNow's defaults apply (the phone's caller ID, 25 s).
    assert rings[0]["callerId"] == "Alice Supervisor <0001024>"
    assert float(rings[0]["waitForPickup"]) == 25


async def _attempts() -> list[BargeInAttempt]:
    from asgiref.sync import sync_to_async

    return await sync_to_async(attempts)()


async def refused(expected: type[Exception], **kwargs: Any) -> Exception:
    with pytest.raises(expected) as info:
        await barge_in(**kwargs)
    return info.value


async def test_it_refuses_a_call_of_another_organization_as_if_it_did_not_exist(
    bob: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher, "0001*100")

    exc = await refused(
        NoSuchCall,
        user=bob,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0002*024",
        uapi=uapi,
    )

    assert exc.status == 404  # type: ignore[attr-defined]
    [row] = await _attempts()
    assert (row.outcome, row.http_status, row.username) == ("refused", 404, "bob")
    assert emulator.rings == []


async def test_it_refuses_a_call_that_is_not_live(
    alice: User, watcher: Watcher, uapi: UapiClient, emulator: Emulator
) -> None:
    await refused(
        NoSuchCall,
        user=alice,
        call_id="0123456789abcdef0123",
        phone_call_view_id="01",
        send_call_to="0001*024",
        uapi=uapi,
    )
    [row] = await _attempts()
    assert row.outcome == "refused"


async def test_it_refuses_a_view_that_is_not_part_of_the_call(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    exc = await refused(
        BadInput,
        user=alice,
        call_id=call.id,
        phone_call_view_id="77",
        send_call_to="0001*024",
        uapi=uapi,
    )
    assert exc.status == 400  # type: ignore[attr-defined]
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
    phone: str, why: str, alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    exc = await refused(
        NotAllowed,
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to=phone,
        uapi=uapi,
    )
    assert why in exc.message  # type: ignore[attr-defined]
    [row] = await _attempts()
    assert (row.outcome, row.http_status, row.send_call_to) == ("refused", 403, phone)
    assert emulator.rings == []


@pytest.mark.parametrize("wait", ["0", "-5", "abc", "2.5"])
async def test_it_refuses_a_wait_for_pickup_that_is_not_a_positive_integer(
    wait: str, alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    await refused(
        BadInput,
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*024",
        wait_for_pickup=wait,
        uapi=uapi,
    )
    [row] = await _attempts()
    assert (row.outcome, row.http_status, row.wait_for_pickup) == ("refused", 400, wait)


@pytest.mark.parametrize("caller_id", ["John Doe", "<123>", "John <abc>", "John Doe 123"])
async def test_it_refuses_a_caller_id_not_of_the_form_name_number(
    caller_id: str, alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    exc = await refused(
        BadInput,
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*024",
        caller_id=caller_id,
        uapi=uapi,
    )
    assert "Name <number>" in exc.message  # type: ignore[attr-defined]
    assert emulator.rings == []


async def test_it_sends_the_chosen_caller_id_and_wait(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    await barge_in(
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*025",
        caller_id="Quality Team <+3334444>",
        wait_for_pickup="12",
        uapi=uapi,
    )
    [ring] = emulator.rings
    assert ring["callerId"] == "Quality Team <+3334444>"
    assert float(ring["waitForPickup"]) == 12


async def test_a_second_barge_in_while_the_first_rings_is_refused_and_rings_nothing(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    emulator.set_phone("0001*024", answers=False)
    kwargs: dict[str, Any] = dict(
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*024",
        uapi=uapi,
    )
    await barge_in(**kwargs)
    await watcher.refresh_all()

    exc = await refused(AlreadyRinging, **kwargs)

    assert exc.status == 409  # type: ignore[attr-defined]
    assert len(emulator.rings) == 1
    outcomes = [(a.outcome, a.http_status) for a in await _attempts()]
    assert outcomes == [("accepted", 200), ("refused", 409)]


async def test_a_user_without_the_barge_in_permission_is_refused(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    from asgiref.sync import sync_to_async

    call = await live_call(emulator, watcher)
    await sync_to_async(alice.groups.clear)()
    alice = await User.objects.aget(pk=alice.pk)  # fresh permission cache

    await refused(
        NotAllowed,
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*024",
        uapi=uapi,
    )
    [row] = await _attempts()
    assert (row.outcome, row.http_status) == ("refused", 403)


async def test_voipnow_refusing_a_call_that_ended_answers_404_with_its_code(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    view_id = agent_view(call)
    emulator.hangup_call(call.id)  # the watcher has not seen it end yet

    exc = await refused(
        VoipNowRejected,
        user=alice,
        call_id=call.id,
        phone_call_view_id=view_id,
        send_call_to="0001*024",
        uapi=uapi,
    )

    assert exc.status == 404  # type: ignore[attr-defined]
    assert exc.code == "pc_phonecall_invalid"  # type: ignore[attr-defined]
    [row] = await _attempts()
    assert (row.outcome, row.uapi_code) == ("rejected", "pc_phonecall_invalid")
    # Nothing rang, so the supervisor may try again at once (no 409).
    await refused(
        VoipNowRejected,
        user=alice,
        call_id=call.id,
        phone_call_view_id=view_id,
        send_call_to="0001*024",
        uapi=uapi,
    )


async def test_a_5xx_from_voipnow_says_unreachable_and_is_not_retried(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await live_call(emulator, watcher)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "PUT", "kind": "status", "status": 503, "times": 1}
    )

    exc = await refused(
        VoipNowUnavailable,
        user=alice,
        call_id=call.id,
        phone_call_view_id=agent_view(call),
        send_call_to="0001*024",
        uapi=uapi,
    )

    assert exc.status == 502  # type: ignore[attr-defined]
    # Had it been retried, the second PUT would have passed the one-shot fault and rung.
    assert emulator.rings == []
    [row] = await _attempts()
    assert (row.outcome, row.http_status) == ("unavailable", 502)
