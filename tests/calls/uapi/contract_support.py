"""What the contract suite runs against, and the fixtures that give it to the tests.

By default the target is the emulator served by uvicorn on a free 127.0.0.1 port (a real
HTTP server in a background thread, one per session). With ``UAPI_BASE_URL``,
``UAPI_CLIENT_ID`` and ``UAPI_CLIENT_SECRET`` set it is that VoipNow; the ``CONTRACT_*``
variables then name the extensions and numbers the suite may use (see the emulator README,
"Running the contract suite against a real VoipNow"). Tests only touch calls and Call Event
registrations they create, and remove them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import uvicorn

from calls.uapi.client import UapiClient
from calls.uapi.emulator import create_app
from calls.uapi.errors import UapiError
from calls.uapi.types import PhoneCall, PhoneCallView
from tests.conftest import VOIPNOW_VERSIONS
from tests.support.waiting import wait_for

T = TypeVar("T")

# The emulator runs five times faster than real time: phones answer in 0.2 s, not 1 s.
EMULATOR_SPEED = 5.0
EMULATOR_CLIENT = ("demo-app", "demo-secret")
# The caller ID the suite gives its own calls, as the spec's examples write them.
CONTRACT_CALLER_ID = "Contract Test <42420042>"


@dataclass(frozen=True)
class Target:
    """A VoipNow (or the emulator) and the numbers the suite may use on it."""

    base_url: str
    client_id: str
    client_secret: str
    emulated: bool
    user_id: str = "@me"
    user_extension: str | None = None
    send_call_to: str | None = None
    send_call_to_caller_id: str | None = None
    callee: str | None = None
    callback_url: str | None = None
    callback_port: int | None = None
    other_org_extension: str | None = None
    non_phone_extension: str | None = None
    # The version the emulator plays; for a real VoipNow, CONTRACT_VOIPNOW_VERSION if set.
    voipnow: int | None = None

    @property
    def patience(self) -> float:
        """How long to wait for a phone to answer or an event to arrive."""
        return 5.0 if self.emulated else 60.0

    @property
    def poll_interval(self) -> float:
        return 0.05 if self.emulated else 0.5

    def need(self, **values: str | None) -> None:
        """Skip the test when one of the named settings is missing."""
        for name, value in values.items():
            if not value:
                pytest.skip(f"{name} is not set: this test needs it on a real VoipNow")

    def emulator_only(self, why: str) -> None:
        if not self.emulated:
            pytest.skip(f"needs the emulator's control API ({why})")


def target_from_environment() -> Target | None:
    """The real VoipNow named by the environment, or None for the emulator."""
    env = os.environ
    names = ("UAPI_BASE_URL", "UAPI_CLIENT_ID", "UAPI_CLIENT_SECRET")
    if not all(env.get(n) for n in names):
        return None
    port = env.get("CONTRACT_CALLBACK_PORT")
    return Target(
        base_url=env["UAPI_BASE_URL"],
        client_id=env["UAPI_CLIENT_ID"],
        client_secret=env["UAPI_CLIENT_SECRET"],
        emulated=False,
        user_id=env.get("CONTRACT_USER_ID") or "@me",
        user_extension=env.get("CONTRACT_USER_EXTENSION"),
        send_call_to=env.get("CONTRACT_SEND_CALL_TO"),
        send_call_to_caller_id=env.get("CONTRACT_SEND_CALL_TO_CALLER_ID"),
        callee=env.get("CONTRACT_CALLEE"),
        callback_url=env.get("CONTRACT_CALLBACK_URL"),
        callback_port=int(port) if port else None,
        other_org_extension=env.get("CONTRACT_OTHER_ORG_EXTENSION"),
        non_phone_extension=env.get("CONTRACT_NON_PHONE_EXTENSION"),
        voipnow=int(env["CONTRACT_VOIPNOW_VERSION"].split(".")[0])
        if env.get("CONTRACT_VOIPNOW_VERSION")
        else None,
    )


def emulator_target(base_url: str, voipnow: int) -> Target:
    """The demo world: Alice's desk phone calls a public number, her softphone barges in."""
    return Target(
        base_url=base_url,
        client_id=EMULATOR_CLIENT[0],
        client_secret=EMULATOR_CLIENT[1],
        emulated=True,
        user_extension="0001*024",
        send_call_to="0001*025",
        send_call_to_caller_id="Alice Mobile <0001025>",
        callee="+14155550123",
        other_org_extension="0002*024",
        non_phone_extension="0001*100",  # a queue
        voipnow=voipnow,
    )


