"""The client's contract with VoipNow: the BargeIn spec (uapi/bargein-phonecalls.txt), its
error rows and defaults, tokens, paging and Call Events.

Runs against the emulator served on 127.0.0.1 by default, or against the VoipNow named by
UAPI_BASE_URL, UAPI_CLIENT_ID and UAPI_CLIENT_SECRET (see contract_support.py). Every call
and Call Event registration a test makes is removed afterwards.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from calls.uapi.client import UapiClient
from calls.uapi.errors import CODE_WORDS, UapiAuthError, UapiRejected
from calls.uapi.types import PhoneCall, PhoneCallAction, PhoneCallView, UpdatedCall
from calls.uapi.wire import Action, CallEventType, ErrorCode, ViewStatus
from tests.support.waiting import wait_until

from .contract_support import CONTRACT_CALLER_ID, Delivery, Made, Receiver, Target, eventually

pytestmark = pytest.mark.contract

SPEC_CALLER_ID = "John Doe <42420042>"


def barge_in(view_id: str, send_call_to: str | None, **fields: Any) -> PhoneCallAction:
    return PhoneCallAction(
        Action.BARGE_IN, phone_call_view_id=view_id, send_call_to=send_call_to, **fields
    )


async def rings_of(control: httpx.AsyncClient, call_id: str) -> list[dict[str, Any]]:
    rings = (await control.get("/_emulator/rings")).json()
    return [r for r in rings if r["phoneCallId"] == call_id]


async def counter(control: httpx.AsyncClient, path: str, method: str | None = None) -> int:
    """A fault that changes nothing (no latency) but counts the requests it matches."""
    spec: dict[str, Any] = {"path": path, "kind": "latency", "seconds": 0}
    if method:
        spec["method"] = method
    response = await control.post("/_emulator/faults", json=spec)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def hits(control: httpx.AsyncClient, fault_id: int) -> int:
    faults = (await control.get("/_emulator/faults")).json()
    return int(next(f["hits"] for f in faults if f["id"] == fault_id))


async def barge_view(made: Made, call_id: str, send_call_to: str) -> PhoneCallView | None:
    call = await made.current(call_id)
    views = call.views if call else ()
    return next((v for v in views if v.source == (send_call_to,)), None)


async def barge_from_target_phone(
    voipnow: UapiClient, made: Made, target: Target, call_id: str, view_id: str
) -> UpdatedCall:
    """BargeIn on one leg of a call the suite made, from the target's phone, with VoipNow's
    defaults for callerId and waitForPickup."""
    assert target.send_call_to is not None
    return await voipnow.update_call(
        user_id=target.user_id,
        extension=made.extension,
        call_id=call_id,
        action=barge_in(view_id, target.send_call_to),
    )


# ---------------------------------------------------------------------------- the spec


async def test_the_spec_example_barges_in_and_the_new_view_goes_on_call(
    voipnow: UapiClient, made: Made, contract_target: Target
) -> None:
    target = contract_target
    target.need(CONTRACT_SEND_CALL_TO=target.send_call_to)
    assert target.send_call_to is not None
    call = await made.call()
    await made.answered(call.id)
    own = await made.own_view(call.id)

    # The example's payload: sendCallTo, callerId, waitForPickup "20" (a string), the view.
    action = barge_in(own.id, target.send_call_to, caller_id=SPEC_CALLER_ID, wait_for_pickup="20")
    assert action.to_json() == {
        "action": "BargeIn",
        "sendCallTo": target.send_call_to,
        "callerId": SPEC_CALLER_ID,
        "waitForPickup": "20",
        "phoneCallViewId": own.id,
    }
    updated = await voipnow.update_call(
        user_id=target.user_id, extension=made.extension, call_id=call.id, action=action
    )
    assert (updated.id, updated.extension) == (call.id, made.extension)

    async def picked_up() -> PhoneCallView | None:
        view = await barge_view(made, call.id, target.send_call_to or "")
        return view if view is not None and view.status == ViewStatus.ON_CALL else None

    joined = await eventually(picked_up, target=target, what="the barge-in view on call")
    assert joined.destination == (made.extension,)
    assert joined.extension == made.extension
    assert joined.caller_id == SPEC_CALLER_ID
    assert joined.id != own.id
    still = await made.current(call.id)
    assert still is not None
    assert still.view(own.id) is not None  # the original leg stays


async def test_omitted_caller_id_defaults_to_the_phone_terminals(
    voipnow: UapiClient, made: Made, contract_target: Target
) -> None:
    target = contract_target
    target.need(
        CONTRACT_SEND_CALL_TO=target.send_call_to,
        CONTRACT_SEND_CALL_TO_CALLER_ID=target.send_call_to_caller_id,
    )
    assert target.send_call_to is not None
    call = await made.call()
    own = await made.own_view(call.id)
    await barge_from_target_phone(voipnow, made, target, call.id, own.id)

    async def ringing() -> PhoneCallView | None:
        return await barge_view(made, call.id, target.send_call_to or "")

    view = await eventually(ringing, target=target, what="the barge-in view")
    assert view.caller_id == target.send_call_to_caller_id


async def test_omitted_wait_for_pickup_defaults_to_25_seconds(
    voipnow: UapiClient, made: Made, contract_target: Target, control: httpx.AsyncClient
) -> None:
    # A real VoipNow does not show how long it lets a phone ring; only the emulator logs it.
    assert contract_target.send_call_to is not None
    call = await made.call()
    own = await made.own_view(call.id)
    await barge_from_target_phone(voipnow, made, contract_target, call.id, own.id)
    [ring] = await rings_of(control, call.id)
    assert ring["waitForPickup"] == 25
    assert ring["sendCallTo"] == contract_target.send_call_to
    assert ring["action"] == "BargeIn"


# ---------------------------------------------------------------------------- error rows

# (what is wrong, changes to a valid BargeIn, the UAPI code VoipNow answers)
ERROR_ROWS = [
    ("waitForPickup is 0", {"wait_for_pickup": 0}, ErrorCode.PC_TIMEOUT_INVALID),
    ("waitForPickup is negative", {"wait_for_pickup": -5}, ErrorCode.PC_TIMEOUT_INVALID),
    ("waitForPickup is not a number", {"wait_for_pickup": "soon"}, ErrorCode.PC_TIMEOUT_INVALID),
    ("callerId has no <number>", {"caller_id": "John Doe 42420042"}, ErrorCode.PC_CALLERID_INVALID),
    ("callerId is empty", {"caller_id": ""}, ErrorCode.PC_CALLERID_INVALID),
    ("the view is not of the call", {"view": "99"}, ErrorCode.PC_PHONECALLVIEW_INVALID),
    ("the view is missing", {"view": ""}, ErrorCode.PC_PHONECALLVIEW_INVALID),
    ("sendCallTo is missing", {"send_call_to": None}, ErrorCode.PC_SENDCALLTO_INVALID),
    ("sendCallTo is not a phone", {"send_call_to": "non_phone"}, ErrorCode.PC_SENDCALLTO_INVALID),
    (
        "sendCallTo is of another organization",
        {"send_call_to": "other_org"},
        ErrorCode.PC_SENDCALLTO_INVALID,
    ),
    (
        "the call does not exist",
        {"call_id": "0000000000000000dead"},
        ErrorCode.PC_PHONECALL_INVALID,
    ),
    ("the user does not exist", {"user_id": "987654321"}, ErrorCode.USER_INVALID),
    ("the extension does not exist", {"extension": "9999*998"}, ErrorCode.EXTENSION_INVALID),
]


@pytest.mark.parametrize(
    ("wrong", "changes", "code"), ERROR_ROWS, ids=[row[0] for row in ERROR_ROWS]
)
async def test_each_error_row_is_a_rejection_with_its_code(
    voipnow: UapiClient,
    made: Made,
    contract_target: Target,
    wrong: str,
    changes: dict[str, Any],
    code: str,
) -> None:
    target = contract_target
    target.need(CONTRACT_SEND_CALL_TO=target.send_call_to)
    send_call_to = changes.get("send_call_to", target.send_call_to)
    if send_call_to == "non_phone":
        target.need(CONTRACT_NON_PHONE_EXTENSION=target.non_phone_extension)
        send_call_to = target.non_phone_extension
    elif send_call_to == "other_org":
        target.need(CONTRACT_OTHER_ORG_EXTENSION=target.other_org_extension)
        send_call_to = target.other_org_extension
    call = await made.call()
    own = await made.own_view(call.id)
    action = barge_in(
        changes.get("view", own.id),
        send_call_to,
        caller_id=changes.get("caller_id"),
        wait_for_pickup=changes.get("wait_for_pickup"),
    )
    with pytest.raises(UapiRejected) as caught:
        await voipnow.update_call(
            user_id=changes.get("user_id", target.user_id),
            extension=changes.get("extension", made.extension),
            call_id=changes.get("call_id", call.id),
            action=action,
        )
    assert (caught.value.code, caught.value.status) == (code, 400), wrong
    assert not isinstance(caught.value, UapiAuthError)
    assert caught.value.message == CODE_WORDS.get(code, caught.value.detail)
    # Refused means nothing happened: no one was rung into the call.
    assert await barge_view(made, call.id, send_call_to or "") is None


# ---------------------------------------------------------------------------- tokens


async def test_bad_credentials_are_an_auth_error_with_invalid_client(
    contract_target: Target,
) -> None:
    async with UapiClient(
        contract_target.base_url, contract_target.client_id, "not-the-secret"
    ) as client:
        with pytest.raises(UapiAuthError) as caught:
            await client.list_calls_page(user_id=contract_target.user_id)
    assert caught.value.code == "invalid_client"
    assert caught.value.status in (400, 401)


async def test_an_expired_token_is_renewed_before_it_is_used(
    contract_target: Target, control: httpx.AsyncClient
) -> None:
    await control.put("/_emulator/tokens/lifetime", json={"seconds": 1})
    tokens = await counter(control, "/oauth/token.php")
    lists = await counter(control, "/uapi/phoneCalls", "GET")
    # The client's clock, moved by the test: expiry is the client's own judgement here.
    now = [0.0]
    async with UapiClient(
        contract_target.base_url,
        contract_target.client_id,
        contract_target.client_secret,
        clock=lambda: now[0],
    ) as client:
        await client.list_calls_page()
        now[0] += 1.0  # the token's whole lifetime
        await client.list_calls_page()
    # A new token each time, and no request was refused for an expired one.
    assert await hits(control, tokens) == 2
    assert await hits(control, lists) == 2


async def test_a_token_that_expired_unnoticed_costs_one_401_and_one_retry(
    contract_target: Target, control: httpx.AsyncClient
) -> None:
    created = await control.post(
        "/_emulator/calls", json={"queue": "0001*100", "autoAnswer": False}
    )
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    await control.put("/_emulator/tokens/lifetime", json={"seconds": 1})
    tokens = await counter(control, "/oauth/token.php")
    lists = await counter(control, "/uapi/phoneCalls", "GET")
    # A clock that never moves: the client believes its token is fresh, VoipNow does not.
    try:
        async with UapiClient(
            contract_target.base_url,
            contract_target.client_id,
            contract_target.client_secret,
            clock=lambda: 0.0,
        ) as client:
            await client.list_calls_page()
            # VoipNow issued the token before this moment, for one second.
            expires_by = time.time() + 1
            await wait_until(lambda: time.time() > expires_by, 5, "the token to expire")
            page = await client.list_calls_page()
    finally:
        await control.delete(f"/_emulator/calls/{call_id}")
    assert call_id in [call.id for call in page.calls]  # the retry's answer, not the 401
    assert await hits(control, tokens) == 2
    assert await hits(control, lists) == 3  # the second list was refused once, then retried


async def test_a_revoked_token_is_replaced_once_and_the_barge_in_happens_once(
    voipnow: UapiClient, made: Made, contract_target: Target, control: httpx.AsyncClient
) -> None:
    assert contract_target.send_call_to is not None
    call = await made.call()
    own = await made.own_view(call.id)
    await control.post("/_emulator/tokens/revoke", json={})
    tokens = await counter(control, "/oauth/token.php")
    puts = await counter(control, "/uapi/phoneCalls", "PUT")
    updated = await barge_from_target_phone(voipnow, made, contract_target, call.id, own.id)
    assert updated.id == call.id
    # The first PUT was refused (401) before VoipNow did anything, so it was sent again
    # once, with a new token; the phone rang once.
    assert await hits(control, puts) == 2
    assert await hits(control, tokens) == 1
    assert len(await rings_of(control, call.id)) == 1


async def test_a_second_401_is_an_auth_error_and_the_put_is_not_sent_a_third_time(
    voipnow: UapiClient, made: Made, contract_target: Target, control: httpx.AsyncClient
) -> None:
    assert contract_target.send_call_to is not None
    call = await made.call()
    own = await made.own_view(call.id)
    response = await control.post(
        "/_emulator/faults",
        json={"path": "/uapi/phoneCalls", "method": "PUT", "kind": "status", "status": 401},
    )
    refusals = int(response.json()["id"])
    with pytest.raises(UapiAuthError) as caught:
        await barge_from_target_phone(voipnow, made, contract_target, call.id, own.id)
    assert (caught.value.code, caught.value.status) == ("access_denied", 401)
    assert await hits(control, refusals) == 2
    assert await rings_of(control, call.id) == []


# ---------------------------------------------------------------------------- paging


async def test_pages_follow_next_and_list_calls_collects_them_all(
    voipnow: UapiClient, made: Made, contract_target: Target
) -> None:
    page_size = 2
    ours = {(await made.call()).id for _ in range(page_size + 1)}
    user, extension = contract_target.user_id, made.extension

    seen: list[PhoneCall] = []
    start = 0
    pages = 0
    while True:
        page = await voipnow.list_calls_page(
            user_id=user, extension=extension, count=page_size, start_index=start
        )
        pages += 1
        assert len(page.calls) <= page_size
        assert page.total is not None
        assert page.total >= len(ours)
        seen.extend(page.calls)
        start += page_size
        if page.next_url is None:
            assert start >= page.total
            break
        query = parse_qs(urlsplit(page.next_url).query)
        assert query["startIndex"] == [str(start)]
        assert query["count"] == [str(page_size)]
    assert pages >= 2
    assert ours <= {c.id for c in seen}

    everything = await voipnow.list_calls(user_id=user, extension=extension, page_size=page_size)
    assert ours <= {c.id for c in everything}
    assert len({c.id for c in everything}) == len(everything)  # no call twice


# ---------------------------------------------------------------------------- Call Events


async def test_call_events_are_posted_form_encoded_with_the_phone_call_id(
    voipnow: UapiClient,
    made: Made,
    contract_target: Target,
    call_event_receiver: Receiver,
) -> None:
    path = f"/contract-{secrets.token_hex(6)}"
    base = (contract_target.callback_url or call_event_receiver.url).rstrip("/")
    kinds = [CallEventType.DIAL_IN, CallEventType.HANGUP]
    for kind in kinds:
        await made.call_event(type=kind, url=f"{base}{path}/{int(kind)}")
    # The Answer types exist from VoipNow 5 on; 3.x refuses them.
    answer = CallEventType.ANSWER_INCOMING
    answer_url = f"{base}{path}/{int(answer)}"
    if contract_target.voipnow == 3:
        with pytest.raises(UapiRejected) as refused:
            await made.call_event(type=answer, url=answer_url)
        assert refused.value.code == "pcet_type_invalid"
    else:
        await made.call_event(type=answer, url=answer_url)
        kinds.append(answer)
    registered = await voipnow.list_call_events(
        user_id=contract_target.user_id, extension=made.extension
    )
    assert {int(k) for k in kinds} <= {e.type for e in registered if e.url.startswith(base)}

    call = await made.call()

    def of(kind: CallEventType) -> list[Delivery]:
        return [
            d
            for d in call_event_receiver.seen()
            if d.path.endswith(f"{path}/{int(kind)}") and d.fields.get("CallAPIID") == call.id
        ]

    async def dialled_and_answered() -> bool:
        return all(of(kind) for kind in kinds if kind != CallEventType.HANGUP)

    await eventually(dialled_and_answered, target=contract_target, what="Dial-In and Answer")
    await made.answered(call.id)
    assert await voipnow.hang_up(
        call_id=call.id, user_id=contract_target.user_id, extension=made.extension
    )

    async def hung_up() -> list[Delivery]:
        return of(CallEventType.HANGUP)

    [hangup] = await eventually(hung_up, target=contract_target, what="the Hangup event")
    [dial_in] = of(CallEventType.DIAL_IN)
    answered = of(answer)
    assert len(answered) == (1 if answer in kinds else 0)
    name, _, number = CONTRACT_CALLER_ID.rstrip(">").partition(" <")
    for delivery in (dial_in, *answered, hangup):
        assert delivery.method == "POST"
        assert delivery.content_type.startswith("application/x-www-form-urlencoded")
        assert delivery.fields["CallAPIID"] == call.id
        assert delivery.fields["CalledExtension"] == made.extension
        assert delivery.fields["CallFlow"] == "IN"
        assert delivery.fields["CallerIDNum"] == number
        assert delivery.fields["CallerIDName"] == name
    assert dial_in.fields["CallID"]
    assert dial_in.fields["CallID"] == hangup.fields["CallID"]
    assert dial_in.fields["CallStatus"] == "CALLING"
    assert hangup.fields["CallStatus"] == "ANSWER"

    await made.remove_call_events()
    left = await voipnow.list_call_events(user_id=contract_target.user_id, extension=made.extension)
    assert not [e for e in left if path in e.url]


# ---------------------------------------------------------------- Delete PhoneCalls: one leg


@pytest.mark.every_voipnow
async def test_deleting_with_the_phone_that_barged_in_hangs_up_only_its_leg(
    voipnow: UapiClient, made: Made, contract_target: Target
) -> None:
    """How a supervisor leaves: Delete PhoneCalls with their phone as the URI's extension and
    the call's id ends that phone's part; the conversation goes on. A second time, the phone
    has no part in the call: 204."""
    target = contract_target
    target.need(CONTRACT_SEND_CALL_TO=target.send_call_to)
    phone = target.send_call_to
    assert phone is not None
    call = await made.call()
    await made.answered(call.id)
    own = await made.own_view(call.id)
    await barge_from_target_phone(voipnow, made, target, call.id, own.id)

    async def joined() -> PhoneCallView | None:
        view = await barge_view(made, call.id, phone)
        return view if view is not None and view.status == ViewStatus.ON_CALL else None

    await eventually(joined, target=target, what="the barge-in view on call")

    assert await voipnow.hang_up(call_id=call.id, user_id=target.user_id, extension=phone)

    async def left() -> PhoneCall | None:
        now = await made.current(call.id)
        assert now is not None, "the whole call ended"
        return now if await barge_view(made, call.id, phone) is None else None

    after = await eventually(left, target=target, what="the barge-in leg gone")
    still = after.view(own.id)
    assert still is not None
    assert still.status == ViewStatus.ON_CALL
    assert not await voipnow.hang_up(call_id=call.id, user_id=target.user_id, extension=phone)
    assert await made.current(call.id) is not None
