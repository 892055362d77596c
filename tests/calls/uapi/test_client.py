"""The client when VoipNow misbehaves: the emulator in process (httpx.ASGITransport) with its
fault injection, and on a real port where a timeout has to be real. Also its OAuth token and
the ``parse`` hook of its listings (its resource paths: test_paths.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from calls.uapi.auth import ClientCredentials
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import CODE_WORDS, UapiAuthError, UapiRejected, UapiUnavailable
from calls.uapi.types import PhoneCall, PhoneCallAction, WireFormatError
from calls.uapi.wire import TOKEN_PATH, Action, ErrorCode
from tests.conftest import every_voipnow

from .conftest import serving

EMULATOR_URL = "http://emulator.test"

pytestmark = every_voipnow


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
    assert call.self_link is not None
    assert call.self_link.endswith(f"/0001*024/{call.id}")
    with pytest.raises(UapiRejected) as caught:
        await uapi.create_simple_call(
            extension="0001*100", source=["0001*024"], destination=["+14155550123"]
        )
    assert (caught.value.code, caught.value.status) == (ErrorCode.PC_EXTENSION_INVALID, 400)
    assert len(emulator.calls) == 1


@dataclass(frozen=True)
class Sent:
    method: str
    url: httpx.URL
    headers: httpx.Headers
    content: bytes
    extensions: dict[str, Any]


class Recorder(httpx.AsyncBaseTransport):
    """The emulator in process, keeping every request the client sent it, as it was sent (a
    request sent again is the same object, with new headers)."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(
            Sent(
                request.method,
                request.url,
                request.headers.copy(),
                await request.aread(),
                dict(request.extensions),
            )
        )
        return await self._inner.handle_async_request(request)

    def tokens(self) -> int:
        return sum(r.url.path == TOKEN_PATH for r in self.sent)

    def bearers(self, method: str) -> list[str]:
        """The Authorization header of each ``method`` request to the UAPI, in order."""
        return [
            r.headers.get("Authorization", "")
            for r in self.sent
            if r.method == method and r.url.path.startswith("/uapi/")
        ]


@contextlib.asynccontextmanager
async def recorded(emulator_app: Any, **options: Any) -> AsyncIterator[tuple[UapiClient, Recorder]]:
    recorder = Recorder(emulator_app)
    async with UapiClient(
        EMULATOR_URL, "demo-app", "demo-secret", transport=recorder, **options
    ) as client:
        yield client, recorder


def barge_in_action() -> PhoneCallAction:
    return PhoneCallAction(Action.BARGE_IN, phone_call_view_id="01", send_call_to="0001*024")


# ---------------------------------------------------------------------------- the token


async def test_concurrent_requests_wait_for_one_token(
    emulator_app: Any, emulator: Emulator
) -> None:
    # A slow token answer, so every request asks for a token before the first one has it.
    emulator.faults.add({"path": TOKEN_PATH, "kind": "latency", "seconds": 0.05})
    async with recorded(emulator_app) as (client, recorder):
        await asyncio.gather(*(client.list_calls_page() for _ in range(5)))
    assert recorder.tokens() == 1
    bearers = recorder.bearers("GET")
    assert len(bearers) == 5
    assert len(set(bearers)) == 1
    assert bearers[0].startswith("Bearer ")


