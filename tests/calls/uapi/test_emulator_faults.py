"""Fault injection on the emulator, in process (httpx.ASGITransport)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from calls.uapi.emulator import Emulator
from tests.support.waiting import wait_until

CALLS = "/uapi/phoneCalls/@me/@self"


async def add_fault(http: httpx.AsyncClient, **spec: object) -> int:
    response = await http.post("/_emulator/faults", json=spec)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_latency_delays_the_answer_for_the_next_n_requests(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.create_call("0001*100", auto=False)
    await add_fault(http, path="/uapi/phoneCalls", kind="latency", seconds=0.5, times=1)
    slow = asyncio.create_task(http.get(CALLS, headers=auth))
    await wait_until(lambda: emulator.faults.faults == [], what="the first request to meet it")
    fast = await http.get(CALLS, headers=auth)
    assert not slow.done()  # still held back after the next request was answered
    assert (await slow).status_code == fast.status_code == 200
    assert (await http.get("/_emulator/faults")).json() == []


async def test_status_answers_the_uapi_error_body_on_both_prefixes(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await add_fault(http, path="/uapi/phoneCalls", kind="status", status=503)
    for prefix in ("/uapi", "/unifiedapi"):
        response = await http.get(f"{prefix}/phoneCalls/@me/@self", headers=auth)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "internal_server_error"
    # Another path is untouched.
    presence = await http.get("/uapi/extensions/@me/0001*024/presence", headers=auth)
    assert presence.status_code == 200


async def test_a_fault_can_be_limited_to_a_method(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await add_fault(http, path="/uapi/phoneCalls", method="PUT", kind="status", status=500)
    assert (await http.get(CALLS, headers=auth)).status_code == 204
    call = emulator.create_call("0001*100", auto=False)
    put = await http.put(f"{CALLS}/{call.id}", json={"action": "OnHold"}, headers=auth)
    assert put.status_code == 500


async def test_timeout_never_answers(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await add_fault(http, path="/uapi", kind="timeout")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(http.get(CALLS, headers=auth), 0.3)


async def test_drop_is_a_transport_error_and_the_request_still_happened(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    await add_fault(http, path="/uapi/phoneCalls", method="PUT", kind="drop", times=1)
    body = {"action": "BargeIn", "sendCallTo": "0001*024", "phoneCallViewId": "01"}
    with pytest.raises(httpx.TransportError):
        await http.put(f"{CALLS}/{call.id}", json=body, headers=auth)
    assert len(emulator.rings) == 1  # the phone rang although the client saw no answer


async def test_malformed_answers_200_with_a_body_that_is_not_json(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await add_fault(http, path="/uapi/phoneCalls", kind="malformed")
    response = await http.get(CALLS, headers=auth)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_truncated_answers_half_of_the_real_json(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.create_call("0001*100", auto=False)
    whole = (await http.get(CALLS, headers=auth)).content
    fault = await add_fault(http, path="/unifiedapi/phoneCalls", kind="truncated")
    cut = await http.get(CALLS, headers=auth)
    assert cut.status_code == 200
    assert cut.content == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    assert (await http.delete(f"/_emulator/faults/{fault}")).status_code == 204
    assert (await http.get(CALLS, headers=auth)).content == whole


async def test_faults_can_be_listed_and_cleared_and_never_touch_the_control_api(
    http: httpx.AsyncClient,
) -> None:
    await add_fault(http, path="/", kind="status", status=500)
    await add_fault(http, path="/oauth", kind="latency", seconds=0.01)
    listed = await http.get("/_emulator/faults")
    assert [f["kind"] for f in listed.json()] == ["status", "latency"]
    token = await http.post("/oauth/token.php", data={"grant_type": "client_credentials"})
    assert token.status_code == 500
    assert (await http.delete("/_emulator/faults")).json() == {"removed": 2}
    assert (await http.get("/_emulator/faults")).json() == []


async def test_it_refuses_an_unknown_fault_kind(http: httpx.AsyncClient) -> None:
    response = await http.post("/_emulator/faults", json={"path": "/uapi", "kind": "gremlins"})
    assert response.status_code == 400


async def test_corrupted_handles_the_put_then_answers_its_status_with_a_body_that_is_not_json(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    await add_fault(http, path="/uapi/phoneCalls", method="PUT", kind="corrupted", times=1)
    body = {"action": "BargeIn", "sendCallTo": "0001*024", "phoneCallViewId": "01"}

    response = await http.put(f"{CALLS}/{call.id}", json=body, headers=auth)

    assert response.status_code == 202
    assert response.content.startswith(b"<br />")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    # The answer is spoilt, not the action: the phone rang.
    assert [r["sendCallTo"] for r in emulator.rings] == ["0001*024"]
