"""The client reads every shape real VoipNow servers answer (facts.md, section 0): collections
plain or wrapped in an array, empty ones without ``entry``, ended calls in any of their four
answers, and paged lists of any length. The answers here are VoipNow's documented shapes,
served as they are written, so each shape is tested even where no emulator profile gives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from calls.uapi.budget import RequestBudget
from calls.uapi.client import PAGE_SIZE, UapiClient
from calls.uapi.envelope import read_collection
from calls.uapi.errors import UapiRejected, UapiUnavailable
from calls.uapi.types import PhoneCallAction
from calls.uapi.wire import Action

Answer = Callable[[httpx.Request], httpx.Response]


def call_json(call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "extension": "0001*100",
        "ownerId": "1",
        "published": "2026-11-27T10:00:00Z",
        "phoneCallView": [
            {"id": "01", "extension": "0001*100", "status": 3, "source": ["+4420"]},
        ],
    }


class Server:
    """Answers the token request, then hands every other request to ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token.php"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        self.requests.append(request)
        return self.answer(request)


@pytest.fixture
def answers() -> list[Answer]:
    """What the server answers next: set ``answers[0]``."""
    return [lambda request: httpx.Response(204)]


@pytest.fixture
def server(answers: list[Answer]) -> Server:
    return Server(lambda request: answers[0](request))


@pytest.fixture
async def client(server: Server) -> AsyncIterator[UapiClient]:
    async with UapiClient(
        "http://voipnow.test", "app", "secret", transport=httpx.MockTransport(server)
    ) as uapi:
        yield uapi


def error(status: int, code: str) -> Answer:
    return lambda request: httpx.Response(
        status, json={"error": {"code": code, "message": "Invalid phone call."}}
    )


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: httpx.Response(204),
        lambda request: httpx.Response(200, json={"totalResults": 0}),
        lambda request: httpx.Response(200, json=[{"totalResults": 0}]),
        lambda request: httpx.Response(200, json={"entry": [], "totalResults": 0}),
        error(400, "pc_phonecall_invalid"),
        error(404, "pc_phonecall_invalid"),
    ],
    ids=["204", "no-entry", "wrapped-no-entry", "empty-entry", "400-invalid", "404"],
)
async def test_a_call_that_has_ended_is_none_whatever_the_shape(
    answer: Answer, answers: list[Answer], client: UapiClient
) -> None:
    answers[0] = answer
    assert await client.get_call("b817d2618fe6f1804333") is None


@pytest.mark.parametrize(
    "body",
    [
        {"entry": [call_json("b817d2618fe6f1804333")], "totalResults": 1},
        [{"entry": [call_json("b817d2618fe6f1804333")], "totalResults": 1}],
        call_json("b817d2618fe6f1804333"),
        [call_json("b817d2618fe6f1804333")],
    ],
    ids=["collection", "wrapped", "bare-object", "bare-array"],
)
async def test_a_live_call_is_read_from_any_collection_shape(
    body: Any, answers: list[Answer], client: UapiClient
) -> None:
    answers[0] = lambda request: httpx.Response(200, json=body)
    call = await client.get_call("b817d2618fe6f1804333")
    assert call is not None
    assert (call.id, call.owner_id, [v.id for v in call.views]) == (
        "b817d2618fe6f1804333",
        "1",
        ["01"],
    )


async def test_other_refusals_of_a_lookup_are_still_errors(
    answers: list[Answer], client: UapiClient
) -> None:
    answers[0] = error(400, "extension_invalid")
    with pytest.raises(UapiRejected) as caught:
        await client.get_call("b817d2618fe6f1804333")
    assert caught.value.code == "extension_invalid"