@pytest.mark.parametrize(
    ("lifetime", "renew_at"),
    [(100, 90.0), (3600, 3540.0)],
    ids=["a-short-life-at-90-percent", "a-long-life-a-minute-before-expiry"],
)
async def test_the_token_is_renewed_before_it_expires(
    emulator_app: Any, emulator: Emulator, lifetime: int, renew_at: float
) -> None:
    emulator.token_lifetime = lifetime
    now = 0.0
    async with recorded(emulator_app, clock=lambda: now) as (client, recorder):
        await client.list_calls_page()
        now = renew_at - 0.1
        await client.list_calls_page()
        assert recorder.tokens() == 1
        now = renew_at
        await client.list_calls_page()
    assert recorder.tokens() == 2
    first, kept, renewed = recorder.bearers("GET")
    assert first == kept != renewed


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_token_is_renewed_and_the_request_sent_once_more(
    emulator_app: Any, emulator: Emulator, status: int
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    emulator.faults.add(
        {"path": "/uapi/phoneCalls", "kind": "status", "status": status, "times": 1}
    )
    async with recorded(emulator_app) as (client, recorder):
        updated = await client.update_call(
            user_id="@me", extension="0001*201", call_id=call.id, action=barge_in_action()
        )
    assert updated.id == call.id
    assert recorder.tokens() == 2
    refused, retried = recorder.bearers("PUT")
    assert refused != retried
    assert retried.removeprefix("Bearer ") in emulator.tokens
    assert len(emulator.rings) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_a_token_refused_twice_is_an_auth_error_after_one_retry(
    emulator_app: Any, emulator: Emulator, status: int
) -> None:
    emulator.faults.add({"path": "/uapi/phoneCalls", "kind": "status", "status": status})
    async with recorded(emulator_app) as (client, recorder):
        with pytest.raises(UapiAuthError) as caught:
            await client.list_calls_page()
    assert (caught.value.status, caught.value.code) == (status, ErrorCode.ACCESS_DENIED)
    assert recorder.tokens() == 2
    assert len(recorder.bearers("GET")) == 2


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"kind": "status", "status": 500}, UapiUnavailable),
        ({"kind": "status", "status": 503}, UapiUnavailable),
        ({"kind": "status", "status": 400}, UapiRejected),
        ({"kind": "status", "status": 404}, UapiRejected),
        ({"kind": "timeout"}, UapiUnavailable),
        ({"kind": "drop"}, UapiUnavailable),
    ],
    ids=["500", "503", "400", "404", "timeout", "drop"],
)
async def test_a_put_that_failed_otherwise_is_sent_once(
    emulator_app: Any, emulator: Emulator, spec: dict[str, Any], error: type[Exception]
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    emulator.faults.add({"path": "/uapi/phoneCalls", "method": "PUT", **spec})
    async with recorded(emulator_app, deadline=0.2) as (client, recorder):
        with pytest.raises(error):
            await client.update_call(
                user_id="@me", extension="0001*201", call_id=call.id, action=barge_in_action()
            )
    assert len(recorder.bearers("PUT")) == 1
    assert recorder.tokens() == 1


@pytest.mark.parametrize(
    ("spec", "message", "timed_out", "status"),
    [
        ({"kind": "status", "status": 503}, "VoipNow failed the token request (503).", False, 503),
        ({"kind": "timeout"}, "VoipNow did not answer the token request in time.", True, None),
        ({"kind": "drop"}, "VoipNow could not be reached: DroppedConnection.", False, None),
    ],
    ids=["5xx", "timeout", "drop"],
)
async def test_a_failed_token_request_is_unavailable_and_nothing_else_is_sent(
    emulator_app: Any,
    emulator: Emulator,
    spec: dict[str, Any],
    message: str,
    timed_out: bool,
    status: int | None,
) -> None:
    emulator.faults.add({"path": TOKEN_PATH, **spec})
    async with recorded(emulator_app, deadline=0.2) as (client, recorder):
        with pytest.raises(UapiUnavailable) as caught:
            await client.list_calls_page()
    assert (caught.value.message, caught.value.timed_out) == (message, timed_out)
    assert caught.value.status == status
    assert recorder.tokens() == 1
    assert recorder.bearers("GET") == []


async def test_refused_app_credentials_are_an_auth_error_with_invalid_client(
    emulator_app: Any,
) -> None:
    recorder = Recorder(emulator_app)
    async with UapiClient(EMULATOR_URL, "demo-app", "wrong", transport=recorder) as client:
        with pytest.raises(UapiAuthError) as caught:
            await client.list_calls_page()
    assert caught.value.code == ErrorCode.INVALID_CLIENT
    assert caught.value.message == CODE_WORDS[ErrorCode.INVALID_CLIENT]
    assert recorder.bearers("GET") == []


async def test_one_deadline_covers_the_token_request_and_the_request(
    emulator_app: Any, emulator: Emulator
) -> None:
    # Each answer alone is within the deadline; together they are not.
    emulator.faults.add({"path": TOKEN_PATH, "kind": "latency", "seconds": 0.3})
    emulator.faults.add({"path": "/uapi/phoneCalls", "kind": "latency", "seconds": 0.3})
    async with recorded(emulator_app, deadline=0.5) as (client, recorder):
        with pytest.raises(UapiUnavailable) as caught:
            await client.list_calls_page()
        # The token arrived: the next request is not slowed by a token request.
        emulator.faults.remove()
        await client.list_calls_page()
    assert caught.value.timed_out
    assert caught.value.message == "VoipNow did not answer in time."
    assert recorder.tokens() == 1


async def test_the_token_request_carries_the_app_credentials_and_the_client_headers(
    emulator_app: Any,
) -> None:
    async with recorded(emulator_app) as (client, recorder):
        await client.list_calls_page()
    token = recorder.sent[0]
    assert (token.method, str(token.url)) == ("POST", f"{EMULATOR_URL}{TOKEN_PATH}")
    assert token.content == (
        b"grant_type=client_credentials&client_id=demo-app&client_secret=demo-secret"
        b"&type=unifiedapi&redirect_uri="
    )
    assert token.headers["User-Agent"] == "Callboard/0.1"
    assert token.headers["Accept"] == "application/json"
    assert "Authorization" not in token.headers
    assert token.extensions["timeout"] == recorder.sent[1].extensions["timeout"]


def test_the_token_flow_refuses_a_sync_client() -> None:
    auth = ClientCredentials(f"{EMULATOR_URL}{TOKEN_PATH}", "demo-app", "demo-secret")
    never = httpx.MockTransport(lambda request: httpx.Response(500))
    with httpx.Client(auth=auth, transport=never) as client, pytest.raises(RuntimeError):
        client.get(f"{EMULATOR_URL}/uapi/phoneCalls/@me/@self")


# ---------------------------------------------------------------------------- parse


async def test_list_calls_keeps_what_its_parse_makes_of_each_entry(
    emulator: Emulator, uapi: UapiClient
) -> None:
    still = emulator.create_call("0001*100", auto=False)
    moving = emulator.create_call("0001*101", auto=False)
    # A caller's own parse: the same object for an entry whose JSON did not change.
    known: dict[str, tuple[Any, PhoneCall]] = {}

    def remembering(entry: Any) -> PhoneCall:
        kept = known.get(entry["id"])
        if kept is not None and kept[0] == entry:
            return kept[1]
        call = PhoneCall.from_json(entry)
        known[call.id] = (entry, call)
        return call

    first = {c.id: c for c in await uapi.list_calls(parse=remembering)}

    emulator.answer_call(moving.id)
    second = {c.id: c for c in await uapi.list_calls(parse=remembering)}

    assert second[still.id] is first[still.id]
    assert second[moving.id] is not first[moving.id]
    assert second[moving.id].answered is not None
    assert first[moving.id].answered is None


async def test_an_entry_its_parse_cannot_read_is_skipped(
    emulator: Emulator, uapi: UapiClient, caplog: pytest.LogCaptureFixture
) -> None:
    made = [emulator.create_call("0001*100", auto=False) for _ in range(3)]
    seen: list[Any] = []

    def refusing_the_first(entry: Any) -> PhoneCall:
        seen.append(entry)
        if entry["id"] == made[0].id:
            raise WireFormatError("not this one")
        return PhoneCall.from_json(entry)

    with caplog.at_level(logging.WARNING, logger="calls.uapi.client"):
        page = await uapi.list_calls_page(parse=refusing_the_first)
    assert [e["id"] for e in seen] == [c.id for c in made]
    assert [c.id for c in page.calls] == [c.id for c in made[1:]]
    assert "skipping an unreadable PhoneCall: not this one" in caplog.text
