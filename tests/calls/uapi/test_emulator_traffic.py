"""The queue model and random traffic of the emulator."""

from __future__ import annotations

from typing import Any

from calls.uapi.emulator import Emulator, create_app
from tests.support.waiting import holds_throughout, wait_until


def small_world(**queue: Any) -> dict[str, Any]:
    """One organization, one queue, two agents."""
    return {
        "name": "small",
        "seed": 3,
        "serviceProvider": {"id": "100", "name": "SP"},
        "apps": [{"clientId": "a", "clientSecret": "s", "account": "100"}],
        "organizations": [
            {
                "id": "1",
                "name": "Org",
                "prefix": "0001",
                "users": [
                    {
                        "id": "11",
                        "name": "U",
                        "extensions": [
                            {"number": "0001*100", "type": "phoneQueue", "label": "Q"},
                            {"number": "0001*201", "type": "term", "pickupDelay": 1},
                            {"number": "0001*202", "type": "term", "pickupDelay": 1},
                        ],
                    }
                ],
                "queues": [
                    {
                        "extension": "0001*100",
                        "agents": ["0001*201", "0001*202"],
                        "arrivalsPerMinute": 6,
                        "talkSeconds": [10, 20],
                        "patienceSeconds": [30, 60],
                        **queue,
                    }
                ],
            }
        ],
    }


async def test_a_call_is_offered_answered_and_ends_after_its_talk_time() -> None:
    emu = Emulator(small_world(), speed=50)
    call = emu.create_call("0001*100", talk_seconds=5)
    assert call.views["00"].status == 4
    assert call.views["01"].extension == "0001*201"
    assert call.views["01"].status == 3
    await wait_until(lambda: call.answered is not None)  # 1 s pickup = 20 ms
    assert call.views["00"].status == call.views["01"].status == 5
    await wait_until(lambda: call.id not in emu.calls)  # 5 s talk = 100 ms
    second = emu.create_call("0001*100")
    assert second.offered_to == "0001*202"  # idle the longest
    await emu.stop()


async def test_a_caller_abandons_when_patience_runs_out() -> None:
    emu = Emulator(small_world(), speed=50)
    emu.set_agent_status("0001*201", 0)
    emu.set_agent_status("0001*202", 0)
    call = emu.create_call("0001*100", patience_seconds=2)
    assert list(call.views) == ["00"]
    await wait_until(lambda: call.id not in emu.calls)
    await emu.stop()


async def test_an_agent_that_does_not_answer_is_given_up_for_another() -> None:
    emu = Emulator(small_world(ringSeconds=2), speed=50)
    emu.set_phone("0001*201", answers=False)
    call = emu.create_call("0001*100")
    assert call.offered_to == "0001*201"
    await wait_until(lambda: call.answered is not None)
    assert [v.extension for v in call.views.values()] == ["0001*100", "0001*202"]
    await emu.stop()


async def arrivals(seed: int, count: int) -> list[dict[str, Any]]:
    app = create_app(seed=seed, speed=2000)
    emu: Emulator = app.state.emulator
    await emu.start_traffic()
    queues = list(emu.world.queues)
    try:
        await wait_until(
            lambda: all(sum(a["queue"] == q for a in emu.arrivals) >= count for q in queues),
            within=10,
        )
    finally:
        await emu.stop()
    # Per queue, in arrival order; ids are random on purpose, so they are left out.
    return [
        {k: v for k, v in a.items() if k != "phoneCallId"}
        for q in queues
        for a in [x for x in emu.arrivals if x["queue"] == q][:count]
    ]


async def test_traffic_with_a_seed_is_repeatable() -> None:
    first = await arrivals(11, 4)
    second = await arrivals(11, 4)
    other = await arrivals(12, 4)
    assert len(first) == 16
    assert first == second
    assert first != other


async def test_traffic_keeps_at_most_three_waiting_calls_per_agent() -> None:
    emu = Emulator(small_world(arrivalsPerMinute=60000, patienceSeconds=[1000, 1000]), speed=1)
    emu.set_agent_status("0001*201", 0)
    emu.set_agent_status("0001*202", 0)
    await emu.start_traffic()
    waiting = emu.waiting["0001*100"]
    await wait_until(lambda: len(waiting) >= 6, what="the queue to fill")
    # A thousand arrivals a second keep coming at the full queue.
    await holds_throughout(lambda: len(waiting) <= 6, 0.2, "at most six waiting")
    assert emu.traffic_running
    await emu.stop()
    assert len(emu.waiting["0001*100"]) == 6
    assert not emu.traffic_running
