"""The day's figures per queue, each computed by hand from a few records."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.figures import QueueDay, day_bounds, day_figures, recent_slices
from calls.history import QueueFloor
from calls.models import Extension, Organization, QueueCall

pytestmark = pytest.mark.django_db(transaction=True)

SALES = "0001*100"
NOON = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def call(
    queue: Extension,
    name: str,
    arrived: datetime,
    *,
    wait: int | None = None,
    talk: int | None = None,
    outcome: str = "answered",
) -> QueueCall:
    """A record as the watcher writes it: an answered call has waited ``wait`` and talked
    ``talk`` (None: still talking); an abandoned one hung up after ``wait``; a waiting one
    has neither."""
    answered = ended = None
    if outcome == "answered":
        answered = arrived + timedelta(seconds=wait or 0)
        ended = None if talk is None else answered + timedelta(seconds=talk)
    elif outcome == "abandoned":
        ended = arrived + timedelta(seconds=wait or 0)
    return QueueCall.objects.create(
        organization=queue.organization,
        queue=queue,
        phone_call_id=name,
        arrived=arrived,
        answered=answered,
        ended=ended,
        outcome=outcome,
        wait_seconds=wait,
        talk_seconds=talk,
    )


@pytest.fixture
def sales(world: Any) -> Extension:
    return Extension.objects.select_related("organization").get(number=SALES)


@pytest.fixture
def a_day(sales: Extension) -> None:
    """Four calls in the morning, the queue's threshold 20 s."""
    call(sales, "quick", NOON - timedelta(hours=3), wait=10, talk=100)
    call(sales, "after-threshold", NOON - timedelta(hours=2), wait=25, talk=50)
    # The caller hung up while an agent's phone rang.
    call(sales, "abandoned", NOON - timedelta(hours=1), wait=40, outcome="abandoned")
    call(sales, "still-waiting", NOON - timedelta(minutes=1), outcome="waiting")


@pytest.mark.usefixtures("a_day")
def test_every_figure_of_a_day(sales: Extension) -> None:
    day = day_figures([sales.pk], "UTC", NOON)[sales.pk]

    assert (day.offered, day.answered, day.abandoned) == (4, 2, 1)
    assert day.abandon_rate == 1 / 4
    # Answered within 20 s: only "quick"; of the three with an outcome.
    assert (day.answered_in_time, day.service_level) == (1, 1 / 3)
    assert day.average_wait == (10 + 25 + 40) / 3
    assert day.longest_wait == 40
    assert day.average_talk == (100 + 50) / 2


@pytest.mark.usefixtures("a_day")
def test_the_threshold_is_the_queues_own(sales: Extension) -> None:
    sales.service_level_seconds = 30
    sales.save()

    day = day_figures([sales.pk], "UTC", NOON)[sales.pk]

    assert (day.answered_in_time, day.service_level) == (2, 2 / 3)


def test_a_call_answered_exactly_at_the_threshold_is_in_time(sales: Extension) -> None:
    call(sales, "on-the-dot", NOON, wait=20, talk=5)
    assert day_figures([sales.pk], "UTC", NOON)[sales.pk].service_level == 1.0


def test_a_call_still_talking_counts_as_answered_but_not_in_the_average_talk(
    sales: Extension,
) -> None:
    call(sales, "talking", NOON - timedelta(minutes=5), wait=5)
    call(sales, "done", NOON - timedelta(minutes=9), wait=15, talk=60)

    day = day_figures([sales.pk], "UTC", NOON)[sales.pk]

    assert (day.answered, day.average_talk, day.average_wait) == (2, 60, 10)


def test_a_queue_without_calls_today_has_no_figures(sales: Extension) -> None:
    call(sales, "yesterday", NOON - timedelta(days=1), wait=3, talk=3)

    assert day_figures([sales.pk], "UTC", NOON) == {}
    empty = QueueDay()
    assert (empty.abandon_rate, empty.service_level) == (None, None)


