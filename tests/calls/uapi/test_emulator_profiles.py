"""The emulator plays VoipNow 3.x or 5.x (``--voipnow``), each as its documentation says: event
types, Monitor, collection shapes, ended calls, CallAPIID and the count limit."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calls.uapi.emulator import Emulator, create_app
from calls.uapi.emulator.cli import add_arguments
from dashboard.management.commands.demo import DEMO_DATABASE_MARK

from .conftest import BASE, get_token, serving, wait_until

CALLS = "/uapi/phoneCalls/@me/@self"
EVENTS = "/uapi/extensions/@me/{ext}/phoneCallEvents"
AGENTS = "/uapi/extensions/@me/0001*100/queue/agents"
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Server:
    emulator: Emulator
    http: httpx.AsyncClient
    auth: dict[str, str]

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.auth)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.http.put(path, json=body, headers=self.auth)


@contextlib.asynccontextmanager
async def voipnow(version: int) -> AsyncIterator[Server]:
    app = create_app(seed=1, base_url=BASE, voipnow=version)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            auth = {"Authorization": f"Bearer {await get_token(http)}"}
            yield Server(app.state.emulator, http, auth)
    finally:
        await app.state.emulator.stop()


@pytest.fixture
async def v3() -> AsyncIterator[Server]:
    async with voipnow(3) as server:
        yield server


@pytest.fixture
async def v5() -> AsyncIterator[Server]:
    async with voipnow(5) as server:
        yield server


@pytest.fixture(params=[3, 5])
async def any_version(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    async with voipnow(request.param) as server:
        yield server


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def envelope(server: Server, response: httpx.Response) -> dict[str, Any]:
    """The collection object of an answer, in the shape the server's version uses."""
    body = response.json()
    if server.emulator.profile.voipnow == 5:
        assert isinstance(body, list), body
        assert len(body) == 1, body
        body = body[0]
    assert isinstance(body, dict), body
    return body


def answered_call(emulator: Emulator) -> str:
    call = emulator.create_call("0001*100", "+14155550101", auto=False)
    emulator.answer_call(call.id, "0001*201")
    return call.id


def event(event_type: int | str, url: str = "http://hooks.test/in") -> dict[str, str]:
    return {"type": str(event_type), "method": "1", "url": url}


# --------------------------------------------------------------------------- the default


async def test_the_default_is_voipnow_5(http: httpx.AsyncClient, emulator: Emulator) -> None:
    assert emulator.profile.voipnow == 5
    assert (await http.get("/_emulator/state")).json()["voipnow"] == 5


def test_the_command_line_chooses_the_version() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert vars(parser.parse_args([]))["voipnow"] == 5
    assert vars(parser.parse_args(["--voipnow", "3"]))["voipnow"] == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--voipnow", "4"])


class EmulatorStarted(Exception):
    """Stands for the emulator's process: the demo stops right after asking for it."""


@pytest.mark.django_db
def test_the_demo_passes_the_version_to_its_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[str]] = []

    def popen(argv: list[str], **kwargs: Any) -> None:
        started.append(argv)
        raise EmulatorStarted

    monkeypatch.setattr("dashboard.management.commands.demo.subprocess.Popen", popen)
    # The test database stands for one the demo created (it runs on no other).
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA application_id = {DEMO_DATABASE_MARK}")
    try:
        for args in ([], ["--voipnow", "3"]):
            with pytest.raises(EmulatorStarted):
                call_command("demo", *args, stdout=io.StringIO())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA application_id = 0")
    assert [argv[argv.index("--voipnow") + 1] for argv in started] == ["5", "3"]
    assert "uapi_emulator" in started[0]


