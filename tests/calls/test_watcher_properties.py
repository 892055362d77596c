"""The live path's promise to screens: a screen that took the snapshot at any moment and then
applied every change sent after it shows exactly what a new screen gets from the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import accumulate
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls import live, store
from calls.live import Watcher
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.types import PhoneCallAction
from calls.uapi.wire import USER_OWNER, Action
from tests.calls.test_watcher_guards import Watched, poll_in_flight
from tests.conftest import EMULATOR_URL, every_voipnow
from tests.support.layer import acme_id, received
from tests.support.transport import EmulatorTransport

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

QUEUES = ("0001*100", "0001*101", "0002*100")
# The supervisors' phones never pick up here, so a barge-in leg rings until the example ends:
# nothing changes unless a step changes it.
SUPERVISOR_PHONES = {"1": "0001*024", "2": "0002*024"}


# ---- a screen ---------------------------------------------------------------------------------


class _CallRows(HTMLParser):
    """The top-level ``<tr id="call-…">`` elements of some HTML, in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.html = html
        self._line_starts = [0, *accumulate(len(line) for line in html.splitlines(True))]
        self._open: tuple[str, int, bool] | None = None
        self.found: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "tr" or self._open is not None:
            return
        found = dict(attrs)
        row_id = found.get("id") or ""
        assert row_id.startswith("call-"), row_id
        delete = found.get("hx-swap-oob") == "delete"
        self._open = (row_id.removeprefix("call-"), self._offset(), delete)

    def handle_endtag(self, tag: str) -> None:
        if tag != "tr" or self._open is None:
            return
        call_id, start, delete = self._open
        end = self._offset() + len("</tr>")
        self.found.append((call_id, None if delete else self.html[start:end]))
        self._open = None


def call_rows(html: str) -> list[tuple[str, str | None]]:
    """``(call id, the row's HTML)`` for each call row in ``html``, in order; the HTML is None
    for a fragment that removes the call's row."""
    return _CallRows(html).found


@dataclass
class Screen:
    """What one screen shows, after the snapshot it connected with and the changes it got."""

    version: int
    rows: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, version: int, rows: list[str]) -> Screen:
        screen = cls(version)
        for row in rows:
            [(call_id, html)] = call_rows(row)
            assert html is not None
            screen.rows[call_id] = html
        return screen

    def apply(self, message: dict[str, Any]) -> None:
        if message["version"] <= self.version:
            return  # already in the snapshot (as the consumer does)
        # Nothing sent was missed. The one gap allowed: an Organization's first publish with
        # no calls sends nothing, and a screen that connected before it showed nothing anyway.
        assert message["prev"] == self.version or (self.version == 0 and not self.rows)
        for call_id, html in call_rows(message["html"]):
            if html is None:
                self.rows.pop(call_id, None)
            else:
                self.rows[call_id] = html
        self.version = message["version"]


# ---- what happens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Something happens to the calls in VoipNow, then the watcher may learn of it."""

    change: str  # arrive, answer, hang_up, barge
    pick: int  # which call, or which queue a call arrives in
    # poll: the next poll; event: a Call Event for the call, and for ``also``; race: that
    # event while a poll that started before the change is in flight; later: not yet
    then: str
    also: frozenset[int]  # other calls (any that ever arrived, gone or not) the events name


# Calls arrive more often than other changes, so that there are calls to answer and hang up.
CHANGES = ["arrive"] * 3 + ["answer"] * 2 + ["hang_up"] * 2 + ["barge"]
steps = st.builds(
    Step,
    st.sampled_from(CHANGES),
    st.integers(0, 5),
    st.sampled_from(["poll", "event", "race", "later"]),
    st.frozensets(st.integers(0, 5), max_size=2),
)


class Floor:
    """The emulator's calls as the steps see them, and the watcher that follows them."""

    def __init__(self, emulator: Emulator, watched: Watched, uapi: UapiClient) -> None:
        self.emulator = emulator
        self.watched = watched
        self.uapi = uapi
        self.seen: list[str] = []  # every call that ever arrived, in order

    def _pick(self, pick: int, *, answered: bool | None = None) -> str | None:
        live_ids = [
            i
            for i in self.seen
            if i in self.emulator.calls
            and (answered is None or (self.emulator.calls[i].answered is not None) == answered)
        ]
        return live_ids[pick % len(live_ids)] if live_ids else None

    async def change(self, step: Step) -> str | None:
        """Make the step's change in VoipNow; the id of the call it changed, if any."""
        emulator = self.emulator
        if step.change == "arrive":
            new = emulator.create_call(QUEUES[step.pick % len(QUEUES)], auto=False)
            self.seen.append(new.id)
            return new.id
        call_id = self._pick(step.pick, answered={"answer": False, "barge": True}.get(step.change))
        if call_id is None:
            return None
        call = emulator.calls[call_id]
        if step.change == "answer":
            assert call.queue is not None
            agents = emulator.world.queues[call.queue].agents
            emulator.answer_call(call_id, agents[step.pick % len(agents)])
        elif step.change == "hang_up":
            emulator.hangup_call(call_id)
        else:
            agent = next(v for v in call.views.values() if v.role == "agent")
            await self.uapi.update_call(
                user_id=USER_OWNER,
                extension=agent.extension,
                call_id=call_id,
                action=PhoneCallAction(
                    Action.BARGE_IN,
                    agent.id,
                    send_call_to=SUPERVISOR_PHONES[call.organization_id],
                ),
            )
        return call_id

    async def take(self, step: Step) -> None:
        watcher = self.watched.watcher
        if step.then == "race":
            async with poll_in_flight(self.watched):
                await self.events(step, await self.change(step))
            return
        call_id = await self.change(step)
        if step.then == "poll":
            await watcher.refresh_all()
        elif step.then == "event":
            await self.events(step, call_id)

    async def events(self, step: Step, call_id: str | None) -> None:
        named = {self.seen[p % len(self.seen)] for p in step.also} if self.seen else set()
        await self.watched.watcher.refresh_calls(named | ({call_id} if call_id else set()))


@settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(steps, min_size=2, max_size=12))
async def test_the_snapshot_plus_every_change_sent_after_it_is_a_fresh_snapshot(
    plan: list[Step],
    world: dict[str, str],
    emulator: Emulator,
    emulator_app: Any,
) -> None:
    # One example after another in the same test: start each from an empty VoipNow and store.
    emulator.reset()
    for phone in SUPERVISOR_PHONES.values():
        emulator.set_phone(phone, answers=False)
    cache.clear()
    org_id = await acme_id()
    layer = get_channel_layer()
    transport = EmulatorTransport(emulator_app)
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        watcher = Watcher(uapi, channel_layer=layer, poll_interval=1.0, call_events=False)
        await watcher.load_directory()
        floor = Floor(emulator, Watched(watcher, transport), uapi)

        # Before the first step and after each, a screen connects; each keeps what it is sent.
        screens: list[tuple[str, Screen]] = []
        for step in [None, *plan]:
            if step is not None:
                await floor.take(step)
            # Like the consumer: join the group first, then read the snapshot.
            channel = await layer.new_channel()
            await layer.group_add(live.org_group(org_id), channel)
            screens.append((channel, Screen.from_snapshot(*await store.snapshot(org_id))))

        fresh = Screen.from_snapshot(*await store.snapshot(org_id))
        for channel, screen in screens:
            # Everything sent is queued already: the in-memory layer delivers within group_send.
            for message in await received(layer, channel, quiet=0.001):
                screen.apply(message)
            await layer.group_discard(live.org_group(org_id), channel)
            assert screen.rows == fresh.rows
