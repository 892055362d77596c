"""The agent panel: states from VoipNow's QueueAgents and Presence and from the live calls, time
in state across a restart, VoipNow down, and the panel's DOM as screens receive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client

from calls import live, store
from calls.agents import AgentCall, AgentFloor, agent_state
from calls.live import Watcher
from calls.models import Extension, Wallboard
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.types import PhoneCall, PhoneCallView
from calls.uapi.wire import AgentStatus, ViewStatus
from tests.conftest import every_voipnow
from tests.support.layer import acme_id, listen, received
from tests.support.waiting import eventually

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ACME_AGENTS = {"0001*201", "0001*202", "0001*203", "0001*204", "0001*205", "0001*206"}


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Floor:
    floor: AgentFloor
    watcher: Watcher
    clock: Clock

    async def poll(self) -> None:
        """One poll of the agents, published as the floor's own loop publishes it."""
        changed, _ = await self.floor.poll(self.watcher.organizations)
        for org_id in changed:
            await self.watcher.refresh_panels(org_id)


async def a_floor(uapi: UapiClient, clock: Clock | None = None) -> Floor:
    """A watcher with an agent floor, as ``watch()`` builds one, after its first poll."""
    clock = clock or Clock()
    floor = AgentFloor(uapi, poll_interval=60, clock=clock)
    watcher = Watcher(
        uapi, channel_layer=get_channel_layer(), poll_interval=60, call_events=False, floors=[floor]
    )
    await watcher.load_directory()
    await watcher.refresh_all()
    return Floor(floor, watcher, clock)


@pytest.fixture
async def agents(uapi: UapiClient, world: Any) -> Floor:
    return await a_floor(uapi)


@dataclass
class Agent:
    state: str
    attrs: dict[str, str]
    text: str
    timer_since: str | None
    flagged: bool


class _AgentRows(HTMLParser):
    """The agents of a rendered panel, by extension: what a screen shows of each."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict[str, str]] = []
        self.agents: dict[str, Agent] = {}
        self._current: Agent | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append(found)
        if "data-agent" in found:
            self._current = Agent(found["data-state"], found, "", None, False)
            self.agents[found["data-agent"]] = self._current
        elif self._current is not None:
            if "timer" in found.get("class", "").split():
                self._current.timer_since = found.get("data-since")
            if found.get("data-flag") == "unregistered":
                self._current.flagged = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.text += data


def parse(html: str) -> _AgentRows:
    rows = _AgentRows()
    rows.feed(html)
    return rows


async def panel_html() -> str:
    """Acme's agent panel as a screen that connects now gets it."""
    found = await store.read_snapshot(await acme_id())
    [panel] = [p for p in found.panels if 'id="agents"' in p]
    return panel


async def shown() -> dict[str, Agent]:
    return parse(await panel_html()).agents


async def states() -> dict[str, str]:
    return {ext: agent.state for ext, agent in (await shown()).items()}


# ---- states ------------------------------------------------------------------------------


async def test_every_queue_agent_is_shown_available_once_polled(
    agents: Floor, emulator: Emulator
) -> None:
    await agents.poll()

    assert await states() == dict.fromkeys(ACME_AGENTS, "available")


async def test_states_follow_queue_agents(agents: Floor, emulator: Emulator) -> None:
    await agents.poll()
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    emulator.set_agent_status("0001*203", AgentStatus.LOGGED_OUT)

    await agents.poll()

    found = await states()
    assert (found["0001*201"], found["0001*202"], found["0001*203"]) == (
        "available",
        "paused",
        "logged_out",
    )
    assert "(paused)" in (await shown())["0001*202"].text


async def test_a_pause_through_the_uapi_shows_on_the_next_poll(
    agents: Floor, emulator: Emulator, uapi: UapiClient
) -> None:
    await agents.poll()
    layer, channel = await listen(live.org_group(await acme_id()))
    emulator.set_agent_status("0001*205", AgentStatus.PAUSED, "0001*101")

    await agents.poll()

    [message] = await received(layer, channel)
    assert parse(message["html"]).agents["0001*205"].state == "paused"


