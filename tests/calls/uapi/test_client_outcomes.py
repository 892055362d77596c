"""Whether a failed request left Callboard: the client tells "never sent" (VoipNow cannot have
acted) from "sent, answer lost" (it may have: a PUT may have rung a phone), and the short,
unpaced Presence check a barge-in makes before ringing."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from calls.uapi.budget import RequestBudget
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import UapiAnswerLost, UapiUnavailable
from calls.uapi.types import PhoneCallAction, Presence
from calls.uapi.wire import TOKEN_PATH, Action
from tests.conftest import EMULATOR_URL, every_voipnow
from tests.support.waiting import wait_until

from .conftest import serving

pytestmark = every_voipnow

PRESENCE = "/uapi/extensions/@me/0001*024/presence"


def answered(emulator: Emulator) -> str:
    """A call 0001*201 answered; its id."""
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    return call.id


async def barge(client: UapiClient, call_id: str) -> None:
    action = PhoneCallAction(Action.BARGE_IN, phone_call_view_id="01", send_call_to="0001*024")
    await client.update_call(user_id="@me", extension="0001*201", call_id=call_id, action=action)


@pytest.mark.parametrize(
    ("kind", "status"),
    [("drop", None), ("truncated", 202), ("corrupted", 202)],
    ids=["connection-cut-in-the-answer", "half-the-json", "a-notice-ahead-of-the-json"],
)
async def test_an_answer_cut_or_spoilt_after_the_put_is_lost_and_the_phone_did_ring(
    emulator: Emulator, uapi: UapiClient, kind: str, status: int | None
) -> None:
    call_id = answered(emulator)
    emulator.faults.add({"path": "/uapi/phoneCalls", "method": "PUT", "kind": kind})

    with pytest.raises(UapiAnswerLost) as caught:
        await barge(uapi, call_id)

    assert caught.value.sent
    assert not caught.value.timed_out
    assert caught.value.status == status
    assert [r["sendCallTo"] for r in emulator.rings] == ["0001*024"]


async def test_a_body_that_is_not_json_on_a_2xx_is_lost_even_when_nothing_happened(
    emulator: Emulator, uapi: UapiClient
) -> None:
    # A proxy's page in place of VoipNow's answer: the client cannot tell it from a spoilt
    # answer to a PUT that rang, so it says the same.
    call_id = answered(emulator)
    emulator.faults.add({"path": "/uapi/phoneCalls", "method": "PUT", "kind": "malformed"})

    with pytest.raises(UapiAnswerLost) as caught:
        await barge(uapi, call_id)

    assert caught.value.status == 200
    assert emulator.rings == []


async def test_a_read_timeout_is_lost_and_voipnow_rings_after_the_client_gave_up(
    emulator_app: Any, emulator: Emulator
) -> None:
    call_id = answered(emulator)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "PUT", "kind": "latency", "seconds": 0.6}
    )
    async with (
        serving(emulator_app) as url,
        UapiClient(url, "demo-app", "demo-secret", timeout=httpx.Timeout(3.0, read=0.2)) as client,
    ):
        with pytest.raises(UapiAnswerLost) as caught:
            await barge(client, call_id)
        assert emulator.rings == []  # not yet
        await wait_until(lambda: emulator.rings, what="VoipNow to act on the PUT")
    assert caught.value.timed_out
    assert caught.value.sent


async def test_a_refused_connection_is_not_sent_and_not_lost(
    emulator_app: Any, emulator: Emulator
) -> None:
    call_id = answered(emulator)
    async with serving(emulator_app) as url:
        client = UapiClient(url, "demo-app", "demo-secret")
        await client.list_calls_page()  # the token is in hand: the PUT itself meets the refusal
    try:
        with pytest.raises(UapiUnavailable) as caught:
            await barge(client, call_id)
    finally:
        await client.aclose()

    assert not isinstance(caught.value, UapiAnswerLost)
    assert caught.value.sent is False
    assert caught.value.message == "VoipNow could not be reached (ConnectError)."
    assert emulator.rings == []


@pytest.mark.parametrize(
    "spec",
    [{"kind": "drop"}, {"kind": "status", "status": 503}, {"kind": "timeout"}],
    ids=["drop", "5xx", "timeout"],
)
async def test_a_failed_token_request_means_the_request_itself_was_not_sent(
    emulator_app: Any, emulator: Emulator, spec: dict[str, Any]
) -> None:
    call_id = answered(emulator)
    emulator.faults.add({"path": TOKEN_PATH, **spec})
    transport = httpx.ASGITransport(app=emulator_app)
    async with UapiClient(
        EMULATOR_URL, "demo-app", "demo-secret", transport=transport, deadline=0.3
    ) as client:
        with pytest.raises(UapiUnavailable) as caught:
            await barge(client, call_id)
    assert not isinstance(caught.value, UapiAnswerLost)
    assert caught.value.sent is False
    assert emulator.rings == []


async def test_a_5xx_to_the_put_was_sent_and_answered_not_lost(
    emulator: Emulator, uapi: UapiClient
) -> None:
    call_id = answered(emulator)
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "method": "PUT", "kind": "status", "status": 503}
    )
    with pytest.raises(UapiUnavailable) as caught:
        await barge(uapi, call_id)
    assert not isinstance(caught.value, UapiAnswerLost)
    assert (caught.value.sent, caught.value.status) == (True, 503)


# ---------------------------------------------------------------------------- Presence


async def test_presence_of_one_phone_says_whether_it_is_there_and_free(
    emulator: Emulator, uapi: UapiClient
) -> None:
    [idle] = await uapi.presence("0001*024")
    emulator.set_phone("0001*024", registered=False)
    [off] = await uapi.presence("0001*024")
    emulator.set_phone("0001*024", registration=-2)
    [expired] = await uapi.presence("0001*024")

    assert idle == Presence("0001*024", status=1, registered=True, unregistered=False)
    assert (off.registered, off.unregistered) == (False, True)
    assert (expired.registered, expired.unregistered) == (False, True)


async def test_a_presence_check_with_a_deadline_gives_up_at_it(
    emulator_app: Any, emulator: Emulator
) -> None:
    emulator.faults.add({"path": PRESENCE, "kind": "latency", "seconds": 5})
    async with serving(emulator_app) as url, UapiClient(url, "demo-app", "demo-secret") as client:
        await client.list_calls_page()  # the token first: the deadline is the check's own
        started = time.perf_counter()
        with pytest.raises(UapiUnavailable) as caught:
            await client.presence("0001*024", deadline=0.3)
        took = time.perf_counter() - started
        emulator.faults.remove()
    assert caught.value.timed_out
    assert 0.25 < took < 1.5


async def test_an_unpaced_presence_check_is_counted_and_does_not_wait_for_the_budget(
    emulator_app: Any,
) -> None:
    budget = RequestBudget(1)  # one request a minute: a second paced one would wait a minute
    transport = httpx.ASGITransport(app=emulator_app)
    async with UapiClient(
        EMULATOR_URL, "demo-app", "demo-secret", transport=transport, budget=budget
    ) as client:
        await client.list_calls_page()
        started = time.perf_counter()
        [presence] = await client.presence("0001*024", paced=False)
        took = time.perf_counter() - started
    assert presence.extension == "0001*024"
    assert took < 1.0
    assert budget.last_minute() == 2


@pytest.mark.parametrize(
    ("registrations", "registered", "unregistered"),
    [
        ([{"registration": -1}], False, True),
        ([{"registration": "-2"}], False, True),
        ([{"registration": -2}, {"registration": -1}], False, True),
        ([{"registration": -2}, {"registration": 1}], True, False),
        ([], False, False),
        ([{"registration": 0}], False, False),
        ([{"registration": -1}, {"agent": "a phone"}], False, False),
    ],
    ids=["not", "expired", "both", "one-of-two", "none-listed", "unknown", "one-unknown"],
)
def test_a_phone_is_unregistered_only_when_every_registration_says_so(
    registrations: list[dict[str, Any]], registered: bool, unregistered: bool
) -> None:
    presence = Presence.from_json(
        {"extension": "0001*024", "status": 0, "registration": registrations}
    )
    assert (presence.registered, presence.unregistered) == (registered, unregistered)


async def test_a_2xx_whose_json_is_not_the_documented_answer_is_still_an_acceptance() -> None:
    # The status arrived whole and the body is JSON: VoipNow said yes, in another shape.
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(202, json={"result": "queued"})

    transport = httpx.MockTransport(answer)
    action = PhoneCallAction(Action.BARGE_IN, phone_call_view_id="01", send_call_to="0003*024")
    async with UapiClient("http://voipnow.test", "app", "secret", transport=transport) as client:
        updated = await client.update_call(
            user_id="@owner", extension="0003*210", call_id="b817d2618fe6f1804333", action=action
        )
    assert (updated.id, updated.extension) == ("b817d2618fe6f1804333", "0003*210")
