"""Honest outcomes: a barge-in whose answer was lost says the phone may have rung (and the
audit says "uncertain"), one that never left says so and may be tried again at once, and one
whose browser left mid-request still ends with a final audit row. Against the emulator, in
process and on a real port where a timeout or a refused connection has to be real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient
from starlette.applications import Starlette

from calls.connection import use_uapi_client
from calls.exceptions import AlreadyRinging, VoipNowUnavailable
from calls.live import Watcher
from calls.models import BargeInAttempt
from calls.services import LEFT_BEFORE_SENDING, MAY_HAVE_RUNG, UNCHECKED, BargeInResult, barge_in
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.emulator.faults import Fault
from tests.conftest import EMULATOR_URL, AnsweredCall, answered_call, every_voipnow
from tests.support.servers import serving
from tests.support.transport import EmulatorTransport
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

PHONE = "0001*024"
PUT = {"path": "/uapi/phoneCalls", "method": "PUT"}


@pytest.fixture
async def client(transport: EmulatorTransport) -> AsyncIterator[UapiClient]:
    """A client on the emulator in process that records every request it sends."""
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        yield uapi


@pytest.fixture
async def call(emulator: Emulator, watcher: Watcher) -> AnsweredCall:
    return await answered_call(emulator, watcher)


async def ask(uapi: UapiClient, user: User, call: AnsweredCall) -> BargeInResult:
    return await barge_in(
        user=user,
        call_id=call.id,
        uapi=uapi,
        phone_call_view_id=call.agent_view,
        send_call_to=PHONE,
    )


@sync_to_async
def rows() -> list[BargeInAttempt]:
    return list(BargeInAttempt.objects.order_by("at", "pk"))


def puts(transport: EmulatorTransport) -> int:
    return sum(method == "PUT" for method, _, _ in transport.sent)


# ---------------------------------------------------------------------------- answer lost


@pytest.mark.parametrize(
    "kind", ["drop", "truncated", "corrupted"], ids=["cut", "half-the-json", "not-json"]
)
async def test_an_answer_lost_after_the_put_says_the_phone_may_have_rung(
    alice: User, emulator: Emulator, call: AnsweredCall, client: UapiClient, kind: str
) -> None:
    emulator.faults.add({**PUT, "kind": kind, "times": 1})

    with pytest.raises(VoipNowUnavailable) as lost:
        await ask(client, alice, call)

    assert (lost.value.status, lost.value.message) == (502, MAY_HAVE_RUNG)
    [row] = await rows()
    assert (row.outcome, row.http_status) == ("uncertain", 502)
    assert row.message.startswith(MAY_HAVE_RUNG)
    # The audit is right to doubt: VoipNow did ring the phone.
    assert [(r["phoneCallId"], r["sendCallTo"]) for r in emulator.rings] == [(call.id, PHONE)]
    # And the phone may be ringing, so a second click is not sent.
    with pytest.raises(AlreadyRinging):
        await ask(client, alice, call)
    assert len(emulator.rings) == 1


async def test_the_dialog_tells_the_supervisor_to_check_the_phone(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    emulator.faults.add({**PUT, "kind": "drop"})
    browser = AsyncClient()
    await sync_to_async(browser.force_login)(alice)

    with use_uapi_client(uapi):
        response = await browser.post(
            f"/calls/{call.id}/barge/",
            {"phone_call_view_id": call.agent_view, "send_call_to": PHONE, "mode": "barge"},
        )

    assert response.status_code == 502
    html = response.content.decode()
    assert "VoipNow may have rung your phone: check it before trying again." in html
    assert "could not be reached" not in html
    assert len(emulator.rings) == 1


async def test_a_read_timeout_is_uncertain_and_the_phone_rings_afterwards(
    alice: User, emulator_app: Starlette, emulator: Emulator, call: AnsweredCall
) -> None:
    emulator.faults.add({**PUT, "kind": "latency", "seconds": 0.6})
    async with (
        serving(emulator_app) as url,
        UapiClient(url, "demo-app", "demo-secret", timeout=httpx.Timeout(3.0, read=0.3)) as late,
    ):
        with pytest.raises(VoipNowUnavailable) as lost:
            await ask(late, alice, call)
        assert emulator.rings == []
        await wait_until(lambda: emulator.rings, what="VoipNow to act on the late PUT")

    assert (lost.value.status, lost.value.message) == (504, MAY_HAVE_RUNG)
    [row] = await rows()
    assert (row.outcome, row.http_status) == ("uncertain", 504)
    assert "did not answer in time" in row.message


# ---------------------------------------------------------------------------- never sent


async def test_a_refused_connection_is_unavailable_nothing_rang_and_a_retry_is_allowed(
    alice: User, emulator_app: Starlette, emulator: Emulator, call: AnsweredCall
) -> None:
    async with serving(emulator_app) as url:
        gone = UapiClient(url, "demo-app", "demo-secret")
        await gone.list_calls_page()  # the token in hand: the PUT meets the closed port itself
    try:
        with pytest.raises(VoipNowUnavailable) as first:
            await ask(gone, alice, call)
        # Not "already ringing": nothing was sent, so nothing holds the supervisor back.
        with pytest.raises(VoipNowUnavailable):
            await ask(gone, alice, call)
    finally:
        await gone.aclose()

    assert first.value.status == 502
    assert "could not be reached" in first.value.message
    assert "Nothing was sent" in first.value.message
    assert MAY_HAVE_RUNG not in first.value.message
    row = (await rows())[0]
    assert (row.outcome, row.http_status) == ("unavailable", 502)
    # Presence could not be asked either; the audit says so.
    assert row.message.endswith(UNCHECKED)
    assert emulator.rings == []


async def test_a_5xx_is_unavailable_and_keeps_the_guard(
    alice: User, emulator: Emulator, call: AnsweredCall, client: UapiClient
) -> None:
    emulator.faults.add({**PUT, "kind": "status", "status": 500, "times": 1})

    with pytest.raises(VoipNowUnavailable) as failed:
        await ask(client, alice, call)

    assert failed.value.status == 502
    assert MAY_HAVE_RUNG not in failed.value.message
    assert [r.outcome for r in await rows()] == ["unavailable"]
    # VoipNow answered that it failed, which does not prove nothing rang: no second PUT yet.
    with pytest.raises(AlreadyRinging):
        await ask(client, alice, call)


# ---------------------------------------------------------------------------- browser gone


async def abandon(attempt: asyncio.Task[BargeInResult]) -> None:
    """The view's task is cancelled, as daphne does when the browser goes away; the service
    returns only once its row is final."""
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt


def hit(fault: Fault) -> bool:
    return fault.hits > 0


async def test_a_browser_gone_before_the_put_ends_the_attempt_refused_and_nothing_rings(
    alice: User,
    emulator: Emulator,
    call: AnsweredCall,
    client: UapiClient,
    transport: EmulatorTransport,
) -> None:
    slow = emulator.faults.add(
        {"path": f"/uapi/extensions/@me/{PHONE}/presence", "kind": "latency", "seconds": 0.3}
    )
    attempt = asyncio.create_task(ask(client, alice, call))
    await wait_until(lambda: hit(slow), what="the Presence check to be under way")

    await abandon(attempt)

    [row] = await rows()
    assert (row.outcome, row.http_status, row.message) == ("refused", 499, LEFT_BEFORE_SENDING)
    assert puts(transport) == 0
    assert emulator.rings == []
    # Nothing rang: the supervisor may try again at once.
    emulator.faults.remove()
    await ask(client, alice, call)
    assert len(emulator.rings) == 1


async def test_a_browser_gone_during_the_checks_leaves_no_pending_row(
    alice: User,
    emulator: Emulator,
    call: AnsweredCall,
    client: UapiClient,
    transport: EmulatorTransport,
) -> None:
    attempt = asyncio.create_task(ask(client, alice, call))
    await asyncio.sleep(0)  # the service has started: its checks run in a thread

    await abandon(attempt)

    [row] = await rows()
    assert (row.outcome, row.http_status, row.message) == ("refused", 499, LEFT_BEFORE_SENDING)
    assert transport.sent == []
    assert emulator.rings == []


async def test_a_browser_gone_during_the_put_lets_it_finish_and_audits_its_answer(
    alice: User,
    emulator: Emulator,
    call: AnsweredCall,
    client: UapiClient,
    transport: EmulatorTransport,
) -> None:
    slow = emulator.faults.add({**PUT, "kind": "latency", "seconds": 0.3})
    attempt = asyncio.create_task(ask(client, alice, call))
    await wait_until(lambda: hit(slow), what="the PUT to be under way")

    await abandon(attempt)

    [row] = await rows()
    assert (row.outcome, row.http_status) == ("accepted", 200)
    assert (row.latency_ms or 0) >= 300  # the answer was waited for
    assert puts(transport) == 1
    assert [r["sendCallTo"] for r in emulator.rings] == [PHONE]


async def test_a_browser_gone_during_a_put_that_gets_no_answer_is_audited_uncertain(
    alice: User, emulator: Emulator, call: AnsweredCall, client: UapiClient
) -> None:
    hanging = emulator.faults.add({**PUT, "kind": "timeout"})
    client.deadline = 0.3
    attempt = asyncio.create_task(ask(client, alice, call))
    await wait_until(lambda: hit(hanging), what="the PUT to be under way")

    await abandon(attempt)

    [row] = await rows()
    assert (row.outcome, row.http_status) == ("uncertain", 504)
    assert hanging.hits == 1  # sent once, and not again


async def test_cancelling_again_and_again_still_waits_for_the_final_outcome(
    alice: User, emulator: Emulator, call: AnsweredCall, client: UapiClient
) -> None:
    slow = emulator.faults.add({**PUT, "kind": "latency", "seconds": 0.2})
    attempt = asyncio.create_task(ask(client, alice, call))
    await wait_until(lambda: hit(slow), what="the PUT to be under way")

    for _ in range(3):
        attempt.cancel()
        await asyncio.sleep(0.01)
    with pytest.raises(asyncio.CancelledError):
        await attempt

    assert [r.outcome for r in await rows()] == ["accepted"]
    assert len(emulator.rings) == 1