@pytest.mark.parametrize(
    ("statuses", "call", "state"),
    [
        ({"q1": 0, "q2": 1}, None, "available"),  # logged out of one queue, online in another
        ({"q1": 2, "q2": 1}, None, "available"),
        ({"q1": 2, "q2": 0}, None, "paused"),
        ({"q1": 0, "q2": 0}, None, "logged_out"),
        ({"q1": 0, "q2": 0}, "on_call", "logged_out"),  # a call of their own, not the queues'
        ({"q1": 2}, "on_call", "on_call"),
        ({"q1": 1}, "ringing", "ringing"),
    ],
)
def test_an_agents_state_across_the_queues_it_serves(
    statuses: dict[str, int], call: str | None, state: str
) -> None:
    on = AgentCall("c1", "+14155550101", call) if call else None
    assert agent_state(statuses, on) == state


async def test_ringing_and_on_a_call_move_at_once_with_the_calls(
    agents: Floor, emulator: Emulator
) -> None:
    await agents.poll()
    layer, channel = await listen(live.org_group(await acme_id()))
    emulator.set_phone("0001*201", answers=False)
    call = emulator.create_call("0001*100", caller="+442071838750")
    assert call.offered_to == "0001*201"

    await agents.watcher.refresh_all()  # no poll of the agents: the call alone moves Ann

    [message] = await received(layer, channel)
    # The panel goes out in the same message as the call's row.
    assert f'id="call-{call.id}"' in message["html"]
    ann = parse(message["html"]).agents["0001*201"]
    assert ann.state == "ringing"
    assert call.id in ann.text

    emulator.answer_call(call.id, "0001*201")
    await agents.watcher.refresh_all()
    ann = (await shown())["0001*201"]
    assert ann.state == "on_call"
    assert call.id in ann.text
    assert "+442071838750" in ann.text
    assert ann.timer_since is not None

    emulator.hangup_call(call.id)
    await agents.watcher.refresh_all()
    assert (await states())["0001*201"] == "available"
    *_, gone = await received(layer, channel)
    # The row's removal comes before the panel: after a <section> a browser drops a <tr>.
    assert gone["html"].index(f'<tr id="call-{call.id}"') < gone["html"].index('id="agents"')


async def test_a_paused_agent_on_a_call_is_on_a_call_and_one_logged_out_stays_logged_out(
    agents: Floor, emulator: Emulator
) -> None:
    await agents.poll()
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*202")
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    emulator.set_agent_status("0001*203", AgentStatus.LOGGED_OUT)
    other = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(other.id, "0001*203")

    await agents.watcher.refresh_all()
    await agents.poll()

    found = await states()
    assert (found["0001*202"], found["0001*203"]) == ("on_call", "logged_out")


async def test_a_supervisor_ringing_into_a_call_leaves_the_agent_on_it(
    agents: Floor,
) -> None:
    await agents.poll()
    org = await acme_id()
    agent_leg = PhoneCallView("01", "0001*201", ViewStatus.ON_CALL, source=("+14155550101",))
    # Barging in: a leg that carries Ann's extension with Alice's phone ringing.
    barge_leg = PhoneCallView("02", "0001*201", ViewStatus.RINGING, source=("0001*024",))
    barged = PhoneCall("c1", "0001*100", "1", views=(agent_leg, barge_leg))
    # Alice's phone calling Ben directly: Ben's phone rings.
    local = PhoneCall(
        "c2",
        "0001*024",
        "1",
        views=(PhoneCallView("01", "0001*202", ViewStatus.RINGING, source=("0001*024",)),),
    )
    await agents.floor.calls_changed(org, {"c1": barged, "c2": local}, [])

    found = await agents.floor.panels(org, {})
    rows = parse(found["agents"]).agents
    assert (rows["0001*201"].state, rows["0001*202"].state) == ("on_call", "ringing")


async def test_an_agent_whose_phone_is_not_registered_is_flagged(
    agents: Floor, emulator: Emulator
) -> None:
    emulator.set_phone("0001*203", registered=False)

    await agents.poll()

    found = await shown()
    assert found["0001*203"].flagged
    assert "not registered" in found["0001*203"].text
    assert not found["0001*201"].flagged

    emulator.set_phone("0001*203", registered=True)
    await agents.poll()
    assert not (await shown())["0001*203"].flagged