class EmulatorServer:
    """The emulator served by uvicorn on a free 127.0.0.1 port, in a thread with its own
    event loop, so it outlives the per-test loops of pytest-asyncio."""

    def __init__(self, voipnow: int) -> None:
        self.app = create_app(speed=EMULATOR_SPEED, traffic=False, voipnow=voipnow)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name="uapi-emulator", daemon=True
        )

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        finally:
            await self.app.state.emulator.stop()

    def start(self) -> str:
        self.thread.start()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: self.server.started or not self.thread.is_alive(), 10, interval=0.01)
        if not self.server.started:
            raise RuntimeError("the emulator did not start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass(frozen=True)
class Delivery:
    """One request a Call Event receiver got."""

    method: str
    path: str
    content_type: str
    fields: dict[str, str]


class Receiver:
    """A Call Event receiver on real HTTP: records every GET and POST and answers 200."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._seen: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                receiver._record(self, dict(parse_qsl(body, keep_blank_values=True)))

            def do_GET(self) -> None:
                query = urlsplit(self.path).query
                receiver._record(self, dict(parse_qsl(query, keep_blank_values=True)))

            def log_message(self, format: str, *args: Any) -> None:
                pass  # a test run is no place for an access log

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="call-event-receiver", daemon=True
        )

    def _record(self, handler: BaseHTTPRequestHandler, fields: dict[str, str]) -> None:
        delivery = Delivery(
            method=handler.command,
            path=urlsplit(handler.path).path,
            content_type=handler.headers.get("Content-Type", ""),
            fields=fields,
        )
        with self._lock:
            self._seen.append(delivery)
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def seen(self) -> list[Delivery]:
        with self._lock:
            return list(self._seen)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def eventually(probe: Callable[[], Awaitable[T | None]], *, target: Target, what: str) -> T:
    """Call ``probe`` until it answers something truthy; fail after ``target.patience``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + target.patience
    while True:
        found = await probe()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {target.patience:g} s")
        await asyncio.sleep(target.poll_interval)


class Made:
    """Creates calls and Call Event registrations on the target and removes them at the end
    of the test, so the suite never leaves anything behind on a real VoipNow."""

    def __init__(self, uapi: UapiClient, target: Target) -> None:
        self.uapi = uapi
        self.target = target
        self.calls: list[str] = []
        self.events: list[tuple[str, int, str]] = []

    async def call(
        self,
        *,
        destination: Sequence[str] | None = None,
        caller_id: str | None = CONTRACT_CALLER_ID,
        wait_for_pickup: int | None = None,
        call_duration: int | None = 300,
    ) -> PhoneCall:
        """A simple call from the user's extension to the callee (or ``destination``).
        ``call_duration`` bounds it, in case the suite dies before hanging it up."""
        extension = self.extension
        self.target.need(CONTRACT_CALLEE=self.target.callee)
        assert self.target.callee is not None
        call = await self.uapi.create_simple_call(
            user_id=self.target.user_id,
            extension=extension,
            source=[extension],
            destination=destination or [self.target.callee],
            caller_id=caller_id,
            wait_for_pickup=wait_for_pickup,
            call_duration=call_duration,
        )
        self.calls.append(call.id)
        return call

    @property
    def extension(self) -> str:
        self.target.need(CONTRACT_USER_EXTENSION=self.target.user_extension)
        assert self.target.user_extension is not None
        return self.target.user_extension

    async def current(self, call_id: str) -> PhoneCall | None:
        return await self.uapi.get_call(
            call_id, user_id=self.target.user_id, extension=self.extension
        )

    async def own_view(self, call_id: str) -> PhoneCallView:
        """The view of the call from the user's extension (the one to barge in on)."""

        async def probe() -> PhoneCallView | None:
            call = await self.current(call_id)
            views = call.views if call else ()
            return next((v for v in views if v.extension == self.extension), None)

        return await eventually(probe, target=self.target, what="the call's own view")

    async def answered(self, call_id: str) -> PhoneCall:
        """The call once both ends talk (its own view on status 5)."""

        async def probe() -> PhoneCall | None:
            call = await self.current(call_id)
            if call is None:
                raise AssertionError(f"call {call_id} ended before it was answered")
            own = [v for v in call.views if v.extension == self.extension]
            return call if own and own[0].status == 5 else None

        return await eventually(probe, target=self.target, what="the call being answered")

    async def call_event(self, *, type: int, url: str) -> str:
        event_id = await self.uapi.create_call_event(
            user_id=self.target.user_id,
            extension=self.extension,
            type=type,
            url=url,
            method=1,
            note="Callboard contract suite",
        )
        self.events.append((self.extension, type, event_id))
        return event_id

    async def remove_call_events(self) -> None:
        events, self.events = self.events, []
        for extension, type, event_id in events:
            await self.uapi.delete_call_event(
                user_id=self.target.user_id, extension=extension, type=type, event_id=event_id
            )

    async def clean_up(self) -> None:
        """Hang up every call made and delete every registration; report the first failure
        after trying them all."""
        failures: list[UapiError] = []
        try:
            await self.remove_call_events()
        except UapiError as exc:
            failures.append(exc)
        for call_id in self.calls:
            try:
                # False (204) when the call already ended: nothing left to clean.
                await self.uapi.hang_up(
                    call_id=call_id, user_id=self.target.user_id, extension=self.extension
                )
            except UapiError as exc:
                if getattr(exc, "code", "") != "pc_phonecall_invalid":
                    failures.append(exc)
        if failures:
            raise failures[0]


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", params=VOIPNOW_VERSIONS, ids=lambda v: f"voipnow{v}")
def contract_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The emulator playing each VoipNow version in turn, or the real VoipNow configured."""
    real = target_from_environment()
    if real is not None:
        if request.param != VOIPNOW_VERSIONS[0]:
            pytest.skip("a real VoipNow is one version: the suite runs against it once")
        yield real
        return
    server = EmulatorServer(voipnow=request.param)
    url = server.start()
    try:
        yield emulator_target(url, request.param)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def call_event_receiver(contract_target: Target) -> Iterator[Receiver]:
    """Listens on 127.0.0.1: a free port for the emulator, ``CONTRACT_CALLBACK_PORT`` (which
    ``CONTRACT_CALLBACK_URL`` reaches) for a real VoipNow."""
    if contract_target.emulated:
        receiver = Receiver().start()
    else:
        contract_target.need(
            CONTRACT_CALLBACK_URL=contract_target.callback_url,
            CONTRACT_CALLBACK_PORT=str(contract_target.callback_port or ""),
        )
        receiver = Receiver(contract_target.callback_port or 0).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
async def voipnow(contract_target: Target) -> AsyncIterator[UapiClient]:
    """The client under test, talking to the target over real HTTP."""
    async with UapiClient(
        contract_target.base_url, contract_target.client_id, contract_target.client_secret
    ) as client:
        yield client


@pytest.fixture
async def made(voipnow: UapiClient, contract_target: Target) -> AsyncIterator[Made]:
    tracker = Made(voipnow, contract_target)
    try:
        yield tracker
    finally:
        await tracker.clean_up()


@pytest.fixture
async def control(contract_target: Target) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator's control API; skips on a real VoipNow. Faults and the token lifetime
    are put back afterwards."""
    contract_target.emulator_only("faults, token lifetime, ring log")
    async with httpx.AsyncClient(base_url=contract_target.base_url, timeout=5) as http:
        try:
            yield http
        finally:
            await http.delete("/_emulator/faults")
            await http.put("/_emulator/tokens/lifetime", json={"seconds": None})
