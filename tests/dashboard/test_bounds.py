"""Input is bounded before it costs anything, in process through the real ASGI application:
request bodies (declared or streamed), websocket messages, unknown socket paths and malformed
static paths. The same over a real daphne process: test_bounds_daphne.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from channels.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from django.contrib.auth.models import User

from calls.live import WATCHER_CHANNEL
from dashboard.asgi import application
from dashboard.bounds import MAX_SOCKET_MESSAGE, MESSAGE_TOO_BIG, BoundedInput
from tests.dashboard.test_consumers import ORIGIN, drain, socket_for
from tests.support.layer import waiting_on

pytestmark = pytest.mark.django_db(transaction=True)

HOST = (b"host", b"127.0.0.1")
LIMIT = 4096


@pytest.fixture(autouse=True)
def _small_limit(settings: Any) -> None:
    settings.CALLBOARD_MAX_BODY_BYTES = LIMIT


@pytest.fixture(autouse=True)
async def _no_events_left() -> AsyncIterator[None]:
    """The hook's accepted events go to the process's in-memory layer: leave none behind."""
    yield
    await waiting_on(WATCHER_CHANNEL)


def paths(secret: str) -> list[str]:
    """A route of each kind: the hook, a wrong hook path, Django's login page, a static file."""
    return [
        f"/hooks/voipnow/{secret}/",
        "/hooks/voipnow/wrong/path/",
        "/accounts/login/",
        "/static/callboard.css",
    ]


class Streamed:
    """A client sending a body in chunks without a Content-Length (chunked), for ever unless
    stopped: counts the chunks the application pulled."""

    def __init__(self, chunk: int = 512, total: int | None = None) -> None:
        self.chunk = chunk
        self.total = total
        self.pulled = 0

    async def receive(self) -> dict[str, Any]:
        self.pulled += 1
        if self.total is not None and self.pulled * self.chunk >= self.total:
            return {"type": "http.request", "body": b"x" * self.chunk, "more_body": False}
        if self.pulled > 10_000:
            # The application kept reading far past any limit; stop the test, not the machine.
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"x" * self.chunk, "more_body": True}


