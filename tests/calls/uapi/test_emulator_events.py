"""Call Events: the emulator really sends them, and a bad receiver never slows it down."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calls.uapi.emulator import Emulator
from tests.support.ports import free_port
from tests.support.servers import serving
from tests.support.waiting import wait_until

EVENTS = "/uapi/extensions/@me/{ext}/phoneCallEvents"


def receiver(seen: list[dict[str, Any]], delay: float = 0.0) -> Starlette:
    async def hook(request: Request) -> Response:
        if delay:
            await asyncio.sleep(delay)
        body = (await request.body()).decode()
        seen.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "form": dict(parse_qsl(body)),
            }
        )
        return Response("ok")

    return Starlette(routes=[Route("/{name}", hook, methods=["GET", "POST"])])


async def register(
    http: httpx.AsyncClient, auth: dict[str, str], ext: str, event_type: int, method: int, url: str
) -> None:
    response = await http.post(
        EVENTS.format(ext=ext),
        json={"type": str(event_type), "method": str(method), "url": url},
        headers=auth,
    )
    assert response.status_code == 200, response.text


async def test_events_are_posted_form_encoded_and_got_with_a_query_string(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen: list[dict[str, Any]] = []
    async with serving(receiver(seen)) as url:
        await register(http, auth, "0001*100", 0, 1, f"{url}/queue-dial-in")
        await register(http, auth, "0001*201", 0, 0, f"{url}/agent-dial-in")
        await register(http, auth, "0001*201", 3, 1, f"{url}/agent-answer")
        await register(http, auth, "0001*201", 2, 1, f"{url}/agent-hangup")
        call = emulator.create_call("0001*100", "+14155550199", auto=False)
        emulator.answer_call(call.id, "0001*201")
        emulator.hangup_call(call.id)
        await wait_until(lambda: len(seen) == 4)
    by_path = {s["path"]: s for s in seen}
    queue = by_path["/queue-dial-in"]
    assert queue["method"] == "POST"
    assert queue["form"]["CallStatus"] == "CALLING"
    assert queue["form"]["CallFlow"] == "IN"
    assert queue["form"]["CalledExtension"] == "0001*100"
    assert queue["form"]["CallerIDNum"] == "+14155550199"
    assert queue["form"]["CallAPIID"] == call.id
    agent = by_path["/agent-dial-in"]
    assert agent["method"] == "GET"
    assert agent["query"]["CalledExtension"] == "0001*201"
    assert agent["query"]["CallID"] == queue["form"]["CallID"]
    assert by_path["/agent-answer"]["form"]["CallFlow"] == "IN"
    assert by_path["/agent-hangup"]["form"]["CallStatus"] == "ANSWER"
    log = (await http.get("/_emulator/events")).json()
    assert {entry["outcome"] for entry in log} == {"delivered"}


async def test_a_barge_in_ring_is_the_supervisor_s_outgoing_call(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen: list[dict[str, Any]] = []
    emulator.set_phone("0001*024", answers=False)
    async with serving(receiver(seen)) as url:
        await register(http, auth, "0001*024", 1, 1, f"{url}/out")
        await register(http, auth, "0001*024", 2, 1, f"{url}/hangup")
        call = emulator.create_call("0001*100", auto=False)
        emulator.answer_call(call.id, "0001*201")
        await http.put(
            f"/uapi/phoneCalls/@me/0001*201/{call.id}",
            json={
                "action": "BargeIn",
                "sendCallTo": "0001*024",
                "phoneCallViewId": "01",
                "waitForPickup": 0.1,
            },
            headers=auth,
        )
        await wait_until(lambda: len(seen) == 2)
    out, hangup = seen
    assert out["form"]["CallFlow"] == "OUT"
    assert out["form"]["CallerExtension"] == "0001*024"
    assert out["form"]["CalledExtension"] == "0001*201"
    assert hangup["form"]["CallStatus"] == "NOANSWER"


async def test_a_dead_or_slow_receiver_does_not_slow_list_phone_calls(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen: list[dict[str, Any]] = []
    dead = f"http://127.0.0.1:{free_port()}/hook"
    async with serving(receiver(seen, delay=5.0)) as slow:
        await register(http, auth, "0001*100", 0, 1, dead)
        await register(http, auth, "0001*100", 0, 1, f"{slow}/hook")
        await http.post("/_emulator/calls", json={"queue": "0001*100", "count": 200})
        response = await http.get("/uapi/phoneCalls/@me/@self", params={"count": 200}, headers=auth)
        assert response.status_code == 200
        assert response.json()[0]["totalResults"] == 200
        # Answered while the slow receiver still holds the first delivery.
        assert seen == []
        await wait_until(lambda: any(e["outcome"] == "error" for e in emulator.events.log))
        await emulator.stop()  # do not wait for the slow receiver


async def test_deliveries_beyond_the_queue_are_dropped_and_counted(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.events.queue_size = 5
    await register(http, auth, "0001*100", 0, 1, f"http://127.0.0.1:{free_port()}/hook")
    for _ in range(20):
        emulator.create_call("0001*100", auto=False)
    state = (await http.get("/_emulator/state")).json()
    assert state["events"]["dropped"] >= 10
    assert any(e["outcome"] == "dropped" for e in emulator.events.log)


async def test_a_disabled_registration_receives_nothing(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await http.post(
        EVENTS.format(ext="0001*100"),
        json={"type": 0, "method": 1, "url": "http://127.0.0.1:9/x", "status": 0},
        headers=auth,
    )
    assert response.json()["status"] == 0
    emulator.create_call("0001*100", auto=False)
    assert emulator.events.pending() == 0
    assert list(emulator.events.log) == []
