"""The client when VoipNow misbehaves: the emulator in process (httpx.ASGITransport) with its
fault injection, and on a real port where a timeout has to be real."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from calls.uapi import paths
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import CODE_WORDS, UapiRejected, UapiUnavailable
from calls.uapi.types import PhoneCallAction
from calls.uapi.wire import Action, ErrorCode

from .conftest import serving


def fault(emulator: Emulator, **spec: Any) -> None:
    emulator.faults.add({"path": "/uapi/phoneCalls", **spec})


async def test_a_5xx_is_unavailable_with_its_status(emulator: Emulator, uapi: UapiClient) -> None:
    fault(emulator, kind="status", status=503)
    with pytest.raises(UapiUnavailable) as caught:
        await uapi.list_calls_page()
    assert caught.value.status == 503
    assert not caught.value.timed_out


async def test_a_body_that_is_not_json_is_unavailable(emulator: Emulator, uapi: UapiClient) -> None:
    emulator.create_call("0001*100", auto=False)
    fault(emulator, kind="malformed")
    with pytest.raises(UapiUnavailable) as caught:
        await uapi.list_calls_page()
    assert caught.value.status == 200
    assert "not JSON" in caught.value.message


async def test_a_dropped_connection_is_unavailable_and_the_put_is_not_sent_again(
    emulator: Emulator, uapi: UapiClient
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    fault(emulator, kind="drop", method="PUT")
    action = PhoneCallAction(Action.BARGE_IN, phone_call_view_id="01", send_call_to="0001*024")
    with pytest.raises(UapiUnavailable) as caught:
        await uapi.update_call(user_id="@me", extension="0001*201", call_id=call.id, action=action)
    assert not caught.value.timed_out
    # The barge-in did happen; the client cannot know, so it must not ring a second time.
    assert len(emulator.rings) == 1


async def test_a_server_that_never_answers_times_out_at_the_deadline(
    emulator_app: Any, emulator: Emulator
) -> None:
    # ASGITransport enforces no timeouts: this needs a real server.
    fault(emulator, kind="timeout")
    async with (
        serving(emulator_app) as url,
        UapiClient(url, "demo-app", "demo-secret", deadline=0.5) as client,
    ):
        started = time.perf_counter()
        with pytest.raises(UapiUnavailable) as caught:
            await client.list_calls_page()
        took = time.perf_counter() - started
        emulator.faults.remove()
    assert caught.value.timed_out
    assert 0.4 < took < 2.0


async def test_a_read_timeout_is_unavailable_and_timed_out(
    emulator_app: Any, emulator: Emulator
) -> None:
    fault(emulator, kind="timeout")
    async with (
        serving(emulator_app) as url,
        UapiClient(
            url, "demo-app", "demo-secret", timeout=httpx.Timeout(0.3), deadline=10
        ) as client,
    ):
        started = time.perf_counter()
        with pytest.raises(UapiUnavailable) as caught:
            await client.list_calls_page()
        took = time.perf_counter() - started
        emulator.faults.remove()
    assert caught.value.timed_out
    assert took < 2.0


async def test_an_unreadable_call_is_skipped_and_the_others_are_returned(
    emulator: Emulator, uapi: UapiClient, caplog: pytest.LogCaptureFixture
) -> None:
    made = [emulator.create_call("0001*100", auto=False) for _ in range(3)]
    fault(emulator, kind="garbled", method="GET", times=1)
    with caplog.at_level(logging.WARNING, logger="calls.uapi.client"):
        page = await uapi.list_calls_page()
    assert [c.id for c in page.calls] == [c.id for c in made[1:]]
    assert page.total == 3
    assert "skipping an unreadable PhoneCall" in caplog.text


async def test_a_4xx_body_gives_the_uapi_code_and_a_message_for_people(
    emulator: Emulator, uapi: UapiClient
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    action = PhoneCallAction(
        Action.BARGE_IN, phone_call_view_id="01", send_call_to="0001*024", caller_id="nobody"
    )
    with pytest.raises(UapiRejected) as caught:
        await uapi.update_call(user_id="@me", extension="0001*201", call_id=call.id, action=action)
    assert (caught.value.code, caught.value.status) == (ErrorCode.PC_CALLERID_INVALID, 400)
    assert caught.value.message == CODE_WORDS[ErrorCode.PC_CALLERID_INVALID]
    assert caught.value.detail.startswith("Invalid callerId.")


async def test_a_4xx_with_a_code_we_have_no_words_for_keeps_voipnows_message(
    uapi: UapiClient,
) -> None:
    with pytest.raises(UapiRejected) as caught:
        await uapi.list_calls_page(count=0)
    assert caught.value.code == ErrorCode.COUNT_INVALID
    assert caught.value.message == caught.value.detail
    assert "count" in caught.value.message


async def test_create_simple_call_returns_the_new_call_and_a_refusal_has_its_code(
    emulator: Emulator, uapi: UapiClient
) -> None:
    call = await uapi.create_simple_call(
        extension="0001*024", source=["0001*024"], destination=["+14155550123"]
    )
    assert call.id in emulator.calls
    assert call.extension == "0001*024"
    assert call.self_link is not None and call.self_link.endswith(f"/0001*024/{call.id}")
    with pytest.raises(UapiRejected) as caught:
        await uapi.create_simple_call(
            extension="0001*100", source=["0001*024"], destination=["+14155550123"]
        )
    assert (caught.value.code, caught.value.status) == (ErrorCode.PC_EXTENSION_INVALID, 400)
    assert len(emulator.calls) == 1


async def test_listing_again_reuses_the_calls_whose_json_did_not_change(
    emulator: Emulator, uapi: UapiClient
) -> None:
    still = emulator.create_call("0001*100", auto=False)
    moving = emulator.create_call("0001*101", auto=False)
    first = {c.id: c for c in await uapi.list_calls()}

    emulator.answer_call(moving.id)
    second = {c.id: c for c in await uapi.list_calls()}

    assert second[still.id] is first[still.id]
    assert second[moving.id] is not first[moving.id]
    assert second[moving.id].answered is not None and first[moving.id].answered is None


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (paths.phone_calls("@me", "@self"), "/uapi/phoneCalls/@me/@self"),
        (paths.phone_calls("u 1/2", "0001*2@a"), "/uapi/phoneCalls/u%201%2F2/0001*2@a"),
        (
            paths.phone_call("@owner", "0001*201", "c/1?#"),
            "/uapi/phoneCalls/@owner/0001*201/c%2F1%3F%23",
        ),
        (paths.simple_calls("@me"), "/uapi/phoneCalls/@me/simple"),
        (paths.simple_calls("a/b"), "/uapi/phoneCalls/a%2Fb/simple"),
        (
            paths.call_events("@me", "0001*100"),
            "/uapi/extensions/@me/0001*100/phoneCallEvents",
        ),
        (
            paths.call_events("@me", "0001 100"),
            "/uapi/extensions/@me/0001%20100/phoneCallEvents",
        ),
        (
            paths.call_event("@me", "0001*100", 2, "7 8/9"),
            "/uapi/extensions/@me/0001*100/phoneCallEvents/2/7%208%2F9",
        ),
    ],
)
def test_paths_keep_star_and_at_and_percent_encode_the_rest(path: str, expected: str) -> None:
    assert path == expected
