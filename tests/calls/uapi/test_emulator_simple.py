"""Create Simple PhoneCalls on the emulator: the call's life and its validation codes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from calls.uapi.emulator import Emulator
from tests.support.waiting import wait_until

SIMPLE = "/uapi/phoneCalls/@me/simple"


def body(**view: Any) -> dict[str, Any]:
    extension = view.pop("extension", "0001*024")
    spec = {"source": ["0001*024"], "destination": ["+14155550123"], **view}
    return {"extension": extension, "phoneCallView": [spec]}


async def test_the_source_rings_then_the_destination_answers_then_the_call_ends(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.speed = 20
    response = await http.post(
        f"{SIMPLE}?callDuration=2", json=body(destination=["0001*201"]), headers=auth
    )
    assert response.status_code == 200, response.text
    [created] = response.json()
    call = emulator.calls[created["id"]]
    assert created["links"]["self"].endswith(f"/uapi/phoneCalls/12/0001*024/{call.id}")
    assert created["phoneCallView"][0]["status"] == 3
    assert created["phoneCallView"][0]["callerId"] == "Alice Supervisor <0001024>"
    await wait_until(lambda: "01" in call.views)  # Alice answered: Ann's phone rings
    assert call.views["00"].status == 4
    assert call.views["01"].status == 3
    await wait_until(lambda: call.answered is not None)
    assert {v.status for v in call.views.values()} == {5}
    await wait_until(lambda: call.id not in emulator.calls)


async def test_an_unanswered_source_ends_the_call_after_wait_for_pickup(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.speed = 20
    emulator.set_phone("0001*024", answers=False)
    response = await http.post(f"{SIMPLE}?waitForPickup=2", json=body(), headers=auth)
    assert response.status_code == 200, response.text
    [created] = response.json()
    assert [v["status"] for v in created["phoneCallView"]] == [3]  # the source rings
    call = emulator.calls[created["id"]]
    assert emulator.is_busy("0001*024")

    await wait_until(lambda: call.id not in emulator.calls)

    assert call.answered is None
    assert call.views == {}  # every leg hung up
    assert not emulator.is_busy("0001*024")
    listed = await http.get("/uapi/phoneCalls/@me/@self", headers=auth)
    assert listed.status_code == 204  # nothing left to list


@pytest.mark.parametrize(
    ("user", "payload", "query", "code"),
    [
        ("@me", body(extension="0001*100"), "", "pc_extension_invalid"),  # a queue
        ("12", body(extension="0002*024"), "", "pc_extension_invalid"),  # not Alice's phone
        ("@me", body(extension=None), "", "pc_extension_invalid"),
        ("@me", body(source=[]), "", "pc_source_invalid"),
        ("@me", body(source=["0002*024"]), "", "pc_source_invalid"),  # another organization
        ("@me", body(destination=["12"]), "", "pc_destination_invalid"),
        ("@me", body(callerId="John Doe"), "", "pc_callerid_invalid"),
        ("@me", body(), "?waitForPickup=0", "pc_timeout_invalid"),
        ("@me", body(), "?callDuration=-1", "pc_callduration_invalid"),
    ],
)
async def test_each_invalid_field_has_its_code(
    emulator: Emulator,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    user: str,
    payload: dict[str, Any],
    query: str,
    code: str,
) -> None:
    response = await http.post(f"/uapi/phoneCalls/{user}/simple{query}", json=payload, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert emulator.calls == {}
