"""A busy floor in the emulator's traffic: agents pause and log out on a seeded schedule and
come back, callers give up waiting, and the demo scenario is busy enough for both.

Traffic runs sped up and the tests wait on conditions, never for fixed times."""

from __future__ import annotations

from typing import Any

import httpx

from calls.uapi.emulator import Emulator, create_app
from calls.uapi.wire import AgentStatus
from tests.support.waiting import wait_until

from .conftest import BASE
from .test_emulator_traffic import small_world

PAUSES = {"everySeconds": [20, 40], "lengthSeconds": [10, 20]}


def agent_statuses(emu: Emulator, queue: str = "0001*100") -> dict[str, AgentStatus]:
    return {a: emu.agent_status_of(queue, a) for a in emu.queue_agents(queue)}


def break_log(emu: Emulator) -> list[tuple[str, int]]:
    return [(b["agent"], b["status"]) for b in emu.agent_breaks]


async def test_agents_pause_and_come_back_online() -> None:
    emu = Emulator(small_world(arrivalsPerMinute=0, agentPauses=PAUSES), speed=200)
    await emu.start_traffic()
    await wait_until(
        lambda: AgentStatus.PAUSED in agent_statuses(emu).values(), what="an agent paused"
    )
    paused = next(a for a, s in agent_statuses(emu).items() if s is AgentStatus.PAUSED)
    await wait_until(
        lambda: (paused, int(AgentStatus.ONLINE)) in break_log(emu), what="the pause to end"
    )
    await emu.stop()
    log = break_log(emu)
    # Every agent of the queue takes breaks, each ends before the next begins.
    assert {agent for agent, _ in log} <= set(emu.queue_agents("0001*100"))
    for agent in emu.queue_agents("0001*100"):
        own = [status for a, status in log if a == agent]
        assert set(own[::2]) <= {2}, own
        assert set(own[1::2]) <= {1}, own


async def test_a_paused_agent_is_seen_in_queue_agents_and_offered_no_calls() -> None:
    app = create_app(small_world(arrivalsPerMinute=0, agentPauses=PAUSES), speed=200, base_url=BASE)
    emu: Emulator = app.state.emulator
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        token = emu.issue_token("a", "s")
        assert token is not None
        auth = {"Authorization": f"Bearer {token.value}"}
        await emu.start_traffic()
        await wait_until(lambda: AgentStatus.PAUSED in agent_statuses(emu).values(), what="a pause")
        # Freeze the world where it is: the pause must not end while we look.
        await emu.stop_traffic()
        paused = next(a for a, s in agent_statuses(emu).items() if s is AgentStatus.PAUSED)
        answer = await http.get("/uapi/extensions/@me/0001*100/queue/agents", headers=auth)
        entries = answer.json()[0]["entry"]
        assert {e["agentNumber"]: e["status"] for e in entries}[paused] == 2
        for _ in range(3):
            call = emu.create_call("0001*100", talk_seconds=1000, patience_seconds=1000)
            assert call.offered_to != paused
    await emu.stop()


async def test_breaks_follow_the_seed() -> None:
    async def first_breaks(seed: int) -> list[tuple[str, int]]:
        world = small_world(arrivalsPerMinute=0, agentPauses=PAUSES)
        emu = Emulator(world, seed=seed, speed=200)
        await emu.start_traffic()
        await wait_until(lambda: len(emu.agent_breaks) >= 4, what="four break changes")
        await emu.stop()
        return break_log(emu)[:4]

    first = await first_breaks(5)
    assert await first_breaks(5) == first


async def test_agents_log_out_and_back_in() -> None:
    logouts = {"everySeconds": [20, 40], "lengthSeconds": [10, 20]}
    emu = Emulator(small_world(arrivalsPerMinute=0, agentLogouts=logouts), speed=200)
    await emu.start_traffic()
    await wait_until(
        lambda: int(AgentStatus.LOGGED_OUT) in {s for _, s in break_log(emu)}, what="a log-out"
    )
    out = next(a for a, s in break_log(emu) if s == AgentStatus.LOGGED_OUT)
    await wait_until(lambda: (out, int(AgentStatus.ONLINE)) in break_log(emu), what="log-in")
    await emu.stop()


async def test_a_break_leaves_an_agent_someone_else_paused_alone() -> None:
    emu = Emulator(small_world(arrivalsPerMinute=0, agentPauses=PAUSES), speed=200)
    emu.set_agent_status("0001*201", AgentStatus.LOGGED_OUT)
    await emu.start_traffic()
    await wait_until(lambda: len(emu.agent_breaks) >= 4, what="breaks of the other agent")
    await emu.stop()
    assert "0001*201" not in {agent for agent, _ in break_log(emu)}
    assert emu.agent_status_of("0001*100", "0001*201") is AgentStatus.LOGGED_OUT


async def test_without_traffic_nobody_takes_a_break() -> None:
    emu = Emulator(small_world(agentPauses=PAUSES, agentLogouts=PAUSES), speed=1000)
    call = emu.create_call("0001*100", talk_seconds=60)
    await wait_until(lambda: call.id not in emu.calls, what="a call to run its course")
    assert emu.agent_breaks == []
    assert set(agent_statuses(emu).values()) == {AgentStatus.ONLINE}
    await emu.stop()


async def test_callers_give_up_when_agents_cannot_keep_up() -> None:
    # One agent's worth of capacity for many callers with little patience.
    world: dict[str, Any] = small_world(
        arrivalsPerMinute=30, talkSeconds=[60, 90], patienceSeconds=[5, 15]
    )
    emu = Emulator(world, speed=100)
    await emu.start_traffic()
    await wait_until(
        lambda: any(r.answered is None for r in emu.cdrs), within=10, what="an abandoned call"
    )
    await emu.stop()
    abandoned = [r for r in emu.cdrs if r.answered is None]
    assert all(r.body["disposition"] == 3 for r in abandoned)
    assert all(r.body["destination"] == ["0001*100"] for r in abandoned)


def test_the_demo_scenario_has_every_agent_take_breaks() -> None:
    emu = Emulator()
    for queue in emu.world.queues.values():
        assert queue.pauses is not None, queue.extension
        assert queue.logouts is not None, queue.extension
        # Pauses of 30 s to 2 min every few minutes: the floor visibly changes.
        assert queue.pauses.length[1] <= 180
        assert queue.pauses.every[1] <= 600


async def test_the_demo_makes_callers_wait_and_some_give_up_within_minutes() -> None:
    """Five emulated minutes of the demo's own traffic: some caller waits past 20 s, some
    gives up, some agent pauses."""
    speed = 60.0
    emu = Emulator(speed=speed)
    await emu.start_traffic()

    def waited(record: Any) -> float:
        answered = record.answered or record.ended
        return float((answered - record.published).total_seconds()) * speed

    def busy() -> bool:
        return (
            any(r.answered is None for r in emu.cdrs)
            and any(r.answered is not None and waited(r) > 20 for r in emu.cdrs)
            and any(b["status"] == AgentStatus.PAUSED for b in emu.agent_breaks)
        )

    await wait_until(busy, within=5 * 60 / speed, what="waits, an abandon and a pause")
    await emu.stop()