def test_make_demo_takes_the_version() -> None:
    shown = subprocess.run(
        ["make", "-n", "demo", "VOIPNOW=3"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "manage.py demo --voipnow 3" in shown.stdout


def test_create_app_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="voipnow"):
        create_app(voipnow=4)


# --------------------------------------------------------------------------- 1. Call Event types


@pytest.mark.parametrize("event_type", [0, 1, 2])
async def test_3x_accepts_dial_in_dial_out_and_hangup(v3: Server, event_type: int) -> None:
    assert (await v3.post(EVENTS.format(ext="0001*201"), event(event_type))).status_code == 200


@pytest.mark.parametrize("event_type", [3, 4, 5, "x"])
async def test_3x_refuses_to_create_answer_events_with_pcet_type_invalid(
    v3: Server, event_type: int | str
) -> None:
    response = await v3.post(EVENTS.format(ext="0001*201"), event(event_type))
    assert response.status_code == 400
    assert error_code(response) == "pcet_type_invalid"
    assert v3.emulator.registrations_of("0001*201") == []


async def test_3x_refuses_to_update_an_event_to_an_answer_type_with_pce_type_invalid(
    v3: Server,
) -> None:
    url = EVENTS.format(ext="0001*201")
    made = (await v3.post(url, event(0))).json()
    response = await v3.put(f"{url}/0/{made['id']}", {"type": "3"})
    assert response.status_code == 400
    assert error_code(response) == "pce_type_invalid"
    assert (await v3.get(f"{url}/3")).status_code == 400


@pytest.mark.parametrize("event_type", [0, 1, 2, 3, 4])
async def test_5x_accepts_every_documented_event_type(v5: Server, event_type: int) -> None:
    assert (await v5.post(EVENTS.format(ext="0001*201"), event(event_type))).status_code == 200


async def test_5x_still_refuses_other_types(v5: Server) -> None:
    url = EVENTS.format(ext="0001*201")
    created = await v5.post(url, event(5))
    made = (await v5.post(url, event(3))).json()
    updated = await v5.put(f"{url}/3/{made['id']}", {"type": "9"})
    assert error_code(created) == "pcet_type_invalid"
    assert error_code(updated) == "pce_type_invalid"


async def test_3x_never_sends_an_answer_event(v5: Server) -> None:
    # Registered while the server played 5.x; after the switch to 3.x no Answer is sent.
    dead = "http://127.0.0.1:9/hook"
    for event_type in (0, 3):
        assert (await v5.post(EVENTS.format(ext="0001*201"), event(event_type, dead))).is_success
    assert (await v5.http.put("/_emulator/profile", json={"voipnow": 3})).status_code == 200
    answered_call(v5.emulator)
    await wait_until(lambda: len(v5.emulator.events.log) >= 1)
    await v5.emulator.events.drain()
    assert {entry["type"] for entry in v5.emulator.events.log} == {0}


# --------------------------------------------------------------------------- 2. Monitor, private


async def test_3x_has_no_monitor(v3: Server) -> None:
    call_id = answered_call(v3.emulator)
    body = {"action": "Monitor", "sendCallTo": "0001*024", "phoneCallViewId": "01"}
    response = await v3.put(f"/uapi/phoneCalls/@me/0001*201/{call_id}", body)
    assert response.status_code == 400
    assert error_code(response) == "pc_action_invalid"
    assert v3.emulator.rings == []


async def test_5x_monitors(v5: Server) -> None:
    call_id = answered_call(v5.emulator)
    body = {"action": "Monitor", "sendCallTo": "0001*024", "phoneCallViewId": "01"}
    response = await v5.put(f"/uapi/phoneCalls/@me/0001*201/{call_id}", body)
    assert response.status_code == 202
    assert [r["action"] for r in v5.emulator.rings] == ["Monitor"]


@pytest.mark.parametrize(
    ("private", "expected"), [(0, False), (1, True), ("0", False), ("1", True)]
)
async def test_whisper_private_is_0_or_1(any_version: Server, private: Any, expected: bool) -> None:
    call_id = answered_call(any_version.emulator)
    body = {"action": "Whisper", "sendCallTo": "0001*024", "phoneCallViewId": "01"}
    url = f"/uapi/phoneCalls/@me/0001*201/{call_id}"
    assert (await any_version.put(url, {**body, "private": private})).status_code == 202
    assert any_version.emulator.calls[call_id].views["02"].private is expected


@pytest.mark.parametrize("private", [True, False, "true", 2, 1.5, "yes", []])
async def test_whisper_refuses_a_private_that_is_not_0_or_1(
    any_version: Server, private: Any
) -> None:
    call_id = answered_call(any_version.emulator)
    body = {"action": "Whisper", "sendCallTo": "0001*024", "phoneCallViewId": "01"}
    response = await any_version.put(
        f"/uapi/phoneCalls/@me/0001*201/{call_id}", {**body, "private": private}
    )
    assert response.status_code == 400
    assert error_code(response) == "pc_private_invalid"
    assert any_version.emulator.rings == []


# --------------------------------------------------------------------------- 3. collection shapes


async def collections(server: Server) -> dict[str, httpx.Response]:
    call_id = answered_call(server.emulator)
    await server.post(EVENTS.format(ext="0001*201"), event(0))
    return {
        "calls": await server.get(CALLS),
        "calls with fields": await server.get(CALLS, fields="id,published"),
        "one call": await server.get(f"{CALLS}/{call_id}"),
        "events": await server.get(EVENTS.format(ext="0001*201")),
        "events of a type": await server.get(EVENTS.format(ext="0001*201") + "/0"),
        "agents": await server.get(AGENTS),
        "one agent": await server.get(f"{AGENTS}/0001*201"),
        "presence": await server.get("/uapi/extensions/@me/0001*201/presence"),
        "all presence": await server.get("/uapi/extensions/@me/@self/presence"),
    }


async def test_3x_answers_collections_as_objects(v3: Server) -> None:
    for name, response in (await collections(v3)).items():
        body = response.json()
        assert isinstance(body, dict), name
        assert isinstance(body["entry"], list), name
        assert body["entry"], name


async def test_5x_answers_collections_wrapped_in_an_array(v5: Server) -> None:
    for name, response in (await collections(v5)).items():
        body = response.json()
        assert isinstance(body, list), name
        assert len(body) == 1, name
        assert isinstance(body[0]["entry"], list), name
        assert body[0]["entry"], name


async def test_a_garbled_collection_loses_its_first_id_in_either_shape(
    any_version: Server,
) -> None:
    answered_call(any_version.emulator)
    fault = {"path": "/uapi/phoneCalls", "method": "GET", "kind": "garbled"}
    assert (await any_version.http.post("/_emulator/faults", json=fault)).status_code == 201
    entry = envelope(any_version, await any_version.get(CALLS))["entry"][0]
    assert "id" not in entry
    assert "phoneCallView" in entry


# --------------------------------------------------------------------------- 4. an ended call


async def ended_call(server: Server) -> str:
    call_id = answered_call(server.emulator)
    server.emulator.hangup_call(call_id)
    return call_id


async def test_3x_answers_an_ended_call_with_pc_phonecall_invalid(v3: Server) -> None:
    response = await v3.get(f"{CALLS}/{await ended_call(v3)}")
    assert response.status_code == 400
    assert error_code(response) == "pc_phonecall_invalid"


async def test_5x_answers_an_ended_call_with_no_entry(v5: Server) -> None:
    response = await v5.get(f"/uapi/phoneCalls/@me/0001*201/{await ended_call(v5)}")
    assert response.status_code == 200
    body = envelope(v5, response)
    assert body["totalResults"] == 0
    assert "entry" not in body


async def test_the_control_api_makes_an_ended_call_answer_204(any_version: Server) -> None:
    call_id = await ended_call(any_version)
    control = any_version.http
    changed = await control.put("/_emulator/profile", json={"endedCall": "noContent"})
    assert changed.json()["endedCall"] == "noContent"
    assert (await any_version.get(f"{CALLS}/{call_id}")).status_code == 204
    await control.put("/_emulator/profile", json={"endedCall": None})
    assert (await any_version.get(f"{CALLS}/{call_id}")).status_code in (200, 400)


async def test_a_reset_drops_the_ended_call_override_and_keeps_the_version(v3: Server) -> None:
    await v3.http.put("/_emulator/profile", json={"endedCall": "noContent"})
    await v3.http.post("/_emulator/reset")
    profile = (await v3.http.get("/_emulator/profile")).json()
    assert profile == {"voipnow": 3, "endedCall": "invalid", "endedCallOverride": None}


async def test_the_control_api_switches_the_version(v5: Server) -> None:
    call_id = await ended_call(v5)
    switched = await v5.http.put("/_emulator/profile", json={"voipnow": 3})
    assert switched.json()["voipnow"] == 3
    assert error_code(await v5.get(f"{CALLS}/{call_id}")) == "pc_phonecall_invalid"
    for bad in ({"voipnow": 4}, {"voipnow": True}, {"endedCall": "gone"}):
        assert (await v5.http.put("/_emulator/profile", json=bad)).status_code == 400


# --------------------------------------------------------------------------- 5. CallAPIID


def hook_receiver(seen: list[dict[str, str]]) -> Starlette:
    async def hook(request: Request) -> Response:
        seen.append(dict(parse_qsl((await request.body()).decode(), keep_blank_values=True)))
        return Response("ok")

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def dial_ins(server: Server, make_call: Any) -> list[dict[str, str]]:
    """The Dial-In events of extension 0001*201 (a queue agent and a phone) for one call."""
    seen: list[dict[str, str]] = []
    async with serving(hook_receiver(seen)) as url:
        await server.post(EVENTS.format(ext="0001*201"), event(0, f"{url}/hook"))
        await make_call()
        await wait_until(lambda: len(seen) >= 1)
    return seen


async def test_3x_sends_an_empty_call_api_id_for_an_inbound_queue_call(v3: Server) -> None:
    async def inbound() -> None:
        v3.emulator.create_call("0001*100", auto=False)
        v3.emulator.answer_call(next(iter(v3.emulator.calls)), "0001*201")

    (fields,) = await dial_ins(v3, inbound)
    assert fields["CallAPIID"] == ""
    assert re.fullmatch(r"\d+\.\d+", fields["CallID"])


@pytest.mark.parametrize("version", [3, 5])
async def test_a_call_made_through_the_api_carries_its_id(version: int) -> None:
    async with voipnow(version) as server:

        async def simple() -> None:
            body = {
                "extension": "0001*024",
                "phoneCallView": [{"source": ["0001*024"], "destination": ["0001*201"]}],
            }
            response = await server.post("/uapi/phoneCalls/@me/simple", body)
            assert response.status_code == 200, response.text

        server.emulator.set_phone("0001*024", pickup_delay=0.01)
        (fields, *_) = await dial_ins(server, simple)
        (call_id,) = server.emulator.calls
        assert fields["CallAPIID"] == call_id
        assert fields["CallID"] != call_id
        assert re.fullmatch(r"\d+\.\d+", fields["CallID"])


async def test_5x_sends_the_call_api_id_for_an_inbound_queue_call(v5: Server) -> None:
    async def inbound() -> None:
        v5.emulator.create_call("0001*100", auto=False)
        v5.emulator.answer_call(next(iter(v5.emulator.calls)), "0001*201")

    (fields,) = await dial_ins(v5, inbound)
    (call_id,) = v5.emulator.calls
    assert fields["CallAPIID"] == call_id
    assert fields["CallID"] != call_id
    assert re.fullmatch(r"\d+\.\d+", fields["CallID"])


# --------------------------------------------------------------------------- 6. count


async def test_3x_clamps_count_to_5000(v3: Server) -> None:
    answered_call(v3.emulator)
    assert envelope(v3, await v3.get(CALLS, count="6000"))["itemsPerPage"] == 5000
    assert envelope(v3, await v3.get(CALLS, count="5000"))["itemsPerPage"] == 5000


async def test_5x_refuses_count_outside_1_to_4999(v5: Server) -> None:
    answered_call(v5.emulator)
    assert envelope(v5, await v5.get(CALLS, count="4999"))["itemsPerPage"] == 4999
    for bad in ("5000", "0", "many"):
        response = await v5.get(CALLS, count=bad)
        assert response.status_code == 400, bad
        assert error_code(response) == "count_invalid"


async def test_both_follow_pages_with_next_and_prev(any_version: Server) -> None:
    await any_version.http.post(
        "/_emulator/calls", json={"queue": "0001*100", "count": 5, "autoAnswer": False}
    )
    first = envelope(any_version, await any_version.get(CALLS, count="2"))
    second = envelope(
        any_version, await any_version.http.get(first["next"], headers=any_version.auth)
    )
    third = envelope(
        any_version, await any_version.http.get(second["next"], headers=any_version.auth)
    )
    assert "prev" not in first
    assert "startIndex=0" in second["prev"]
    assert "next" not in third
    ids = [e["id"] for page in (first, second, third) for e in page["entry"]]
    assert len(set(ids)) == 5


async def test_phone_call_events_are_paged_by_20(any_version: Server) -> None:
    url = EVENTS.format(ext="0001*201")
    for n in range(25):
        assert (await any_version.post(url, event(0, f"http://hooks.test/{n:02d}"))).is_success
    first = envelope(any_version, await any_version.get(url))
    assert len(first["entry"]) == 20
    assert first["totalResults"] == 25
    rest = envelope(
        any_version, await any_version.http.get(first["next"], headers=any_version.auth)
    )
    assert len(rest["entry"]) == 5


# --------------------------------------------------------------------------- 7. codes and shapes


async def test_queue_agents_refuse_with_the_documented_codes(any_version: Server) -> None:
    bad_status = await any_version.put(f"{AGENTS}/0001*201", {"status": "7"})
    bad_agent = await any_version.put(f"{AGENTS}/0001*204", {"status": "1"})
    assert (bad_status.status_code, error_code(bad_status)) == (400, "status_invalid")
    assert (bad_agent.status_code, error_code(bad_agent)) == (400, "qag_agent_invalid")


async def test_updating_a_queue_agent_returns_an_array(any_version: Server) -> None:
    response = await any_version.put(f"{AGENTS}/0001*202", {"status": "2"})
    assert response.status_code == 200
    assert response.json() == [
        {
            "agentNumber": "0001*202",
            "status": 2,
            "links": {"self": f"{BASE}{AGENTS}/0001*202"},
        }
    ]


async def test_presence_of_one_extension_is_a_collection(any_version: Server) -> None:
    body = envelope(any_version, await any_version.get("/uapi/extensions/@me/0001*201/presence"))
    assert body["totalResults"] == 1
    assert [p["extension"] for p in body["entry"]] == ["0001*201"]
