"""Shared fixtures: the demo world (alice of Acme, bob of Globex), the emulator in process, a
client talking to it, and a watcher that publishes what the emulator holds."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.contrib.auth.models import User
from django.core.cache import cache
from starlette.applications import Starlette

from calls.demo_data import seed
from calls.live import Watcher
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator, create_app
from tests.support.transport import EmulatorTransport

EMULATOR_URL = "http://emulator.test"


@dataclass(frozen=True)
class AnsweredCall:
    id: str
    agent_view: str
    agent_extension: str


async def answered_call(
    emulator: Emulator, watcher: Watcher, queue: str = "0001*100"
) -> AnsweredCall:
    """A call an agent answered, once the watcher has published it."""
    call = emulator.create_call(queue, auto=False)
    emulator.answer_call(call.id)
    await watcher.refresh_all()
    agent = next(v for v in call.views.values() if v.role == "agent")
    return AnsweredCall(id=call.id, agent_view=agent.id, agent_extension=agent.extension)


def require_services() -> bool:
    return os.environ.get("CALLBOARD_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip when a service is absent on a developer's machine; fail in CI, which has them all."""
    if require_services():
        pytest.fail(f"{reason} (required: CALLBOARD_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # The real hasher costs half a second per password: fine for people, slow for fixtures.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _empty_channel_layer() -> None:
    """Each test starts with an empty in-process channel layer: a message one test left on a
    channel (the watcher's, after a barge-in) must not reach the next test's reader."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        # What its flush() does, without an event loop (a browser test's may be running).
        layer.channels.clear()
        layer.groups.clear()


@pytest.fixture
def world() -> dict[str, str]:
    """The demo organizations, extensions and accounts (alice, bob, admin)."""
    return seed()


@pytest.fixture
def alice(world: dict[str, str]) -> User:
    return User.objects.get(username="alice")


@pytest.fixture
def bob(world: dict[str, str]) -> User:
    return User.objects.get(username="bob")


# The VoipNow versions the emulator plays. A test (or module) marked ``every_voipnow`` that
# uses the emulator runs against each of them: what must hold wherever VoipNow is deployed.
VOIPNOW_VERSIONS = (5, 3)
every_voipnow = pytest.mark.every_voipnow


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = any(
        "voipnow_version" in str(mark.args[0])
        for mark in metafunc.definition.iter_markers("parametrize")
    )
    wanted = metafunc.definition.get_closest_marker("every_voipnow") is not None
    if wanted and not chosen and "voipnow_version" in metafunc.fixturenames:
        metafunc.parametrize(
            "voipnow_version", VOIPNOW_VERSIONS, indirect=True, ids=lambda v: f"voipnow{v}"
        )


@pytest.fixture
def voipnow_version(request: pytest.FixtureRequest) -> int:
    """The VoipNow version the emulator plays: 5 unless the test is parametrized."""
    return int(getattr(request, "param", 5))


@pytest.fixture
def transport(emulator_app: Starlette) -> EmulatorTransport:
    """The emulator in process, recording every request sent through it."""
    return EmulatorTransport(emulator_app)


@pytest.fixture
async def emulator_app(voipnow_version: int) -> AsyncIterator[Starlette]:
    """The emulator in process (reached through ``httpx.ASGITransport``), without random
    traffic, playing ``voipnow_version``; its links name ``EMULATOR_URL``."""
    app = create_app(traffic=False, base_url=EMULATOR_URL, voipnow=voipnow_version)
    yield app
    await app.state.emulator.stop()


@pytest.fixture
def emulator(emulator_app: Starlette) -> Emulator:
    """The emulated VoipNow's world, to arrange calls, phones and faults directly."""
    emulator: Emulator = emulator_app.state.emulator
    return emulator


@pytest.fixture
async def uapi(emulator_app: Starlette) -> AsyncIterator[UapiClient]:
    """Our UapiClient talking to the in-process emulator."""
    async with UapiClient(
        EMULATOR_URL, "demo-app", "demo-secret", transport=httpx.ASGITransport(app=emulator_app)
    ) as client:
        yield client


@pytest.fixture
async def watcher(uapi: UapiClient, world: dict[str, str]) -> Watcher:
    w = Watcher(uapi, channel_layer=get_channel_layer(), poll_interval=1.0, call_events=False)
    await w.load_directory()
    return w
