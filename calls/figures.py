"""The day's figures per queue, read from the recorded history (``QueueCall``).

Everything here is computed in the database from the records, never from counters kept in
memory, so the figures are right after any restart or watcher handover. "Today" is the
Organization's own day: from its local midnight to the next, calls counted on the day they
arrived (a call still in progress at midnight belongs to the day before).

The definitions, one per figure:

* offered: calls that arrived in the queue today;
* answered, abandoned: of those, answered by an agent, or hung up (or given up) before;
* abandon rate: abandoned ÷ offered;
* service level: answered within the queue's threshold (``service_level_seconds``, from
  arriving to being answered) ÷ calls with an outcome (answered + abandoned); calls still
  waiting are not counted either way yet;
* average and longest wait: over answered and abandoned calls, the wait being from arriving
  to being answered, or to hanging up for an abandoned call;
* average talk: over answered calls that have ended, from being answered to the end.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Avg, Count, F, Max, Q, QuerySet

from calls.models import Extension, QueueCall, Supervisor

# The chart: the last hours in slices of a quarter of an hour.
CHART_STEP = timedelta(minutes=15)
CHART_SLICES = 16
# A caller does not wait this long: rows that arrived earlier cannot reach into the chart.
LONGEST_PLAUSIBLE_WAIT = timedelta(hours=2)


def zone(time_zone: str) -> zoneinfo.ZoneInfo:
    """The named zone; UTC for a name this system does not know (the admin validates names,
    but a zone database can lose one)."""
    try:
        return zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_day(time_zone: str, at: datetime) -> date:
    """The date in ``time_zone`` at the moment ``at`` (aware)."""
    return at.astimezone(zone(time_zone)).date()


def day_bounds(time_zone: str, at: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of the day in ``time_zone`` that holds ``at``: its midnight and the
    next one, in UTC (so that their difference is the real length: a day with a daylight
    saving change is 23 or 25 hours long)."""
    tz = zone(time_zone)
    day = at.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def next_midnight(time_zone: str, at: datetime) -> datetime:
    """The next midnight in ``time_zone`` after ``at``: when its "today" rolls over."""
    return day_bounds(time_zone, at)[1]


