"""The Call Event hook with its secret: what it takes as an event, what it refuses, how many
events a second it passes on, and that any body or query gives a refusal or a valid event
(never an exception, never a malformed id on its way to VoipNow)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from channels.layers import get_channel_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.live import EVENT_WINDOW, WATCHER_CHANNEL, Watcher
from calls.uapi import paths
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from dashboard import hooks
from dashboard.asgi import application
from dashboard.hooks import MAX_FIELDS, CallEvent, EventRefused, RateCap, parse_event
from tests.conftest import EMULATOR_URL
from tests.support.layer import waiting_on
from tests.support.transport import LIST, EmulatorTransport
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


async def hook(body: bytes, *, secret: str, method: str = "POST", query: bytes = b"") -> int:
    """One request to the hook through the dashboard's ASGI application; its status."""
    sent: list[dict[str, Any]] = []
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if asked:
            await asyncio.Event().wait()
        asked = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = f"/hooks/voipnow/{secret}/"
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": query,
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ["127.0.0.1", 5000],
        "server": ["127.0.0.1", 8000],
    }
    await asyncio.wait_for(application(scope, receive, send), 5)
    return int(sent[0]["status"])


async def told_watcher() -> list[dict[str, Any]]:
    """The messages waiting on the watcher's channel."""
    return await waiting_on(WATCHER_CHANNEL)


@pytest.fixture(autouse=True)
async def _watcher_channel_empty() -> None:
    """The in-memory layer lives as long as the process: drop what earlier tests left."""
    await told_watcher()


@pytest.fixture(autouse=True)
def rate_cap(monkeypatch: pytest.MonkeyPatch) -> RateCap:
    """A cap of this test's own, its clock stopped: every event of a test in one second."""
    cap = RateCap(clock=lambda: 1000.0)
    monkeypatch.setattr(hooks, "rate_cap", cap)
    return cap


# ---- what is an event -----------------------------------------------------------------------

MALFORMED_CALL_IDS = [
    ".",
    "..",
    "a/b",
    "../x",
    "%2e%2e",  # form-decoded: ".."
    "%252e%252e",  # form-decoded: "%2e%2e"
    "%2F",
    "abc%00",
    "abc def",
    "x" * 256,
]


@pytest.mark.parametrize("value", MALFORMED_CALL_IDS)
def test_a_malformed_call_id_alone_is_refused(value: str) -> None:
    assert isinstance(parse_event(f"CallID=1.2&CallAPIID={value}"), EventRefused)


@pytest.mark.parametrize("value", MALFORMED_CALL_IDS)
def test_a_malformed_call_id_beside_an_extension_names_the_extension(value: str) -> None:
    event = parse_event(f"CallAPIID={value}&CalledExtension=0001*100")
    assert event == CallEvent(None, ("0001*100",))


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("CallAPIID=b817d2618fe6f1804333", CallEvent("b817d2618fe6f1804333")),
        ("CallAPIID=" + "a" * 255, CallEvent("a" * 255)),
        (" CallAPIID = abc ", CallEvent(None)),  # no field named CallAPIID: refresh everything
        ("CallAPIID=&CalledExtension=0001*100", CallEvent(None, ("0001*100",))),
        ("CallAPIID=&CallerExtension=..&CalledExtension=0001*100", CallEvent(None, ("0001*100",))),
        ("CallAPIID=", CallEvent(None)),
        ("", CallEvent(None)),
        ("CallID=1764240000.17&CallStatus=ANSWER", CallEvent(None)),
        (
            "CalledExtension=0001*100/../x",
            EventRefused("no call id or extension of VoipNow's form"),
        ),
        ("&".join(f"f{i}=1" for i in range(MAX_FIELDS + 1)), EventRefused("more than 64 fields")),
    ],
)
def test_what_the_hook_takes_as_an_event(form: str, expected: CallEvent | EventRefused) -> None:
    assert parse_event(form) == expected


# ---- the hook over ASGI -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["..", ".", "%2e%2e", "a%2Fb", "x" * 300])
async def test_dot_dot_and_its_kind_are_refused_and_never_reach_the_watcher(
    world: Any, settings: Any, value: str
) -> None:
    secret = settings.CALLBOARD_HOOK_SECRET
    assert await hook(f"CallAPIID={value}".encode(), secret=secret) == 400
    assert await hook(b"", secret=secret, method="GET", query=f"CallAPIID={value}".encode()) == 400
    assert await told_watcher() == []


