"""Every id that goes into a VoipNow URL is of its documented form and percent-encoded:
``.``, ``..``, empty segments and anything else never reach VoipNow, and the refusal is a
UapiRejected (UapiInvalidId) that callers already handle."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calls.uapi import paths
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import UapiError, UapiInvalidId, UapiRejected
from calls.uapi.types import PhoneCallAction
from calls.uapi.wire import Action, ErrorCode
from tests.conftest import EMULATOR_URL
from tests.support.transport import EmulatorTransport

# Malformed in every place: dot segments, empty, slashes, what decodes to them, spaces,
# query and fragment marks, NUL, line breaks, over-long, and contexts in the wrong place.
MALFORMED = [
    ".",
    "..",
    "",
    "/",
    "a/b",
    "../x",
    "%2e%2e",
    "%2E%2E%2F",
    "..%2f",
    "%00",
    "\x00",
    "a b",
    "c/1?#",
    "abc?x=1",
    "abc#x",
    "abc\r\nX: y",
    "x" * 256,
    "1" * 256,
    "@self@me",
    "@",
]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (paths.phone_calls("@me", "@self"), "/uapi/phoneCalls/@me/@self"),
        (paths.phone_calls("12", "210"), "/uapi/phoneCalls/12/210"),
        (
            paths.phone_call("@owner", "0001*201", "b817d2618fe6f1804333"),
            "/uapi/phoneCalls/@owner/0001*201/b817d2618fe6f1804333",
        ),
        (
            paths.phone_call("@viewer", "@self", "X" * 255),
            f"/uapi/phoneCalls/@viewer/@self/{'X' * 255}",
        ),
        (paths.simple_calls("@me"), "/uapi/phoneCalls/@me/simple"),
        (paths.call_events("@me", "0001*100"), "/uapi/extensions/@me/0001*100/phoneCallEvents"),
        (
            paths.call_event("@me", "0001*100", 2, "a7F3"),
            "/uapi/extensions/@me/0001*100/phoneCallEvents/2/a7F3",
        ),
        (paths.cdr(), "/uapi/cdr/"),
        (paths.cdr("11"), "/uapi/cdr/11/"),
        (paths.queue_agents("@me", "0001*100"), "/uapi/extensions/@me/0001*100/queue/agents"),
        (paths.presence("@me", "@self"), "/uapi/extensions/@me/@self/presence"),
    ],
)
def test_ids_of_their_documented_form_keep_star_and_at(path: str, expected: str) -> None:
    assert path == expected


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_call_id_is_refused_as_voipnow_would_refuse_it(value: str) -> None:
    with pytest.raises(UapiInvalidId) as caught:
        paths.phone_call("@me", "@self", value)
    refusal = caught.value
    assert isinstance(refusal, UapiRejected)
    assert (refusal.status, refusal.code, refusal.segment) == (
        400,
        ErrorCode.PC_PHONECALL_INVALID,
        "phoneCallId",
    )
    assert "nothing was sent" in refusal.message


@pytest.mark.parametrize("value", [*MALFORMED, "@self", "abc", "1*a"])
def test_a_malformed_user_is_refused(value: str) -> None:
    for build in (
        lambda: paths.phone_calls(value, "@self"),
        lambda: paths.simple_calls(value),
        lambda: paths.call_events(value, "0001*100"),
        lambda: paths.presence(value, "@self"),
        lambda: paths.cdr(value),
    ):
        with pytest.raises(UapiInvalidId) as caught:
            build()
        assert caught.value.code == ErrorCode.USER_INVALID


@pytest.mark.parametrize("value", [*MALFORMED, "@me", "0001*10a", "0001#100", "+40212"])
def test_a_malformed_extension_is_refused(value: str) -> None:
    for build in (
        lambda: paths.phone_calls("@me", value),
        lambda: paths.phone_call("@me", value, "abc"),
        lambda: paths.call_events("@me", value),
        lambda: paths.queue_agents("@me", value),
        lambda: paths.presence("@me", value),
    ):
        with pytest.raises(UapiInvalidId) as caught:
            build()
        assert caught.value.code == ErrorCode.EXTENSION_INVALID


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_event_id_is_refused(value: str) -> None:
    with pytest.raises(UapiInvalidId) as caught:
        paths.call_event("@me", "0001*100", 0, value)
    assert caught.value.code == ErrorCode.PCE_ID_INVALID


def test_what_is_not_a_string_is_refused_too() -> None:
    for value in (None, 12, ["abc"], b"abc"):
        with pytest.raises(UapiInvalidId):
            paths.phone_call("@me", "@self", value)  # type: ignore[arg-type]


async def test_every_id_the_emulator_hands_out_is_accepted(
    emulator: Emulator, uapi: UapiClient
) -> None:
    # The checks must be no stricter than VoipNow: every user, extension, organization, call
    # and Call Event id of the emulator's world passes.
    event_id = await uapi.create_call_event(
        extension="0001*100", type=0, url="http://callboard.test/hooks/voipnow/s/"
    )
    await uapi.delete_call_event(extension="0001*100", type=0, event_id=event_id)
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id)
    for user in emulator.world.users:
        paths.phone_calls(user, "@self")
    for organization in emulator.world.organizations:
        paths.cdr(organization)
    for number in emulator.world.extensions:
        paths.phone_call("@owner", number, call.id)
        paths.queue_agents("@me", number)
    assert paths.is_call_id(call.id)


@settings(max_examples=200, deadline=None, database=None)
@given(user=st.text(), extension=st.text(), call_id=st.text())
def test_any_text_gives_a_refusal_or_a_path_that_goes_out_as_it_is(
    user: str, extension: str, call_id: str
) -> None:
    try:
        path = paths.phone_call(user, extension, call_id)
    except UapiInvalidId:
        return
    segments = path.split("/")[3:]
    assert len(segments) == 3
    assert all(s and s not in {".", ".."} for s in segments)
    # httpx sends it without resolving anything away.
    request = httpx.Request("GET", f"{EMULATOR_URL}{path}")
    assert request.url.raw_path == path.encode()


@pytest.fixture
async def recorded(transport: EmulatorTransport) -> Any:
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        yield uapi


@pytest.mark.parametrize("bad", [".", "..", "", "%2e%2e", "a/b", "x" * 300])
async def test_the_client_sends_nothing_for_a_malformed_id(
    bad: str, emulator: Emulator, recorded: UapiClient, transport: EmulatorTransport
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id)
    action = PhoneCallAction(Action.BARGE_IN, phone_call_view_id="01", send_call_to="0001*024")
    attempts: list[Any] = [
        recorded.get_call(bad),
        recorded.update_call(user_id="@owner", extension="0001*100", call_id=bad, action=action),
        recorded.update_call(user_id="@owner", extension=bad, call_id=call.id, action=action),
        recorded.hang_up(call_id=bad),
        recorded.list_calls(extension=bad),
        recorded.list_queue_agents(bad),
        recorded.presence(bad),
        recorded.delete_call_event(extension="0001*100", type=0, event_id=bad),
    ]
    for attempt in attempts:
        with pytest.raises(UapiError) as caught:
            await attempt
        assert isinstance(caught.value, UapiInvalidId)
    assert transport.sent == []
    assert emulator.rings == []