@dataclass(frozen=True, slots=True)
class QueueDay:
    """A queue's figures for one day (see the module's docstring for each definition)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_time: int = 0
    average_wait: float | None = None
    longest_wait: int | None = None
    average_talk: float | None = None

    @property
    def abandon_rate(self) -> float | None:
        """Abandoned ÷ offered, 0 to 1; None before the first call."""
        return self.abandoned / self.offered if self.offered else None

    @property
    def service_level(self) -> float | None:
        """Answered within the threshold ÷ answered and abandoned, 0 to 1; None before any
        call had an outcome."""
        decided = self.answered + self.abandoned
        return self.answered_in_time / decided if decided else None


def day_figures(queue_ids: Iterable[int], time_zone: str, at: datetime) -> dict[int, QueueDay]:
    """Each queue's figures for the day in ``time_zone`` that holds ``at``, by queue id; a
    queue without calls that day is absent. One query, answered from the (queue, arrived)
    index."""
    start, end = day_bounds(time_zone, at)
    answered = Q(outcome=QueueCall.Outcome.ANSWERED)
    rows = (
        QueueCall.objects.filter(queue_id__in=list(queue_ids), arrived__gte=start, arrived__lt=end)
        .order_by()
        .values("queue_id")
        .annotate(
            offered=Count("pk"),
            answered=Count("pk", filter=answered),
            abandoned=Count("pk", filter=Q(outcome=QueueCall.Outcome.ABANDONED)),
            answered_in_time=Count(
                "pk", filter=answered & Q(wait_seconds__lte=F("queue__service_level_seconds"))
            ),
            average_wait=Avg("wait_seconds", filter=~Q(outcome=QueueCall.Outcome.WAITING)),
            longest_wait=Max("wait_seconds", filter=~Q(outcome=QueueCall.Outcome.WAITING)),
            average_talk=Avg("talk_seconds", filter=answered),
        )
    )
    return {
        row["queue_id"]: QueueDay(
            offered=row["offered"],
            answered=row["answered"],
            abandoned=row["abandoned"],
            answered_in_time=row["answered_in_time"],
            average_wait=row["average_wait"],
            longest_wait=row["longest_wait"],
            average_talk=row["average_talk"],
        )
        for row in rows
    }


@dataclass(frozen=True, slots=True)
class Slice:
    """A quarter of an hour of a queue: the most calls waiting at once in it, and the
    service level of the calls that arrived in it (None when none had an outcome)."""

    start: datetime
    peak_waiting: int
    service_level: float | None


def chart_start(at: datetime) -> datetime:
    """The start of the chart's first slice: the chart ends with the slice holding ``at``."""
    epoch = datetime(2000, 1, 1, tzinfo=at.tzinfo)
    current = epoch + CHART_STEP * ((at - epoch) // CHART_STEP)
    return current - CHART_STEP * (CHART_SLICES - 1)


def recent_slices(queue_ids: Iterable[int], at: datetime) -> dict[int, list[Slice]]:
    """The last CHART_SLICES quarters of an hour of each queue, oldest first, by queue id.
    One query for the rows that can reach into the chart; a call still waiting waits until
    ``at``."""
    ids = list(queue_ids)
    start = chart_start(at)
    found = QueueCall.objects.filter(
        queue_id__in=ids, arrived__gte=start - LONGEST_PLAUSIBLE_WAIT, arrived__lt=at
    ).values_list(
        "queue_id",
        "arrived",
        "answered",
        "ended",
        "outcome",
        "wait_seconds",
        "queue__service_level_seconds",
    )
    rows: dict[int, list[_ChartRow]] = {q: [] for q in ids}
    for queue_id, arrived, answered, ended, outcome, wait, threshold in found:
        rows[queue_id].append(_ChartRow(arrived, answered, ended, outcome, wait, threshold))
    return {q: _slices(rows[q], start, at) for q in ids}


@dataclass(frozen=True, slots=True)
class _ChartRow:
    arrived: datetime
    answered: datetime | None
    ended: datetime | None
    outcome: str
    wait_seconds: int | None
    threshold: int


def _slices(rows: Sequence[_ChartRow], start: datetime, at: datetime) -> list[Slice]:
    bounds = [start + CHART_STEP * i for i in range(CHART_SLICES + 1)]
    # The waiting count steps up when a call arrives and down when it is answered or ends;
    # at the same moment, a call leaving comes before one arriving (they never overlap).
    steps = sorted(
        [(r.arrived, 1) for r in rows] + [(r.answered or r.ended or at, -1) for r in rows],
        key=lambda step: (step[0], step[1]),
    )
    peaks = [0] * CHART_SLICES
    waiting = 0
    i = 0
    for n in range(CHART_SLICES):
        while i < len(steps) and steps[i][0] <= bounds[n]:
            waiting += steps[i][1]
            i += 1
        peak = waiting
        while i < len(steps) and steps[i][0] < bounds[n + 1]:
            waiting += steps[i][1]
            peak = max(peak, waiting)
            i += 1
        peaks[n] = peak
    decided = [0] * CHART_SLICES
    in_time = [0] * CHART_SLICES
    for r in rows:
        if r.arrived < start or r.outcome == QueueCall.Outcome.WAITING:
            continue
        n = min((r.arrived - start) // CHART_STEP, CHART_SLICES - 1)
        decided[n] += 1
        answered = r.outcome == QueueCall.Outcome.ANSWERED
        if answered and r.wait_seconds is not None and r.wait_seconds <= r.threshold:
            in_time[n] += 1
    return [
        Slice(
            start=bounds[n],
            peak_waiting=peaks[n],
            service_level=in_time[n] / decided[n] if decided[n] else None,
        )
        for n in range(CHART_SLICES)
    ]


# ---- the export ----------------------------------------------------------------------------


def supervised_queue(user: Any, number: str) -> Extension | None:
    """The queue ``number`` of the Organization ``user`` supervises; None when the user
    supervises none, or the queue is another Organization's (or no queue at all)."""
    if not getattr(user, "is_authenticated", False):
        return None
    supervisor = Supervisor.objects.filter(user=user).only("organization_id").first()
    if supervisor is None:
        return None
    return (
        Extension.objects.select_related("organization")
        .filter(
            organization_id=supervisor.organization_id,
            number=number,
            type=Extension.Type.QUEUE,
        )
        .first()
    )


def day_records(queue: Extension, at: datetime) -> QuerySet[QueueCall]:
    """The queue's records of the day (in its Organization's time zone) holding ``at``,
    in arrival order."""
    start, end = day_bounds(queue.organization.time_zone, at)
    return QueueCall.objects.filter(queue=queue, arrived__gte=start, arrived__lt=end).order_by(
        "arrived", "pk"
    )


EXPORT_COLUMNS = (
    "call id",
    "caller",
    "arrived",
    "answered",
    "agent",
    "ended",
    "outcome",
    "wait seconds",
    "talk seconds",
)


def export_rows(queue: Extension, at: datetime) -> Iterator[list[str]]:
    """The CSV export of a queue's day: the header, then one row per record, times in the
    Organization's time zone. Read in chunks, so a long day is never held in memory."""
    tz = zone(queue.organization.time_zone)
    yield list(EXPORT_COLUMNS)
    for record in day_records(queue, at).iterator(chunk_size=500):
        yield [
            record.phone_call_id,
            _cell(record.caller),
            _local(record.arrived, tz),
            _local(record.answered, tz),
            record.agent,
            _local(record.ended, tz),
            record.outcome,
            "" if record.wait_seconds is None else str(record.wait_seconds),
            "" if record.talk_seconds is None else str(record.talk_seconds),
        ]


def _local(moment: datetime | None, tz: zoneinfo.ZoneInfo) -> str:
    return "" if moment is None else moment.astimezone(tz).isoformat()


def _cell(text: str) -> str:
    """A caller's text as a spreadsheet shows it, never as a formula: callers choose their
    caller ID name. A phone number (``+4420…``) stays as it is."""
    if text[:1] in ("=", "@", "\t", "\r") or (
        text[:1] in ("+", "-") and not text[1:].replace(" ", "").isdigit()
    ):
        return "'" + text
    return text
