"""Queue call history: what the watcher records of each queue call's life, exactly once, the
panels it publishes from it, the turn of the day, retention, and VoipNow's CDR when absent."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from channels.layers import get_channel_layer

from calls import history, live, store
from calls.history import QueueFloor, purge, reconcile_with_cdr
from calls.live import Watcher
from calls.models import Extension, Organization, QueueCall
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import UapiRejected
from tests.conftest import every_voipnow
from tests.support.layer import acme_id, listen, received

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

SALES = "0001*100"
SALES_AGENTS = ("0001*201", "0001*202", "0001*203")
T0 = datetime(2025, 3, 4, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Wall-clock time stands still at T0 unless a test moves it; the event loop's own clock
    (monotonic) runs on, so timers and timeouts work."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


async def watching(uapi: UapiClient, floor: QueueFloor) -> Watcher:
    watcher = Watcher(
        uapi, channel_layer=get_channel_layer(), poll_interval=60, call_events=False, floors=[floor]
    )
    await watcher.load_directory()
    return watcher


async def records() -> list[QueueCall]:
    return [r async for r in QueueCall.objects.select_related("queue").order_by("arrived")]


def metric(html: str, name: str) -> str:
    found = re.search(rf'data-metric="{name}"[^>]*>([^<]*)<', html)
    assert found is not None, f"no {name} in the panel"
    return found.group(1)


async def test_a_call_answered_by_an_agent_is_recorded_with_its_wait_and_talk(
    emulator: Emulator, uapi: UapiClient, world: Any, clock: time_machine.Traveller
) -> None:
    watcher = await watching(uapi, QueueFloor())
    call = emulator.create_call(SALES, caller="+442071838750", auto=False)
    await watcher.refresh_all()
    clock.shift(25)
    emulator.answer_call(call.id, agent="0001*202")
    await watcher.refresh_all()
    clock.shift(70)
    emulator.hangup_call(call.id)
    await watcher.refresh_all()

    [row] = await records()
    assert row.phone_call_id == call.id
    assert row.queue.number == SALES
    assert row.caller.endswith("<+442071838750>")
    assert (row.arrived, row.answered, row.ended) == (
        T0,
        T0 + timedelta(seconds=25),
        T0 + timedelta(seconds=95),
    )
    assert (row.outcome, row.agent) == (QueueCall.Outcome.ANSWERED, "0001*202")
    assert (row.wait_seconds, row.talk_seconds) == (25, 70)


async def test_a_caller_who_hangs_up_while_an_agent_rings_has_abandoned(
    emulator: Emulator, uapi: UapiClient, world: Any, clock: time_machine.Traveller
) -> None:
    for agent in SALES_AGENTS:
        emulator.set_phone(agent, answers=False)
    watcher = await watching(uapi, QueueFloor())
    call = emulator.create_call(SALES, patience_seconds=600)
    assert any(v.role == "agent" for v in call.views.values()), "an agent's phone rings"
    await watcher.refresh_all()
    clock.shift(40)
    emulator.hangup_call(call.id)
    await watcher.refresh_all()

    [row] = await records()
    assert (row.outcome, row.answered, row.agent) == (QueueCall.Outcome.ABANDONED, None, "")
    assert (row.wait_seconds, row.talk_seconds) == (40, None)
    assert row.ended == T0 + timedelta(seconds=40)


async def test_a_watcher_handover_in_the_middle_of_a_call_records_it_exactly_once(
    emulator: Emulator, uapi: UapiClient, world: Any, clock: time_machine.Traveller
) -> None:
    first = await watching(uapi, QueueFloor())
    call = emulator.create_call(SALES, auto=False)
    await first.refresh_all()
    clock.shift(12)
    emulator.answer_call(call.id, agent="0001*201")
    await first.refresh_all()

    # The first watcher dies; another takes over while the call is on, with a floor of its
    # own that knows nothing of it, and sees it from the start again.
    second = await watching(uapi, QueueFloor())
    clock.shift(3)
    await second.refresh_all()
    clock.shift(45)
    emulator.hangup_call(call.id)
    await second.refresh_all()
    # A late cycle of the first watcher (it had not noticed it lost the lock yet) sees the
    # end too, a little later.
    clock.shift(2)
    await first.refresh_all()

    [row] = await records()
    assert (row.arrived, row.answered) == (T0, T0 + timedelta(seconds=12))
    assert (row.outcome, row.agent) == ("answered", "0001*201")
    assert (row.wait_seconds, row.talk_seconds) == (12, 48)


async def test_panels_published_before_the_first_poll_after_a_takeover_remove_no_call(
    emulator: Emulator, uapi: UapiClient, world: Any
) -> None:
    first = await watching(uapi, QueueFloor())
    call = emulator.create_call(SALES, auto=False)
    await first.refresh_all()

    second = await watching(uapi, QueueFloor())
    await second.refresh_panels(await acme_id())  # its floors' own loops start before a poll

    index = await store.published(await acme_id())
    assert index is not None
    assert call.id in index.ids
    [row] = await records()
    assert row.ended is None


async def test_a_call_that_ended_while_no_watcher_looked_is_closed_without_times(
    emulator: Emulator, uapi: UapiClient, world: Any, clock: time_machine.Traveller
) -> None:
    first = await watching(uapi, QueueFloor())
    gone = emulator.create_call(SALES, auto=False)
    stays = emulator.create_call(SALES, auto=False)
    await first.refresh_all()
    emulator.hangup_call(gone.id)  # nobody watching: no end is seen

    second = await watching(uapi, QueueFloor())
    clock.shift(60)
    await second.refresh_all()

    rows = {r.phone_call_id: r for r in await records()}
    assert rows[gone.id].outcome == "abandoned"
    assert rows[gone.id].ended == T0 + timedelta(seconds=60)
    assert rows[gone.id].wait_seconds is None, "nobody saw how long it waited"
    assert (rows[stays.id].outcome, rows[stays.id].ended) == ("waiting", None)


async def test_calls_of_other_extensions_are_not_recorded(
    emulator: Emulator, uapi: UapiClient, world: Any
) -> None:
    await Extension.objects.filter(number="0001*101").aupdate(type=Extension.Type.IVR)
    watcher = await watching(uapi, QueueFloor())
    emulator.create_call("0001*101", auto=False)
    emulator.create_call(SALES, auto=False)
    await watcher.refresh_all()

    assert [r.queue.number for r in await records()] == [SALES]


class Agents:
    def counts(self, org_id: int) -> Mapping[str, Mapping[str, int]]:
        return {SALES: {"available": 2, "on_call": 1, "paused": 0}}


async def test_each_queue_has_a_panel_with_its_figures_now_and_today(
    emulator: Emulator, uapi: UapiClient, world: Any, clock: time_machine.Traveller
) -> None:
    watcher = await watching(uapi, QueueFloor(agents=Agents()))
    answered = emulator.create_call(SALES, auto=False)
    emulator.create_call(SALES, auto=False)
    await watcher.refresh_all()
    clock.shift(8)
    emulator.answer_call(answered.id)
    waiting = emulator.create_call(SALES, auto=False)
    await watcher.refresh_all()

    panels = (await store.read_snapshot(await acme_id())).panels
    [sales] = [p for p in panels if f'data-queue="{SALES}"' in p]
    assert sales.startswith('<section id="queue-0001-100"')
    assert 'hx-swap-oob="true"' in sales
    assert metric(sales, "waiting") == "2"
    oldest = re.search(r'data-metric="longest_wait" class="timer" data-since="([^"]+)"', sales)
    assert oldest is not None
    assert oldest.group(1) == T0.isoformat()
    assert waiting.id not in sales
    assert (metric(sales, "offered_today"), metric(sales, "answered_today")) == ("3", "1")
    assert (metric(sales, "abandoned_today"), metric(sales, "service_level")) == ("0", "100 %")
    assert (metric(sales, "available"), metric(sales, "on_call")) == ("2", "1")
    assert metric(sales, "paused") == "0"
    assert 'href="/queues/0001*100/today.csv"' in sales
    assert "<svg" in sales
    [support] = [p for p in panels if 'data-queue="0001*101"' in p]
    assert (metric(support, "waiting"), metric(support, "service_level")) == ("0", "—")
    assert metric(support, "available") == "0", "the source counts no agent of this queue"


async def test_a_call_that_ends_is_removed_before_the_panels_in_the_same_message(
    emulator: Emulator, uapi: UapiClient, world: Any
) -> None:
    watcher = await watching(uapi, QueueFloor())
    call = emulator.create_call(SALES, auto=False)
    await watcher.refresh_all()
    layer, channel = await listen(live.org_group(await acme_id()))
    emulator.hangup_call(call.id)
    await watcher.refresh_all()

    [message] = await received(layer, channel)
    html = message["html"]
    # A browser parses the message as one <template>: a <tr> after a <section> is lost.
    assert html.startswith(f'<tr id="call-{call.id}" hx-swap-oob="delete"')
    assert '<section id="queue-0001-100"' in html


async def test_without_an_agents_source_the_agent_figures_are_a_dash(
    emulator: Emulator, uapi: UapiClient, world: Any
) -> None:
    panels = await QueueFloor().panels(await acme_id(), {})
    for name in ("available", "on_call", "paused"):
        assert metric(panels[f"queue:{SALES}"], name) == "—"


async def test_a_callers_name_is_escaped_in_the_panel_and_the_label_too(
    uapi: UapiClient, world: Any
) -> None:
    await Extension.objects.filter(number=SALES).aupdate(label="<b>Sales</b>")
    panels = await QueueFloor().panels(await acme_id(), {})
    assert "&lt;b&gt;Sales&lt;/b&gt;" in panels[f"queue:{SALES}"]
    assert "<b>" not in panels[f"queue:{SALES}"]


class Sink:
    """The watcher as a floor sees it: which Organizations, and a way to publish panels."""

    def __init__(self, floor: QueueFloor, org_id: int) -> None:
        self.floor = floor
        self.org_id = org_id
        self.published: list[dict[str, str]] = []
        self.refreshed = asyncio.Event()

    @property
    def organizations(self) -> list[int]:
        return [self.org_id]

    async def refresh_panels(self, org_id: int) -> None:
        self.published.append(await self.floor.panels(org_id, {}))
        self.refreshed.set()


async def test_today_rolls_over_at_the_organizations_midnight(world: Any) -> None:
    acme = await Organization.objects.aget(name="Acme")
    acme.time_zone = "Europe/Bucharest"  # UTC+2 in winter
    await acme.asave()
    sales = await Extension.objects.aget(number=SALES)
    before_midnight = datetime(2025, 1, 14, 21, 59, 58, tzinfo=UTC)  # 23:59:58 there
    await QueueCall.objects.acreate(
        organization=acme,
        queue=sales,
        phone_call_id="late",
        arrived=before_midnight - timedelta(minutes=5),
        answered=before_midnight - timedelta(minutes=4),
        outcome="answered",
        wait_seconds=60,
    )
    floor = QueueFloor()
    sink = Sink(floor, acme.pk)
    stop = asyncio.Event()
    with time_machine.travel(before_midnight, tick=True):
        running = asyncio.create_task(floor.run(sink, stop))
        await asyncio.wait_for(sink.refreshed.wait(), 5)  # at start
        sink.refreshed.clear()
        await asyncio.wait_for(sink.refreshed.wait(), 5)  # at midnight
        stop.set()
        await running

    start, midnight = sink.published
    assert metric(start[f"queue:{SALES}"], "answered_today") == "1"
    assert metric(midnight[f"queue:{SALES}"], "answered_today") == "0"


async def test_the_floor_wakes_at_the_next_quarter_hour_or_midnight(world: Any) -> None:
    floor = QueueFloor()
    await floor.panels(await acme_id(), {})
    at = datetime(2025, 1, 14, 21, 52, 10, tzinfo=UTC)
    assert floor.next_wake(at) == datetime(2025, 1, 14, 22, 0, tzinfo=UTC)


def test_records_older_than_the_retention_are_deleted(world: Any) -> None:
    acme = Organization.objects.get(name="Acme")
    sales = Extension.objects.get(number=SALES)
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    for name, age in (("old", timedelta(days=90, seconds=1)), ("kept", timedelta(days=89))):
        QueueCall.objects.create(
            organization=acme, queue=sales, phone_call_id=name, arrived=now - age
        )

    assert purge(days=90, now=now) == 1
    assert list(QueueCall.objects.values_list("phone_call_id", flat=True)) == ["kept"]


async def test_the_floor_applies_the_retention_when_it_starts(world: Any, settings: Any) -> None:
    settings.CALLBOARD_HISTORY_DAYS = 7
    acme = await Organization.objects.aget(name="Acme")
    sales = await Extension.objects.aget(number=SALES)
    for name, days in (("old", 8), ("kept", 6)):
        await QueueCall.objects.acreate(
            organization=acme,
            queue=sales,
            phone_call_id=name,
            arrived=datetime.now(UTC) - timedelta(days=days),
        )
    floor = QueueFloor()
    sink = Sink(floor, acme.pk)
    stop = asyncio.Event()
    running = asyncio.create_task(floor.run(sink, stop))
    await asyncio.wait_for(sink.refreshed.wait(), 5)
    stop.set()
    await running

    assert [r.phone_call_id async for r in QueueCall.objects.all()] == ["kept"]


async def test_until_the_agents_are_first_counted_their_figures_are_a_dash(world: Any) -> None:
    class NotPolledYet:
        def counts(self, org_id: int) -> Mapping[str, Mapping[str, int]]:
            return {}

    panels = await QueueFloor(agents=NotPolledYet()).panels(await acme_id(), {})
    assert metric(panels[f"queue:{SALES}"], "available") == "—"


@pytest.mark.parametrize("voipnow_version", [5], indirect=True)
async def test_calls_that_ended_while_no_watcher_ran_are_added_from_voipnows_cdr(
    emulator: Emulator, uapi: UapiClient, world: Any, clock: time_machine.Traveller
) -> None:
    watcher = await watching(uapi, QueueFloor())
    seen = emulator.create_call(SALES, auto=False)
    await watcher.refresh_all()  # recorded by the watcher: VoipNow's record adds nothing
    # Callboard is down from here on.
    answered = emulator.create_call(SALES, caller="+14155550102", auto=False)
    abandoned = emulator.create_call(SALES, auto=False)
    clock.shift(9)
    emulator.answer_call(answered.id, agent="0001*203")
    clock.shift(30)
    emulator.hangup_call(answered.id)
    emulator.hangup_call(abandoned.id)
    emulator.hangup_call(seen.id)
    acme = await Organization.objects.aget(name="Acme")

    added = await reconcile_with_cdr(uapi, acme, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    again = await reconcile_with_cdr(uapi, acme, T0 - timedelta(hours=1), T0 + timedelta(hours=1))

    assert (added, again) == (2, 0)
    rows = {r.phone_call_id: r for r in await records()}
    assert set(rows) == {seen.id, answered.id, abandoned.id}
    a = rows[answered.id]
    assert (a.outcome, a.agent, a.caller) == ("answered", "0001*203", "+14155550102")
    assert (a.arrived, a.wait_seconds, a.talk_seconds) == (T0, 9, 30)
    b = rows[abandoned.id]
    assert (b.outcome, b.answered, b.wait_seconds) == ("abandoned", None, 39)
    assert rows[seen.id].ended is None, "the watcher's own record is left to the watcher"


@pytest.mark.parametrize("voipnow_version", [5], indirect=True)
async def test_the_floor_reconciles_today_when_it_starts(
    emulator: Emulator, uapi: UapiClient, world: Any
) -> None:
    missed = emulator.create_call(SALES, auto=False)
    emulator.hangup_call(missed.id)
    floor = QueueFloor(uapi)
    sink = Sink(floor, await acme_id())
    stop = asyncio.Event()
    running = asyncio.create_task(floor.run(sink, stop))
    await asyncio.wait_for(sink.refreshed.wait(), 5)
    stop.set()
    await running

    assert [r.phone_call_id for r in await records()] == [missed.id]
    assert metric(sink.published[0][f"queue:{SALES}"], "abandoned_today") == "1"


@pytest.mark.usefixtures("fresh_cdr_log")
@pytest.mark.parametrize("voipnow_version", [3], indirect=True)
async def test_voipnow_3_has_no_cdr_and_reconciliation_says_so_once(
    uapi: UapiClient, world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    acme = await Organization.objects.aget(name="Acme")
    with caplog.at_level(logging.INFO, logger="calls.history"):
        for _ in range(2):
            assert await reconcile_with_cdr(uapi, acme, T0, T0 + timedelta(hours=1)) == 0
    assert caplog.text.count("call history is not available") == 1


class NoCdr:
    """A UAPI client of a server without call history (VoipNow 3.x answers 501)."""

    def __init__(self) -> None:
        self.asked = 0

    async def list_cdr(self, **kwargs: Any) -> tuple[Any, ...]:
        self.asked += 1
        raise UapiRejected("not implemented", status=501, code="request_not_implemented", detail="")


@pytest.fixture
def fresh_cdr_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "_cdr_missing_logged", False)


@pytest.mark.usefixtures("fresh_cdr_log")
async def test_without_call_history_on_the_server_reconciliation_does_nothing_and_says_so_once(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    acme = await Organization.objects.aget(name="Acme")
    uapi = NoCdr()
    with caplog.at_level(logging.INFO, logger="calls.history"):
        assert await reconcile_with_cdr(uapi, acme, T0, T0 + timedelta(hours=1)) == 0
        assert await reconcile_with_cdr(uapi, acme, T0, T0 + timedelta(hours=1)) == 0

    assert uapi.asked == 2
    assert await QueueCall.objects.acount() == 0
    said = [r for r in caplog.records if "call history is not available" in r.getMessage()]
    assert len(said) == 1


@pytest.mark.usefixtures("fresh_cdr_log")
async def test_a_client_that_cannot_list_cdr_is_not_asked(
    uapi: UapiClient, world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    acme = await Organization.objects.aget(name="Acme")
    with caplog.at_level(logging.INFO, logger="calls.history"):
        assert await reconcile_with_cdr(object(), acme, T0, T0 + timedelta(hours=1)) == 0
    assert "call history is not available" in caplog.text
