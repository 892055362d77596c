"""The control API under ``/_emulator/``: what tests, demos and benchmarks use to drive the
world. It is not part of VoipNow, needs no token, and is never subject to faults."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import base_url, json_response, no_content, raw_json
from .engine import Emulator
from .errors import ControlError
from .profiles import VERSIONS, EndedCall
from .queues import REGISTRATIONS

log = logging.getLogger(__name__)

MAX_BULK_CALLS = 10_000
ControlHandler = Callable[[Request, Emulator], Awaitable[Response]]


def control(handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.emulator)
        except ControlError as exc:
            code = {404: "not_found", 409: "conflict"}.get(exc.status, "bad_request")
            return json_response({"error": {"code": code, "message": exc.message}}, exc.status)

    endpoint.__name__ = handler.__name__
    return endpoint


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ControlError(400, "the body must be JSON") from exc
    if not isinstance(data, dict):
        raise ControlError(400, "the body must be a JSON object")
    return data


def _number(data: dict[str, Any], key: str, *, low: float = 0.0) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ControlError(400, f"{key} must be a number >= {low:g}")
    return float(value)


@control
async def create_calls(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    queue = data.get("queue")
    if not isinstance(queue, str):
        raise ControlError(400, "queue is required (a queue extension such as 0001*100)")
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BULK_CALLS:
        raise ControlError(400, f"count must be 1 to {MAX_BULK_CALLS}")
    caller = data.get("caller")
    if caller is not None and not isinstance(caller, str):
        raise ControlError(400, "caller must be a phone number string")
    auto = data.get("autoAnswer", True)
    if not isinstance(auto, bool):
        raise ControlError(400, "autoAnswer must be true or false")
    talk = _number(data, "talkSeconds")
    patience = _number(data, "patienceSeconds")
    base = base_url(request, emulator)
    made = [
        emulator.create_call(queue, caller, auto=auto, talk_seconds=talk, patience_seconds=patience)
        for _ in range(count)
    ]
    # Built from each call's cached JSON, which also warms the cache List PhoneCalls uses.
    if count == 1:
        return raw_json(made[0].to_bytes(base), 201)
    return raw_json(b"[" + b",".join(c.to_bytes(base) for c in made) + b"]", 201)


@control
async def list_calls(request: Request, emulator: Emulator) -> Response:
    base = base_url(request, emulator)
    return json_response([c.to_json(base) for c in emulator.calls.values()])


@control
async def hang_up(request: Request, emulator: Emulator) -> Response:
    if not emulator.hangup_call(request.path_params["phoneCallId"]):
        raise ControlError(404, "no such call")
    return no_content()


@control
async def answer(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    agent = data.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise ControlError(400, "agent must be an extension number")
    call = emulator.answer_call(request.path_params["phoneCallId"], agent)
    return json_response(call.to_json(base_url(request, emulator)))


@control
async def agent(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    ext = request.path_params["extension"]
    status = data.get("status")
    if status not in (0, 1, 2) or isinstance(status, bool):
        raise ControlError(400, "status must be 0 (logged out), 1 (online) or 2 (paused)")
    queue = data.get("queue")
    changed = emulator.set_agent_status(ext, status, queue)
    if not changed:
        raise ControlError(404, f"{ext} is not an agent" + (f" of {queue}" if queue else ""))
    return json_response({"agentNumber": ext, "status": status, "queues": changed})


@control
async def phone(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    answers = data.get("answers")
    if answers is not None and not isinstance(answers, bool):
        raise ControlError(400, "answers must be true or false")
    registered = data.get("registered")
    if registered is not None and not isinstance(registered, bool):
        raise ControlError(400, "registered must be true or false")
    registration = data.get("registration")
    if registration is not None and (
        isinstance(registration, bool) or registration not in REGISTRATIONS
    ):
        raise ControlError(400, "registration must be 1, -1 or -2 (expired)")
    state = emulator.set_phone(
        request.path_params["extension"],
        pickup_delay=_number(data, "pickupDelay"),
        answers=answers,
        registered=registered,
        registration=registration,
    )
    return json_response(
        {
            "extension": request.path_params["extension"],
            "pickupDelay": state.pickup_delay,
            "answers": state.answers,
            "registered": state.registered,
            "registration": state.registration,
            "busy": emulator.is_busy(request.path_params["extension"]),
        }
    )


@control
async def rings(request: Request, emulator: Emulator) -> Response:
    return json_response(emulator.rings)


@control
async def events(request: Request, emulator: Emulator) -> Response:
    return json_response(list(emulator.events.log))


@control
async def traffic(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    speed = _number(data, "speed")
    if speed is not None:
        if speed <= 0:
            raise ControlError(400, "speed must be > 0")
        emulator.set_speed(speed)
    running = data.get("running")
    if running is True:
        await emulator.start_traffic()
    elif running is False:
        await emulator.stop_traffic()
    elif running is not None:
        raise ControlError(400, "running must be true or false")
    return json_response({"running": emulator.traffic_running, "speed": emulator.speed})


@control
async def reset(request: Request, emulator: Emulator) -> Response:
    emulator.reset()
    return json_response(emulator.state())


@control
async def revoke(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    value = data.get("token")
    if value is not None and not isinstance(value, str):
        raise ControlError(400, "token must be a string")
    return json_response({"revoked": emulator.revoke_tokens(value)})


@control
async def lifetime(request: Request, emulator: Emulator) -> Response:
    data = await body_of(request)
    seconds = data.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0
    ):
        raise ControlError(400, "seconds must be a whole number >= 0, or null for the default")
    emulator.set_token_lifetime(seconds)
    return json_response({"seconds": seconds})


@control
async def faults(request: Request, emulator: Emulator) -> Response:
    if request.method == "POST":
        fault = emulator.faults.add(await body_of(request))
        return json_response(fault.to_json(), 201)
    if request.method == "DELETE":
        return json_response({"removed": emulator.faults.remove()})
    return json_response([f.to_json() for f in emulator.faults.faults])


@control
async def fault(request: Request, emulator: Emulator) -> Response:
    try:
        fault_id = int(request.path_params["faultId"])
    except ValueError:
        raise ControlError(404, "no such fault") from None
    if not emulator.faults.remove(fault_id):
        raise ControlError(404, "no such fault")
    return no_content()


def _profile_json(emulator: Emulator) -> dict[str, Any]:
    override = emulator.ended_call_override
    return {
        "voipnow": emulator.profile.voipnow,
        "endedCall": str(emulator.ended_call),
        "endedCallOverride": None if override is None else str(override),
    }


@control
async def profile(request: Request, emulator: Emulator) -> Response:
    if request.method == "PUT":
        data = await body_of(request)
        if "voipnow" in data:
            version = data["voipnow"]
            if isinstance(version, bool) or version not in VERSIONS:
                raise ControlError(400, "voipnow must be " + " or ".join(map(str, VERSIONS)))
            emulator.set_voipnow(version)
        if "endedCall" in data:
            answer = data["endedCall"]
            choices = [e.value for e in EndedCall]
            if answer is not None and answer not in choices:
                raise ControlError(400, f"endedCall must be null or one of {', '.join(choices)}")
            emulator.ended_call_override = None if answer is None else EndedCall(answer)
    return json_response(_profile_json(emulator))


@control
async def state(request: Request, emulator: Emulator) -> Response:
    return json_response(emulator.state())


ROUTES = [
    Route("/_emulator/calls", create_calls, methods=["POST"]),
    Route("/_emulator/calls", list_calls, methods=["GET"]),
    Route("/_emulator/calls/{phoneCallId}", hang_up, methods=["DELETE"]),
    Route("/_emulator/calls/{phoneCallId}/answer", answer, methods=["POST"]),
    Route("/_emulator/agents/{extension}", agent, methods=["PUT"]),
    Route("/_emulator/phones/{extension}", phone, methods=["PUT"]),
    Route("/_emulator/rings", rings, methods=["GET"]),
    Route("/_emulator/events", events, methods=["GET"]),
    Route("/_emulator/traffic", traffic, methods=["POST"]),
    Route("/_emulator/reset", reset, methods=["POST"]),
    Route("/_emulator/tokens/revoke", revoke, methods=["POST"]),
    Route("/_emulator/tokens/lifetime", lifetime, methods=["PUT"]),
    Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_emulator/faults/{faultId}", fault, methods=["DELETE"]),
    Route("/_emulator/state", state, methods=["GET"]),
    Route("/_emulator/profile", profile, methods=["GET", "PUT"]),
]
