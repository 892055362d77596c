"""Fixtures for the emulator's own tests: the app in process, a plain httpx client talking to
it through ASGITransport, a token, and a way to run a small ASGI app on a real port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from calls.uapi.emulator import Emulator, create_app

# The contract suite's fixtures (test_contract.py): its target, client, cleanup tracker, the
# emulator's control API and a Call Event receiver.
from .contract_support import (  # noqa: F401
    call_event_receiver,
    contract_target,
    control,
    made,
    voipnow,
)

BASE = "http://voipnow.test"


@pytest.fixture
async def emu_app() -> AsyncIterator[Starlette]:
    app = create_app(seed=1, base_url=BASE)
    yield app
    await app.state.emulator.stop()


@pytest.fixture
def emu(emu_app: Starlette) -> Emulator:
    return emu_app.state.emulator


@pytest.fixture
async def http(emu_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=emu_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def get_token(http: httpx.AsyncClient, client_id: str = "demo-app") -> str:
    secret = {"demo-app": "demo-secret"}.get(client_id, f"{client_id}-secret")
    response = await http.post(
        "/oauth/token.php",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
async def auth(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await get_token(http)}"}


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port, on this loop; yield its URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="critical",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def wait_until(predicate: Any, within: float = 3.0) -> None:
    """Poll ``predicate`` (sync) until true; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