def paged(total: int, *, wrap: bool, say: str, ignore_start: bool = False) -> Answer:
    """A server holding ``total`` calls that pages as asked; ``say`` is what it tells of the
    rest: "total" (totalResults), "next" (a next link) or "nothing"."""
    ids = [f"{n:020x}" for n in range(total)]

    def answer(request: httpx.Request) -> httpx.Response:
        count = int(request.url.params["count"])
        start = 0 if ignore_start else int(request.url.params["startIndex"])
        chunk = ids[start : start + count]
        body: dict[str, Any] = {"entry": [call_json(i) for i in chunk]}
        if say == "total":
            body["totalResults"] = total
        elif say == "next" and start + count < total:
            body["next"] = (
                f"http://voipnow.test/uapi/phoneCalls/@me/@self?startIndex={start + count}"
            )
        return httpx.Response(200, json=[body] if wrap else body)

    return answer


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "wrapped"])
@pytest.mark.parametrize("say", ["total", "next", "nothing"])
async def test_listing_follows_pages_of_at_most_a_thousand(
    wrap: bool, say: str, answers: list[Answer], server: Server, client: UapiClient
) -> None:
    answers[0] = paged(2_500, wrap=wrap, say=say)
    calls = await client.list_calls()
    assert len({c.id for c in calls}) == len(calls) == 2_500
    counts = [int(r.url.params["count"]) for r in server.requests]
    assert max(counts) <= 1000
    assert [int(r.url.params["startIndex"]) for r in server.requests][:3] == [0, 1000, 2000]


async def test_listing_ends_when_a_server_ignores_the_start_index(
    answers: list[Answer], server: Server, client: UapiClient
) -> None:
    answers[0] = paged(2_500, wrap=False, say="total", ignore_start=True)
    calls = await client.list_calls()
    assert len(calls) == PAGE_SIZE  # the first page, once
    assert len(server.requests) == 2  # the repeat is noticed at once


async def test_call_event_registrations_are_listed_past_the_first_page(
    answers: list[Answer], server: Server, client: UapiClient
) -> None:
    registrations = [
        {"id": str(n), "type": n % 3, "url": "http://cb/hook/", "method": 1, "status": 1}
        for n in range(45)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        # A server that pages at its documented default of 20, whatever count asks for.
        start = int(request.url.params["startIndex"])
        page = registrations[start : start + 20]
        return httpx.Response(200, json=[{"entry": page, "totalResults": len(registrations)}])

    answers[0] = answer
    found = await client.list_call_events(extension="0001*100")
    assert [e.id for e in found] == [str(n) for n in range(45)]
    assert all("count" in r.url.params for r in server.requests)


def test_a_body_that_is_no_collection_is_unavailable() -> None:
    with pytest.raises(UapiUnavailable):
        read_collection("ok", "List PhoneCalls")
    with pytest.raises(UapiUnavailable):
        read_collection({"entry": "nope"}, "List PhoneCalls")


def test_whisper_private_is_sent_as_a_number() -> None:
    on = PhoneCallAction(Action.WHISPER, phone_call_view_id="01", send_call_to="1", private=True)
    off = PhoneCallAction(Action.WHISPER, phone_call_view_id="01", send_call_to="1", private=False)
    assert (on.to_json()["private"], off.to_json()["private"]) == (1, 0)


async def test_a_phone_call_action_is_never_held_back_by_the_request_budget(
    server: Server, answers: list[Answer]
) -> None:
    budget = RequestBudget(1)  # one request a minute: the second read would wait a minute
    async with UapiClient(
        "http://voipnow.test", "app", "secret", transport=httpx.MockTransport(server), budget=budget
    ) as client:
        await client.list_calls_page()
        answers[0] = lambda request: httpx.Response(202, json={"id": "b817d2618fe6f1804333"})
        action = PhoneCallAction(Action.BARGE_IN, phone_call_view_id="01", send_call_to="0001*024")
        async with asyncio.timeout(2):
            await client.update_call(
                user_id="@owner",
                extension="0001*201",
                call_id="b817d2618fe6f1804333",
                action=action,
            )
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.list_calls_page()  # a read waits for the budget
    assert budget.last_minute() == 2
