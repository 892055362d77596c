"""Input bounds over a real daphne process, as a deployment runs it: a 50 MB body is refused
with 413 and daphne's memory does not grow with it; a websocket message over 64 KiB closes
the socket, whether daphne is told the limit or not; an unknown socket path is refused
without a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from dashboard.bounds import MAX_SOCKET_MESSAGE, MESSAGE_TOO_BIG, SERVER_MESSAGE_TOO_BIG
from tests.support import launcher
from tests.support.ports import HOST, free_port
from tests.support.processes import Processes

HOOK_SECRET = "bounds-test-hook-secret-of-32-or-more-characters"
MB = 1024 * 1024
BODY = 50 * MB
# What daphne may grow by while refusing a 50 MB body: a few MB of buffers and answers.
# Before the limit was applied inside daphne it grew by the body's size (79 to 130 MB).
ALLOWED_GROWTH = 8 * MB


@dataclass
class Daphne:
    url: str
    pid: int
    procs: Processes
    name: str
    session: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def memory(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (the peak) of the process, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def reset_peak(self) -> None:
        """Start VmHWM again from the current RSS (Linux: ``5`` to ``clear_refs``)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")


def environment(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CALLBOARD_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        PYTHONPATH=str(launcher.ROOT),
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        CALLBOARD_VAR_DIR=str(var_dir),
        CALLBOARD_HOOK_SECRET=HOOK_SECRET,
        # Nothing answers here: the dashboard needs no VoipNow to refuse input.
        UAPI_BASE_URL=f"http://{HOST}:{free_port()}",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=launcher.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Daphne]]:
    """Two daphne processes on one SQLite database with the demo's users: ``plain`` started
    as the README's production command was, ``told`` with daphne's own websocket limits."""
    workdir = tmp_path_factory.mktemp("bounds")
    env = environment(workdir / "var")
    manage(env, "migrate", "-v0")
    manage(env, "shell", "-c", "from calls.demo_data import seed; seed()")
    code = (
        "from django.contrib.auth.models import User; from django.test import Client; "
        "c = Client(); c.force_login(User.objects.get(username='alice')); "
        "print(c.cookies['sessionid'].value)"
    )
    session = manage(env, "shell", "-c", code).strip().splitlines()[-1]
    procs = Processes(workdir)
    limits = [
        "--websocket-max-message-size",
        str(MAX_SOCKET_MESSAGE),
        "--websocket-max-frame-size",
        str(MAX_SOCKET_MESSAGE),
    ]
    servers: dict[str, Daphne] = {}
    try:
        for name, options in (("plain", []), ("told", limits)):
            port = free_port()
            proc = launcher.start_daphne(procs, name, port, env, options=options)
            servers[name] = Daphne(f"http://{HOST}:{port}", proc.pid, procs, name, session)
        yield servers
    finally:
        procs.stop_all()


def paths() -> list[str]:
    return [f"/hooks/voipnow/{HOOK_SECRET}/", "/hooks/voipnow/wrong/path/", "/accounts/login/"]


def chunks(total: int, size: int = MB) -> Iterator[bytes]:
    """A body without a Content-Length: httpx sends it chunked."""
    for _ in range(total // size):
        yield b"x" * size


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_refused_and_daphne_does_not_grow(
    stack: dict[str, Daphne], chunked: bool
) -> None:
    daphne = stack["plain"]
    with httpx.Client(base_url=daphne.url, timeout=30) as client:
        for path in paths():
            # Once small, so that what a first request loads is not counted.
            client.post(path, content=b"CallAPIID=abc")
        for path in paths():
            before = daphne.memory("VmRSS")
            daphne.reset_peak()
            body = chunks(BODY) if chunked else b"x" * BODY
            response = client.post(path, content=body)
            assert response.status_code == 413, path
            growth = daphne.memory("VmHWM") - before
            assert growth < ALLOWED_GROWTH, f"{path}: daphne grew by {growth / MB:.1f} MB"


def test_a_client_that_asks_before_sending_is_told_413_and_sends_nothing(
    stack: dict[str, Daphne],
) -> None:
    daphne = stack["plain"]
    port = int(daphne.url.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(
            b"POST /hooks/voipnow/wrong/path/ HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {300 * MB}\r\n".encode()
            + b"Expect: 100-continue\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 Continue" not in answer


async def alice_socket(daphne: Daphne, path: str = "/ws/calls/") -> websockets.ClientConnection:
    return await websockets.connect(
        f"{daphne.ws_url}{path}",
        additional_headers={"Cookie": f"sessionid={daphne.session}", "Origin": daphne.url},
        open_timeout=10,
        max_size=None,
    )


async def drained(ws: websockets.ClientConnection) -> None:
    """Read what the socket sends on connecting (the snapshot) until it goes quiet."""
    with contextlib.suppress(TimeoutError):
        while True:
            await asyncio.wait_for(ws.recv(), 0.5)


async def until_closed(ws: websockets.ClientConnection) -> None:
    """Read until the server closes the socket (ConnectionClosed), 5 s at most a message."""
    while True:
        await asyncio.wait_for(ws.recv(), 5)


@pytest.mark.parametrize(
    ("server", "codes"),
    [
        ("plain", {MESSAGE_TOO_BIG}),
        # autobahn fails the connection by dropping it (its failByDrop default): the client
        # sees an abnormal closure rather than its 1009.
        ("told", {SERVER_MESSAGE_TOO_BIG, 1006}),
    ],
)
async def test_a_socket_message_over_64_kib_closes_the_socket(
    stack: dict[str, Daphne], server: str, codes: set[int]
) -> None:
    # Told the limit, daphne closes the socket itself, before the application reads the
    # message; started without it, the application closes it (4009).
    daphne = stack[server]
    ws = await alice_socket(daphne)
    try:
        await drained(ws)
        await ws.send("x" * MAX_SOCKET_MESSAGE)  # at the limit: taken
        await asyncio.wait_for(await ws.ping(), 5)
        await ws.send("x" * (MAX_SOCKET_MESSAGE + 1))
        with pytest.raises(websockets.ConnectionClosed):
            await until_closed(ws)
        assert ws.close_code in codes
    finally:
        await ws.close()
    application_closed = "websocket message over" in daphne.procs.log(daphne.name)
    assert application_closed == (server == "plain")
    assert "Traceback" not in daphne.procs.log(daphne.name)


async def test_an_unknown_socket_path_is_refused_without_a_traceback(
    stack: dict[str, Daphne],
) -> None:
    daphne = stack["plain"]
    for path in ("/ws/nothing/", "/ws/calls/extra/", "/elsewhere"):
        with pytest.raises(websockets.InvalidStatus) as caught:
            await alice_socket(daphne, path)
        # daphne answers a refused handshake 403; it cannot say 404 (the denial-response
        # extension is not among what it offers), and it no longer says 500.
        assert caught.value.response.status_code == 403, path
    assert "Traceback" not in daphne.procs.log(daphne.name)