async def test_counts_per_queue(agents: Floor, emulator: Emulator) -> None:
    await agents.poll()
    org = await acme_id()
    assert agents.floor.counts(org)["0001*100"] == {
        "available": 3,
        "ringing": 0,
        "on_call": 0,
        "paused": 0,
        "logged_out": 0,
    }
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    emulator.set_agent_status("0001*204", AgentStatus.LOGGED_OUT)
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    await agents.watcher.refresh_all()
    await agents.poll()

    counts = agents.floor.counts(org)
    assert counts["0001*100"] == {
        "available": 1,
        "ringing": 0,
        "on_call": 1,
        "paused": 1,
        "logged_out": 0,
    }
    assert counts["0001*101"] == {
        "available": 2,
        "ringing": 0,
        "on_call": 0,
        "paused": 0,
        "logged_out": 1,
    }


async def test_no_panel_and_no_counts_before_the_first_poll(
    uapi: UapiClient, world: Any, emulator: Emulator
) -> None:
    floor = AgentFloor(uapi, poll_interval=60)
    org = await acme_id()
    await floor.calls_changed(org, {}, [])
    assert await floor.panels(org, {}) == {}
    assert floor.counts(org) == {}


# ---- time in state -----------------------------------------------------------------------


async def test_a_state_begins_when_it_changes_and_not_at_every_poll(
    agents: Floor, emulator: Emulator
) -> None:
    await agents.poll()
    agents.clock.now = T0 + timedelta(seconds=30)
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    await agents.poll()
    agents.clock.now = T0 + timedelta(seconds=90)
    await agents.poll()

    found = await shown()
    assert found["0001*201"].timer_since == T0.isoformat()
    assert found["0001*202"].timer_since == (T0 + timedelta(seconds=30)).isoformat()


async def test_time_in_state_survives_a_watcher_restart(
    uapi: UapiClient, world: Any, emulator: Emulator
) -> None:
    first = await a_floor(uapi, Clock(T0))
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    await first.poll()

    # A new watcher (a restart, or another process taking over) a minute later, while Cleo
    # was paused meanwhile.
    emulator.set_agent_status("0001*203", AgentStatus.PAUSED)
    second = await a_floor(uapi, Clock(T0 + timedelta(minutes=1)))
    await second.poll()

    found = await shown()
    assert found["0001*201"].timer_since == T0.isoformat()
    assert (found["0001*202"].state, found["0001*202"].timer_since) == ("paused", T0.isoformat())
    assert found["0001*203"].timer_since == (T0 + timedelta(minutes=1)).isoformat()


# ---- VoipNow down ------------------------------------------------------------------------


async def test_with_voipnow_down_the_last_states_stay_and_calls_still_move_them(
    agents: Floor, emulator: Emulator
) -> None:
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    await agents.poll()
    before = await panel_html()
    emulator.faults.add({"path": "/uapi/extensions", "kind": "status", "status": 503})
    emulator.set_agent_status("0001*202", AgentStatus.ONLINE)

    changed, failed = await agents.floor.poll(agents.watcher.organizations)

    assert (changed, failed) == ([], True)
    assert await panel_html() == before
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    await agents.watcher.refresh_all()
    found = await states()
    assert (found["0001*201"], found["0001*202"]) == ("on_call", "paused")


async def test_one_queue_failing_keeps_its_agents_and_updates_the_others(
    agents: Floor, emulator: Emulator
) -> None:
    await agents.poll()
    emulator.faults.add(
        {"path": "/uapi/extensions/@me/0001*101/queue", "kind": "status", "status": 500}
    )
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    emulator.set_agent_status("0001*205", AgentStatus.PAUSED)

    changed, failed = await agents.floor.poll(agents.watcher.organizations)

    assert failed is False
    assert changed == [await acme_id()]
    found = agents.floor._orgs[await acme_id()].states
    assert found is not None
    assert (found["0001*202"].state, found["0001*205"].state) == ("paused", "available")