def test_calls_count_on_the_day_they_arrived_in_the_organizations_time_zone(
    sales: Extension,
) -> None:
    # Bucharest is UTC+2 in January: its 15th runs from 22:00 UTC on the 14th.
    late = datetime(2025, 1, 14, 21, 59, 30, tzinfo=UTC)  # 23:59:30 on the 14th there
    call(sales, "across-midnight", late, wait=40, talk=600)  # answered after its midnight
    call(sales, "just-after", datetime(2025, 1, 14, 22, 0, 5, tzinfo=UTC), wait=5, talk=5)
    call(sales, "afternoon", datetime(2025, 1, 15, 14, 0, tzinfo=UTC), wait=5, talk=5)
    morning_there = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)

    fifteenth = day_figures([sales.pk], "Europe/Bucharest", morning_there)[sales.pk]
    fourteenth = day_figures([sales.pk], "Europe/Bucharest", late)[sales.pk]
    utc_fourteenth = day_figures([sales.pk], "UTC", late)[sales.pk]

    assert (fifteenth.offered, fifteenth.longest_wait) == (2, 5)
    assert (fourteenth.offered, fourteenth.longest_wait, fourteenth.average_talk) == (1, 40, 600)
    assert utc_fourteenth.offered == 2, "in UTC both early calls are on the 14th"


def test_a_day_with_a_clock_change_is_23_hours_long() -> None:
    start, end = day_bounds("Europe/Bucharest", datetime(2025, 3, 30, 12, tzinfo=UTC))
    assert end - start == timedelta(hours=23)
    assert start == datetime(2025, 3, 29, 22, tzinfo=UTC)


def test_the_figures_of_every_queue_are_one_query(sales: Extension) -> None:
    support = Extension.objects.get(number="0001*101")
    call(sales, "s", NOON, wait=1, talk=1)
    call(support, "t", NOON, outcome="abandoned", wait=7)

    with CaptureQueriesContext(connection) as queries:
        found = day_figures([sales.pk, support.pk], "UTC", NOON + timedelta(hours=1))

    assert len(queries) == 1
    assert (found[sales.pk].answered, found[support.pk].abandoned) == (1, 1)


def test_the_chart_has_the_most_calls_waiting_at_once_and_the_service_level_per_quarter_hour(
    sales: Extension,
) -> None:
    q = timedelta(minutes=15)
    start = NOON - 15 * q  # the chart's first quarter; NOON is in its last
    # Two calls waiting at once in the 11:00 quarter, one in time and one not.
    call(sales, "a", NOON - 4 * q + timedelta(minutes=1), wait=10, talk=60)
    call(sales, "b", NOON - 4 * q + timedelta(minutes=1, seconds=5), wait=30, talk=60)
    # One after the other in the 11:15 quarter: never two at once.
    call(sales, "c", NOON - 3 * q, wait=60, outcome="abandoned")
    call(sales, "d", NOON - 3 * q + timedelta(minutes=5), wait=5, talk=60)
    # Waiting since 11:50 until now (12:00): in the 11:45 quarter and this one.
    call(sales, "e", NOON - timedelta(minutes=10), outcome="waiting")

    slices = recent_slices([sales.pk], NOON + timedelta(minutes=1))[sales.pk]

    assert len(slices) == 16
    assert slices[0].start == start
    by_start = {s.start: s for s in slices}
    assert (by_start[NOON - 4 * q].peak_waiting, by_start[NOON - 4 * q].service_level) == (2, 0.5)
    assert (by_start[NOON - 3 * q].peak_waiting, by_start[NOON - 3 * q].service_level) == (1, 0.5)
    assert (by_start[NOON - q].peak_waiting, by_start[NOON - q].service_level) == (1, None)
    assert by_start[NOON].peak_waiting == 1
    assert (by_start[NOON - 2 * q].peak_waiting, by_start[start].peak_waiting) == (0, 0)


@pytest.mark.usefixtures("a_day")
async def test_the_panel_prints_each_figure(sales: Extension) -> None:
    import time_machine

    with time_machine.travel(NOON, tick=False):
        panels = await QueueFloor().panels(sales.organization_id, {})
    html = panels[f"queue:{SALES}"]

    def metric(name: str) -> str:
        found = re.search(rf'data-metric="{name}"[^>]*>([^<]*)<', html)
        assert found is not None
        return found.group(1)

    assert [
        metric(n)
        for n in (
            "offered_today",
            "answered_today",
            "abandoned_today",
            "abandon_rate",
            "service_level",
            "average_wait",
            "longest_wait_today",
            "average_talk",
        )
    ] == ["4", "2", "1", "25 %", "33 %", "0:25", "0:40", "1:15"]


def test_time_zone_names_are_checked(world: Any) -> None:
    from django.core.exceptions import ValidationError

    acme = Organization.objects.get(name="Acme")
    acme.time_zone = "Mars/Olympus_Mons"
    with pytest.raises(ValidationError, match="time zone"):
        acme.full_clean()
    acme.time_zone = "America/New_York"
    acme.full_clean()