async def test_too_many_fields_are_refused(world: Any, settings: Any) -> None:
    body = "&".join(f"f{i}=1" for i in range(1000)).encode()
    assert await hook(body, secret=settings.CALLBOARD_HOOK_SECRET) == 400
    assert await told_watcher() == []


async def test_past_the_events_a_second_allowed_one_poll_is_asked_for_and_the_rest_dropped(
    world: Any, settings: Any, rate_cap: RateCap
) -> None:
    settings.CALLBOARD_HOOK_MAX_PER_SECOND = 5
    secret = settings.CALLBOARD_HOOK_SECRET
    for i in range(20):
        # VoipNow is answered 200 either way: the poll covers what was dropped.
        assert await hook(f"CallAPIID=call{i}".encode(), secret=secret) == 200
    told = await told_watcher()
    assert [(m["call_id"], m["extensions"]) for m in told] == [
        *((f"call{i}", []) for i in range(5)),
        (None, []),  # everything, once
    ]
    rate_cap.clock = lambda: 1001.0  # the next second
    assert await hook(b"CallAPIID=later", secret=secret) == 200
    assert [m["call_id"] for m in await told_watcher()] == ["later"]


@pytest.fixture
async def watching(transport: EmulatorTransport, world: Any) -> AsyncIterator[Watcher]:
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        watcher = Watcher(
            uapi, channel_layer=get_channel_layer(), poll_interval=60, call_events=False
        )
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        try:
            yield watcher
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def test_a_flood_through_the_hook_costs_voipnow_a_bounded_number_of_requests(
    emulator: Emulator,
    watching: Watcher,
    transport: EmulatorTransport,
    settings: Any,
    rate_cap: RateCap,
) -> None:
    calls = [emulator.create_call("0001*100", auto=False) for _ in range(100)]
    await wait_until(lambda: LIST in transport.reads, what="the first poll")
    before = len(transport.reads)
    secret = settings.CALLBOARD_HOOK_SECRET
    loop = asyncio.get_running_loop()
    started = loop.time()
    now = 1000.0
    rate_cap.clock = lambda: now
    for i in range(10_000):
        if i % 1000 == 0:
            now += 1  # ten seconds' worth of events, a thousand a second
            await asyncio.sleep(0.01)
        assert await hook(f"CallAPIID={calls[i % 100].id}".encode(), secret=secret) == 200
    await asyncio.sleep(EVENT_WINDOW + 0.5)
    elapsed = loop.time() - started
    # The hook passed 51 messages a (hook's) second: at most 50 calls and one poll; the
    # watcher reads each call at most once a window, and its polls, one a window at most,
    # cover the rest.
    reads = transport.reads[before:]
    assert len(reads) <= 10 * (settings.CALLBOARD_HOOK_MAX_PER_SECOND + 1)
    assert reads.count(LIST) <= elapsed / EVENT_WINDOW + 2


# ---- any input --------------------------------------------------------------------------------

FIELD_NAMES = st.sampled_from(
    ["CallAPIID", "CalledExtension", "CallerExtension", "CallID", "CallStatus", "x", ""]
)
forms = st.one_of(
    st.text(max_size=500),
    st.lists(st.tuples(FIELD_NAMES, st.text(max_size=300)), max_size=12).map(urlencode),
    st.lists(
        st.tuples(FIELD_NAMES, st.sampled_from(["..", ".", "", "%2e%2e", "0001*100", "a/b"])),
        max_size=6,
    ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
)


@settings(max_examples=200, deadline=None, database=None)
@given(raw=forms)
def test_any_form_is_a_refusal_or_an_event_with_ids_voipnow_takes(raw: str) -> None:
    event = parse_event(raw)
    assert isinstance(event, CallEvent | EventRefused)
    if isinstance(event, CallEvent):
        if event.call_id is not None:
            paths.phone_call("@me", "@self", event.call_id)  # raises if it is not of the form
        for number in event.extensions:
            paths.phone_calls("@me", number)


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.one_of(st.binary(max_size=2000), forms.map(str.encode)), as_get=st.booleans())
async def test_any_body_or_query_is_answered_and_only_well_formed_ids_go_on(
    body: bytes, as_get: bool, world: Any, settings: Any
) -> None:
    secret = settings.CALLBOARD_HOOK_SECRET
    if as_get:
        status = await hook(b"", secret=secret, method="GET", query=body)
    else:
        status = await hook(body, secret=secret)
    told = await told_watcher()
    assert status in (200, 400)
    if status == 400:
        assert told == []
    for message in told:
        assert message["call_id"] is None or paths.is_call_id(message["call_id"])
        assert all(paths.is_extension(n) for n in message["extensions"])