@pytest.fixture
async def running(agents: Floor) -> AsyncIterator[asyncio.Event]:
    """The floor's own loop, polling every 50 ms, as the watcher runs it."""
    agents.floor.poll_interval = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(agents.floor.run(agents.watcher, stop))
    yield stop
    stop.set()
    await asyncio.wait_for(task, 5)


def shows(agent: str, state: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        found = await store.read_snapshot(await acme_id())
        panels = [p for p in found.panels if 'id="agents"' in p]
        return bool(panels) and parse(panels[0]).agents[agent].state == state

    return check


async def test_the_loop_publishes_changes_and_survives_voipnow_down(
    agents: Floor, emulator: Emulator, running: asyncio.Event
) -> None:
    await eventually(shows("0001*202", "available"))
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    await eventually(shows("0001*202", "paused"))

    emulator.faults.add({"path": "/uapi/extensions", "kind": "status", "status": 503})
    await asyncio.sleep(0.3)  # polls fail meanwhile
    assert emulator.faults.faults[0].hits > 0
    assert await shows("0001*202", "paused")()
    emulator.faults.remove()
    emulator.set_agent_status("0001*202", AgentStatus.ONLINE)
    await eventually(shows("0001*202", "available"))


# ---- the panel ---------------------------------------------------------------------------


async def test_the_panel_keeps_the_dom_contract(agents: Floor, emulator: Emulator) -> None:
    emulator.set_agent_status("0001*204", AgentStatus.PAUSED)
    await agents.poll()

    rows = parse(await panel_html())

    assert rows.sections[0]["id"] == "agents"
    assert rows.sections[0]["hx-swap-oob"] == "true"
    assert set(rows.agents) == ACME_AGENTS
    for ext, agent in rows.agents.items():
        assert agent.attrs["data-agent"] == ext
        assert agent.state in {"available", "ringing", "on_call", "paused", "logged_out"}
        assert datetime.fromisoformat(agent.timer_since or "") == T0
    assert rows.agents["0001*201"].attrs["data-queues"] == "0001*100"
    assert rows.agents["0001*204"].attrs["data-queues"] == "0001*101"
    assert "Ann" in rows.agents["0001*201"].text
    assert "Sales" in rows.agents["0001*201"].text


async def test_labels_are_escaped(uapi: UapiClient, world: Any, emulator: Emulator) -> None:
    await Extension.objects.filter(number="0001*201").aupdate(label='<b onclick="x">Ann</b>')
    await Extension.objects.filter(number="0001*100").aupdate(label="Sales & <i>more</i>")
    agents = await a_floor(uapi)
    await agents.poll()

    html = await panel_html()

    assert "<b " not in html
    assert "<i>" not in html
    assert "&lt;b onclick=&quot;x&quot;&gt;Ann&lt;/b&gt;" in html
    assert "Sales &amp; &lt;i&gt;more&lt;/i&gt;" in html
    assert parse(html).agents["0001*201"].text.count('<b onclick="x">Ann</b>') == 1


async def test_the_panel_is_rendered_once_per_change(
    agents: Floor, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    await agents.poll()
    rendered: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> str:
        html = render_to_string(*args, **kwargs)
        rendered.append(html)
        return html

    monkeypatch.setattr("calls.agents.render_to_string", counting)
    org = await acme_id()
    await agents.floor.panels(org, {})
    await agents.poll()
    assert rendered == []
    emulator.set_agent_status("0001*202", AgentStatus.PAUSED)
    await agents.poll()
    assert len(rendered) == 1


# ---- the page ----------------------------------------------------------------------------


@pytest.fixture
def page(alice: User) -> str:
    client = Client()
    client.force_login(alice)
    return client.get("/").content.decode()


def test_the_supervisors_page_holds_the_panel_and_its_filter(page: str) -> None:
    assert 'id="agents"' in page
    assert 'id="agent-queue-filter"' in page
    assert "agents.js" in page


def test_the_wallboard_does_not(world: Any) -> None:
    board = Wallboard.objects.first()
    assert board is not None
    html = Client().get(f"/wallboard/{board.token}/").content.decode()
    assert 'id="agents"' not in html
    assert "agents.js" not in html
