"""Update PhoneCalls on the emulator: BargeIn exactly per its spec, and the other actions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from calls.uapi.emulator import Emulator
from tests.support.waiting import wait_until

from .conftest import BASE

AGENT_URL = "/uapi/phoneCalls/@me/0001*201"


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


@pytest.fixture
async def call_id(emulator: Emulator) -> str:
    """A call of Acme's Sales queue answered by Ann (0001*201): views 00 and 01."""
    call = emulator.create_call("0001*100", "+14155550101", auto=False)
    emulator.answer_call(call.id, "0001*201")
    return call.id


def barge(**overrides: Any) -> dict[str, Any]:
    body = {
        "action": "BargeIn",
        "sendCallTo": "0001*024",
        "callerId": "John Doe <42420042>",
        "waitForPickup": "20",
        "phoneCallViewId": "01",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def put(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str, body: Any
) -> httpx.Response:
    return await http.put(f"{AGENT_URL}/{call_id}", json=body, headers=auth)


async def test_a_barge_in_is_accepted_with_202_and_the_spec_body(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    response = await put(http, auth, call_id, barge())
    assert response.status_code == 202
    assert response.json() == {
        "id": call_id,
        "extension": "0001*201",
        "link": {"self": f"{BASE}/uapi/phoneCalls/@me/0001*201/{call_id}"},
    }


async def test_a_barge_in_rings_then_joins_the_call(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.2)
    await put(http, auth, call_id, barge())
    ringing = emulator.calls[call_id].to_json(BASE)["phoneCallView"][2]
    assert ringing["id"] == "02"
    assert ringing["extension"] == "0001*201"
    assert ringing["source"] == ["0001*024"]
    assert ringing["destination"] == ["0001*201"]
    assert ringing["status"] == 3
    assert "ringing" in ringing
    assert "answered" not in ringing
    assert ringing["callerId"] == "John Doe <42420042>"
    assert ringing["flow"] == 2
    await wait_until(lambda: emulator.calls[call_id].views["02"].status == 5)
    listed = (await http.get(f"{AGENT_URL}/{call_id}", headers=auth)).json()[0]
    joined = listed["entry"][0]["phoneCallView"][2]
    assert joined["status"] == 5
    assert "answered" in joined
    assert emulator.rings[-1]["outcome"] == "answered"


async def test_a_barge_in_that_is_not_picked_up_is_removed_after_wait_for_pickup(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    emulator.set_phone("0001*024", answers=False)
    await put(http, auth, call_id, barge(waitForPickup=0.2))
    assert "02" in emulator.calls[call_id].views
    await wait_until(lambda: "02" not in emulator.calls[call_id].views)
    assert sorted(emulator.calls[call_id].views) == ["00", "01"]
    assert emulator.rings[-1]["outcome"] == "noAnswer"


async def test_the_caller_id_defaults_to_the_phone_terminal_s(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    await put(http, auth, call_id, barge(callerId=None, waitForPickup=None))
    ring = emulator.rings[-1]
    assert ring["callerId"] == "Alice Supervisor <0001024>"
    assert ring["waitForPickup"] == 25


async def test_the_ring_log_shows_one_ring_per_request(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    await put(http, auth, call_id, barge())
    await put(http, auth, call_id, barge(sendCallTo="025"))
    rings = (await http.get("/_emulator/rings")).json()
    assert [(r["phoneCallId"], r["sendCallTo"], r["action"]) for r in rings] == [
        (call_id, "0001*024", "BargeIn"),
        (call_id, "0001*025", "BargeIn"),
    ]
    assert rings[0]["callerId"] == "John Doe <42420042>"
    assert rings[0]["waitForPickup"] == 20


async def test_it_accepts_a_short_send_call_to_and_self_with_the_call_id(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    response = await http.put(
        f"/uapi/phoneCalls/@me/@self/{call_id}", json=barge(sendCallTo="024"), headers=auth
    )
    assert response.status_code == 202
    assert response.json()["extension"] == "0001*201"
    assert emulator.rings[-1]["sendCallTo"] == "0001*024"


async def test_it_refuses_a_send_call_to_of_another_organization(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    response = await put(http, auth, call_id, barge(sendCallTo="0002*024"))
    assert response.status_code == 400
    assert error_code(response) == "pc_sendcallto_invalid"


@pytest.mark.parametrize("send_to", [None, "", "0001*100", "0001*500", "0001*999", "+1555", 7])
async def test_it_refuses_a_send_call_to_that_is_not_a_phone_terminal(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str, send_to: Any
) -> None:
    body = barge()
    body["sendCallTo"] = send_to
    if send_to is None:
        del body["sendCallTo"]
    response = await put(http, auth, call_id, body)
    assert error_code(response) == "pc_sendcallto_invalid"


@pytest.mark.parametrize(
    "caller_id",
    [
        "John Doe",
        "<42420042>",
        "John Doe <abc>",
        "John_Doe <123>",
        "",
        42,
        "John Doe <12+3>",
        # The Data Types grammar has no punctuation (4PSA's client: ^[A-Za-z\s]+<[0-9*+]+>$).
        "Mary-Ann O'Neil Jr. <*55>",
    ],
)
async def test_it_refuses_a_malformed_caller_id(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str, caller_id: Any
) -> None:
    response = await put(http, auth, call_id, barge(callerId=caller_id))
    assert error_code(response) == "pc_callerid_invalid"


@pytest.mark.parametrize(
    "caller_id", ["John Doe <+3334444>", "Mary Ann <*55>", "Desk 2 <0001024>", "Ann<42>"]
)
async def test_it_accepts_well_formed_caller_ids(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str, caller_id: str
) -> None:
    assert (await put(http, auth, call_id, barge(callerId=caller_id))).status_code == 202


@pytest.mark.parametrize("wait", ["0", 0, -5, "abc", True, "", [20]])
async def test_it_refuses_a_wait_for_pickup_that_is_not_a_positive_number(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str, wait: Any
) -> None:
    response = await put(http, auth, call_id, barge(waitForPickup=wait))
    assert error_code(response) == "pc_timeout_invalid"


@pytest.mark.parametrize("view", [None, "09", "", 1.5])
async def test_it_refuses_a_view_that_is_not_in_the_call(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str, view: Any
) -> None:
    body = barge(phoneCallViewId=view)
    if view is None:
        body.pop("phoneCallViewId", None)
    response = await put(http, auth, call_id, body)
    assert error_code(response) == "pc_phonecallview_invalid"


async def test_it_refuses_a_phone_call_id_that_is_unknown_or_not_alphanumeric(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    other = emulator.create_call("0001*101", auto=False)  # not involving 0001*201
    for bad in ("0123456789abcdef0123", "abc-def", other.id):
        response = await put(http, auth, bad, barge())
        assert response.status_code == 400
        assert error_code(response) == "pc_phonecall_invalid", bad


async def test_it_refuses_an_unknown_action(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    for action in ("Bargeln", None, "bargein"):
        response = await put(http, auth, call_id, barge(action=action))
        assert error_code(response) == "pc_action_invalid"
    not_json = await http.put(f"{AGENT_URL}/{call_id}", content=b"{", headers=auth)
    assert error_code(not_json) == "pc_action_invalid"


async def test_validation_follows_the_documented_order(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    everything_wrong = {
        "action": "BargeIn",
        "sendCallTo": "0002*024",
        "callerId": "bad",
        "waitForPickup": "0",
        "phoneCallViewId": "77",
    }
    steps = [
        ("phoneCallViewId", "01", "pc_phonecallview_invalid"),
        ("sendCallTo", "0001*024", "pc_sendcallto_invalid"),
        ("callerId", "A B <1>", "pc_callerid_invalid"),
        ("waitForPickup", "5", "pc_timeout_invalid"),
    ]
    wrong_id = await put(http, auth, "nope-nope", {**everything_wrong, "action": "X"})
    assert error_code(wrong_id) == "pc_phonecall_invalid"
    wrong_action = await put(http, auth, call_id, {**everything_wrong, "action": "X"})
    assert error_code(wrong_action) == "pc_action_invalid"
    body = dict(everything_wrong)
    for field, fix, code in steps:
        assert error_code(await put(http, auth, call_id, body)) == code
        body[field] = fix
    assert (await put(http, auth, call_id, body)).status_code == 202


async def test_a_refused_request_never_rings(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    await put(http, auth, call_id, barge(sendCallTo="0002*024"))
    await put(http, auth, call_id, barge(waitForPickup="0"))
    assert emulator.rings == []
    assert sorted(emulator.calls[call_id].views) == ["00", "01"]


async def test_whisper_accepts_private_and_refuses_a_value_other_than_0_or_1(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    ok = await put(http, auth, call_id, barge(action="Whisper", private=1))
    bad = await put(http, auth, call_id, barge(action="Whisper", private="maybe"))
    assert ok.status_code == 202
    assert error_code(bad) == "pc_private_invalid"
    assert emulator.calls[call_id].views["02"].private is True
    assert [r["action"] for r in emulator.rings] == ["Whisper"]


async def test_monitor_rings_like_a_barge_in(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    assert (await put(http, auth, call_id, barge(action="Monitor"))).status_code == 202
    assert emulator.rings[-1]["action"] == "Monitor"


async def test_hold_park_and_recording_set_their_view_fields(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    for body in (
        {"action": "OnHold", "phoneCallViewId": "01"},
        {"action": "Park", "phoneCallViewId": "00", "maxInParking": "30"},
        {"action": "StartRecording", "phoneCallViewId": "01", "format": "mp3"},
    ):
        assert (await put(http, auth, call_id, body)).status_code == 202
    views = (await http.get(f"{AGENT_URL}/{call_id}", headers=auth)).json()[0]["entry"][0][
        "phoneCallView"
    ]
    assert "onHold" in views[1]
    assert views[1]["holder"] == 1
    assert "recording" in views[1]
    assert views[0]["parkedPos"] == 1
    assert views[0]["parkedBy"] == "0001*201"
    await put(http, auth, call_id, {"action": "OffHold", "phoneCallViewId": "01"})
    await put(http, auth, call_id, {"action": "StopRecording", "phoneCallViewId": "01"})
    view = emulator.calls[call_id].views["01"]
    assert view.on_hold is None
    assert view.holder is None
    assert view.recording is None


async def test_park_and_recording_refuse_bad_values(
    http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    park = await put(
        http, auth, call_id, {"action": "Park", "phoneCallViewId": "00", "maxInParking": "0"}
    )
    record = await put(
        http, auth, call_id, {"action": "StartRecording", "phoneCallViewId": "01", "format": "ogg"}
    )
    assert error_code(park) == "pc_maxinparking_invalid"
    assert error_code(record) == "pc_format_invalid"


async def test_unpark_rings_and_clears_the_parking(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    emulator.set_phone("0001*024", pickup_delay=0.05)
    await put(http, auth, call_id, {"action": "Park", "phoneCallViewId": "00"})
    response = await put(http, auth, call_id, barge(action="UnPark", phoneCallViewId="00"))
    assert response.status_code == 202
    await wait_until(lambda: emulator.rings[-1]["outcome"] == "answered")
    assert emulator.calls[call_id].views["00"].parked is None


async def test_pick_up_takes_a_ringing_call(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.set_phone("0001*201", answers=False)
    emulator.set_phone("0001*024", pickup_delay=0.05)
    call = emulator.create_call("0001*100")
    assert call.views["01"].status == 3
    response = await http.put(
        f"/uapi/phoneCalls/@me/@self/{call.id}",
        json={"action": "PickUp", "sendCallTo": "0001*024"},
        headers=auth,
    )
    assert response.status_code == 202
    await wait_until(lambda: "01" not in call.views)
    picked = call.views["02"]
    assert picked.extension == "0001*024"
    assert picked.status == 5
    assert call.answered is not None


async def test_transfer_refuses_a_bad_destination_and_sends_to_a_public_number(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    bad = await put(
        http, auth, call_id, {"action": "Transfer", "phoneCallViewId": "01", "sendCallTo": "x*1"}
    )
    assert error_code(bad) == "pc_sendcallto_invalid"
    ok = await put(
        http,
        auth,
        call_id,
        {"action": "Transfer", "phoneCallViewId": "01", "sendCallTo": "3334444"},
    )
    assert ok.status_code == 202
    destinations = [v.destination for v in emulator.calls[call_id].views.values()]
    assert ["3334444"] in destinations
    assert "0001*201" not in {v.extension for v in emulator.calls[call_id].views.values()}


async def test_transfer_to_voicemail_needs_a_mailbox(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    no_box = await put(
        http, auth, call_id, {"action": "TransferToVoicemail", "phoneCallViewId": "00"}
    )
    assert error_code(no_box) == "pc_phonecallview_invalid"  # the queue has no voicemail
    ok = await put(http, auth, call_id, {"action": "TransferToVoicemail", "phoneCallViewId": "01"})
    assert ok.status_code == 202
    assert list(emulator.calls[call_id].views) == ["00"]
    assert emulator.calls[call_id].views["00"].destination == ["0001*201"]


async def test_an_action_without_a_call_id_applies_to_all_calls_of_the_extension(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    response = await http.put(AGENT_URL, json={"action": "OnHold"}, headers=auth)
    assert response.status_code == 202
    assert [a["id"] for a in response.json()] == [call_id]
    assert emulator.calls[call_id].views["01"].on_hold is not None
    barge_all = await http.put(AGENT_URL, json=barge(), headers=auth)
    assert error_code(barge_all) == "pc_phonecall_invalid"


async def test_a_call_that_ends_cancels_its_ringing_barge_in(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], call_id: str
) -> None:
    emulator.set_phone("0001*024", answers=False)
    await put(http, auth, call_id, barge())
    emulator.hangup_call(call_id)
    assert emulator.rings[-1]["outcome"] == "cancelled"
    assert not emulator.is_busy("0001*024")
    await asyncio.sleep(0)