async def call(
    app: Any,
    path: str,
    receive: Callable[[], Awaitable[dict[str, Any]]],
    headers: list[Any],
    method: str = "POST",
) -> list[dict[str, Any]]:
    """Run one request through ``app``; returns what it sent."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [HOST, (b"content-type", b"application/x-www-form-urlencoded"), *headers],
        "client": ["127.0.0.1", 5000],
        "server": ["127.0.0.1", 8000],
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


def status_of(sent: list[dict[str, Any]]) -> int:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"])


async def never_called() -> dict[str, Any]:
    raise AssertionError("the body was read")


async def test_a_declared_length_over_the_limit_is_answered_413_unread(
    world: Any, settings: Any
) -> None:
    for path in paths(settings.CALLBOARD_HOOK_SECRET):
        sent = await call(application, path, never_called, [(b"content-length", b"4097")])
        assert status_of(sent) == 413, path


async def test_a_streamed_body_is_counted_and_stopped_at_the_limit(
    world: Any, settings: Any
) -> None:
    for path in paths(settings.CALLBOARD_HOOK_SECRET):
        client = Streamed(chunk=512)
        sent = await call(application, path, client.receive, [])
        assert status_of(sent) == 413, path
        # 4096 bytes are 8 chunks: the ninth goes past the limit, and nothing is read after.
        assert client.pulled == 9, path


async def test_a_body_within_the_limit_goes_through(world: Any, settings: Any) -> None:
    form = b"CallAPIID=abc&" + b"x" * (LIMIT - 100)
    exact = b"CallAPIID=abc&Note=" + b"y" * (LIMIT - len(b"CallAPIID=abc&Note="))
    hook = f"/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/"
    for body in (form, exact):
        response = await HttpCommunicator(
            application, "POST", hook, body=body, headers=[HOST]
        ).get_response()
        assert response["status"] == 200
    streamed = Streamed(chunk=512, total=LIMIT)
    sent = await call(application, hook, streamed.receive, [])
    assert status_of(sent) == 200


@pytest.mark.parametrize("length", [b"-1", b"12abc", b"1e9", b" ", b"9" * 40])
async def test_a_content_length_that_is_no_number_is_refused(length: bytes) -> None:
    sent = await call(application, "/accounts/login/", never_called, [(b"content-length", length)])
    assert status_of(sent) == 400


async def test_two_different_content_lengths_are_refused() -> None:
    headers = [(b"content-length", b"10"), (b"content-length", b"5000")]
    sent = await call(application, "/accounts/login/", never_called, headers)
    assert status_of(sent) == 400


async def test_an_answer_begun_before_the_limit_is_cut_short_never_answered_twice() -> None:
    async def streaming_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive())["type"] == "http.request":
            await send({"type": "http.response.body", "body": b".", "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})

    client = Streamed(chunk=1024)
    sent = await call(BoundedInput(streaming_app), "/", client.receive, [])
    assert status_of(sent) == 200
    assert client.pulled == 5
    assert b"end" not in b"".join(m.get("body", b"") for m in sent)


# ---- websockets ----------------------------------------------------------------------------


async def closed_with(comm: WebsocketCommunicator) -> int:
    """The close code of the next close the socket sends, after whatever came before it."""
    while True:
        output = await comm.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


@pytest.mark.parametrize(
    "message",
    [
        {"text_data": "x" * (MAX_SOCKET_MESSAGE + 1)},
        {"bytes_data": b"x" * (MAX_SOCKET_MESSAGE + 1)},
        # Fewer characters than the limit, more bytes: bytes are what count.
        {"text_data": "é" * (MAX_SOCKET_MESSAGE // 2 + 1)},
    ],
)
async def test_a_socket_message_over_64_kib_closes_the_socket(
    alice: User, message: dict[str, Any]
) -> None:
    comm = await socket_for(alice)
    connected, _ = await comm.connect()
    assert connected
    await drain(comm, quiet=0.2)
    await comm.send_to(**message)
    assert await closed_with(comm) == MESSAGE_TOO_BIG
    await comm.wait(timeout=3)


async def test_a_socket_message_of_64_kib_is_taken(alice: User) -> None:
    comm = await socket_for(alice)
    connected, _ = await comm.connect()
    assert connected
    await drain(comm, quiet=0.2)
    await comm.send_to(text_data="x" * MAX_SOCKET_MESSAGE)
    await comm.send_to(bytes_data=b"x" * MAX_SOCKET_MESSAGE)
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


@pytest.mark.parametrize("path", ["/ws/nothing/", "/ws/calls/x/", "/ws/", "/elsewhere", "/"])
async def test_an_unknown_socket_path_is_refused_without_an_error(world: Any, path: str) -> None:
    comm = WebsocketCommunicator(application, path, headers=[ORIGIN])
    # connect() raises when the application does; a refusal is (False, code).
    connected, _ = await comm.connect(timeout=3)
    assert connected is False


async def test_a_server_that_can_answer_404_to_a_handshake_gets_404(world: Any) -> None:
    scope = {
        "type": "websocket",
        "path": "/ws/nothing/",
        "raw_path": b"/ws/nothing/",
        "query_string": b"",
        "headers": [ORIGIN, HOST],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "websocket.connect"})
    start = await comm.receive_output(timeout=3)
    body = await comm.receive_output(timeout=3)
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 404)
    assert body["type"] == "websocket.http.response.body"
    await comm.wait(timeout=3)


# ---- static files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/static/../settings.py",
        "/static/../dashboard/settings.py",
        "/static/../../etc/passwd",
        "/static/%2e%2e/dashboard/settings.py",
        "/static/\x00",
        "/static/%00",
        "/static/callboard.css\x00.py",
        "/static/" + "a" * 5000,
        "/static/" + "a/" * 2000 + "x.css",
        "/static/" + "é" * 300,
    ],
)
async def test_a_malformed_static_path_is_404(world: Any, path: str) -> None:
    response = await HttpCommunicator(application, "GET", path, headers=[HOST]).get_response(
        timeout=5
    )
    assert response["status"] == 404
    assert b"Traceback" not in response["body"]


async def test_a_static_file_is_still_served(world: Any) -> None:
    asked = asyncio.Event()

    async def no_body() -> dict[str, Any]:
        if asked.is_set():
            await asyncio.Event().wait()  # the client stays until the answer is sent
        asked.set()
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = await call(application, "/static/callboard.css", no_body, [], method="GET")
    assert status_of(sent) == 200


async def test_the_hook_counts_as_a_route_like_any_other(world: Any, settings: Any) -> None:
    # The hook's own 64 KiB bound stays, below the general one when that is larger.
    settings.CALLBOARD_MAX_BODY_BYTES = 1024 * 1024
    hook = f"/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/"
    response = await HttpCommunicator(
        application, "POST", hook, body=b"x" * (64 * 1024 + 1), headers=[HOST]
    ).get_response()
    assert response["status"] == 413
