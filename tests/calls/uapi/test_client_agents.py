"""The client's QueueAgents and Presence, against the emulator as VoipNow 5 (collections wrapped
in an array) and VoipNow 3 (the collection object itself), and on answers served as written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import UapiRejected
from calls.uapi.types import Presence, QueueAgent
from calls.uapi.wire import AgentStatus
from tests.conftest import every_voipnow


@every_voipnow
async def test_it_lists_every_agent_of_a_queue_with_its_status_there(
    emulator: Emulator, uapi: UapiClient
) -> None:
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED, "0001*100")
    emulator.set_agent_status("0001*203", AgentStatus.LOGGED_OUT, "0001*100")

    # Two a page: the third agent is on the second page.
    agents = await uapi.list_queue_agents("0001*100", page_size=2)

    assert sorted(agents, key=lambda a: a.agent_number) == [
        QueueAgent("0001*201", AgentStatus.ONLINE),
        QueueAgent("0001*202", AgentStatus.PAUSED),
        QueueAgent("0001*203", AgentStatus.LOGGED_OUT),
    ]
    # Statuses are per queue: Ben is paused in Sales only.
    assert {a.agent_number: a.status for a in await uapi.list_queue_agents("0001*101")} == {
        "0001*204": 1,
        "0001*205": 1,
        "0001*206": 1,
    }


@every_voipnow
async def test_asking_for_the_agents_of_an_extension_that_is_no_queue_is_refused(
    uapi: UapiClient,
) -> None:
    with pytest.raises(UapiRejected) as refused:
        await uapi.list_queue_agents("0001*201")
    assert refused.value.code == "extension_invalid"


@every_voipnow
async def test_presence_says_whether_each_phone_is_registered(
    emulator: Emulator, uapi: UapiClient
) -> None:
    emulator.set_phone("0001*202", registered=False)

    everyone = {p.extension: p for p in await uapi.presence()}
    [one] = await uapi.presence("0001*202")

    assert everyone["0001*201"] == Presence("0001*201", status=1, registered=True)
    assert everyone["0001*202"].registered is False
    assert one == everyone["0001*202"]
    # A queue needs no registration (2): it counts as registered.
    assert everyone["0001*100"].registered is True
    assert len(everyone) == len(emulator.world.extensions)


@every_voipnow
async def test_a_phone_that_is_not_registered_is_not_offered_calls(emulator: Emulator) -> None:
    emulator.set_phone("0001*201", registered=False)

    call = emulator.create_call("0001*100")

    # Ann's phone has been idle the longest: registered, it would ring first.
    assert call.offered_to == "0001*202"


def _serving(body: Any) -> UapiClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token.php"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(200, json=body)

    return UapiClient("http://voipnow.test", "app", "secret", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("wrap", [False, True], ids=["object", "wrapped"])
async def test_presence_reads_registrations_as_the_resource_page_lists_them(wrap: bool) -> None:
    collection = {
        "totalResults": 5,
        "entry": [
            {"extension": "0001*201", "status": 1, "registration": [{"registration": 1}]},
            {"extension": "0001*202", "status": "0", "registration": [{"registration": "-1"}]},
            # Registration expired (-2) on one phone, registered on another: registered.
            {
                "extension": "0001*203",
                "status": 3,
                "registration": [{"registration": -2}, {"registration": 1}],
            },
            {"extension": "0001*204", "status": 0, "registration": []},
            {"extension": "0001*205", "status": 0, "registration": [{"registration": 0}]},
        ],
    }
    async with _serving([collection] if wrap else collection) as uapi:
        found = {p.extension: p.registered for p in await uapi.presence()}
    assert found == {
        "0001*201": True,
        "0001*202": False,
        "0001*203": True,
        "0001*204": False,
        "0001*205": False,
    }


async def test_an_unreadable_agent_is_skipped_and_a_repeated_one_kept_once() -> None:
    body = [
        {
            "entry": [
                {"agentNumber": "0001*201", "status": "2"},
                {"agentNumber": "0001*202"},  # no status: neither online nor logged out
                {"agentNumber": "0001*201", "status": "2"},
                {"agentNumber": "+14155550101", "status": 1},  # a remote agent
            ]
        }
    ]
    async with _serving(body) as uapi:
        agents = await uapi.list_queue_agents("0001*100")
    assert agents == (QueueAgent("0001*201", 2), QueueAgent("+14155550101", 1))
