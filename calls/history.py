"""Queue call history and the day's figures per queue: a floor of the live path.

``QueueFloor`` records each queue call's life as the watcher sees it (``QueueCall``: arrived,
answered and by whom, ended, answered or abandoned, wait and talk seconds), and renders one
panel per queue with its figures now (from the live calls) and for today (from the records,
``calls.figures``), and a chart of the last hours. Records are written by VoipNow's call id
and only ever moved forward (arrived → answered → ended), so a second watcher taking over in
the middle of a call, or a restart, records it exactly once.

``reconcile_with_cdr`` adds the calls VoipNow's own history (List CDR) has and ours misses: a
time Callboard was down still counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time as monotonic_time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from calls.figures import (
    CHART_SLICES,
    CHART_STEP,
    QueueDay,
    Slice,
    chart_start,
    day_bounds,
    day_figures,
    next_midnight,
    recent_slices,
    zone,
)
from calls.floor import PanelSink
from calls.models import Extension, Organization, QueueCall
from calls.uapi.errors import UapiError, UapiRejected
from calls.uapi.types import PhoneCall, PhoneCallView
from calls.uapi.wire import ErrorCode, ViewStatus

log = logging.getLogger(__name__)

PANEL_TEMPLATE = "calls/queues.html#queue-panel"
# The Organizations' queues, time zones and thresholds are read again this often, so an
# admin's changes show without a restart.
DIRECTORY_EVERY = 30.0
PURGE_EVERY = 24 * 3600.0
NO_FIGURE = "—"


class AgentCounts(Protocol):
    """Where a queue's agents are counted (the agents floor): per queue number, per state
    (``available``, ``on_call``, ``paused``), how many agents."""

    def counts(self, org_id: int) -> Mapping[str, Mapping[str, int]]: ...


class CdrRecord(Protocol):
    """What reconciliation reads of a List CDR record (``calls.uapi.types.CallRecord``)."""

    @property
    def phone_call_id(self) -> str: ...
    @property
    def extension(self) -> str: ...
    @property
    def source(self) -> tuple[str, ...]: ...
    @property
    def destination(self) -> tuple[str, ...]: ...
    @property
    def published(self) -> datetime: ...
    @property
    def answered(self) -> datetime | None: ...
    @property
    def ended(self) -> datetime | None: ...
    @property
    def was_answered(self) -> bool: ...


# ---- a queue call as the watcher sees it --------------------------------------------------


def caller_of(call: PhoneCall) -> str:
    """Who called: the caller's leg's caller ID, else its source numbers."""
    first = min(call.views, key=lambda v: v.id, default=None)
    if first is None:
        return ""
    return first.caller_id or ", ".join(first.source)


def answer_of(call: PhoneCall, now: datetime) -> tuple[datetime | None, str]:
    """When the queue call was answered and by which extension: the call's ``answered`` or
    the first leg (other than the queue's own) that answered; ``(None, "")`` while nobody
    has. A leg on the call without an ``answered`` time was answered by ``now`` at the
    latest."""
    legs = sorted(
        (v for v in call.views if v.extension and v.extension != call.extension),
        key=lambda v: v.id,
    )
    leg = next((v for v in legs if _answered_leg(v)), None)
    if call.answered is None and leg is None:
        return None, ""
    at = call.answered or (leg.answered if leg else None) or now
    return at, leg.extension if leg else ""


def _answered_leg(view: PhoneCallView) -> bool:
    return view.answered is not None or view.status == ViewStatus.ON_CALL


def _seconds(later: datetime, earlier: datetime) -> int:
    return max(0, round((later - earlier).total_seconds()))


@dataclass(frozen=True, slots=True)
class _Arrival:
    call_id: str
    queue_id: int
    caller: str
    arrived: datetime


@dataclass(frozen=True, slots=True)
class _Answer:
    call_id: str
    answered: datetime
    agent: str
    arrived: datetime


@dataclass(frozen=True, slots=True)
class _End:
    call_id: str
    ended: datetime
    answer: _Answer | None


@dataclass
class _Changes:
    arrivals: list[_Arrival] = field(default_factory=list)
    answers: list[_Answer] = field(default_factory=list)
    ends: list[_End] = field(default_factory=list)
    queues: set[int] = field(default_factory=set)  # the queues whose records these touch

    def __bool__(self) -> bool:
        return bool(self.arrivals or self.answers or self.ends)


@transaction.atomic
def record(changes: _Changes, org_id: int, *, close_except: set[str] | None = None) -> None:
    """Write what changed to the history: missing rows are created, existing ones only moved
    forward (an answer sets ``answered`` where it is empty, an end sets ``ended`` where it
    is empty), so whichever watcher writes a step first writes it, and only once.

    ``close_except``: the calls live now, when they are all known; the Organization's open
    records of any other call (it ended while no watcher was looking) are closed, without
    wait or talk times, which nobody saw.

    One transaction: one commit (with SQLite, one sync to disk) per change, not one per
    statement."""
    arrivals = {a.call_id: a for a in changes.arrivals}
    # A call answered and hung up between two looks is answered first, then ended.
    answers = changes.answers + [e.answer for e in changes.ends if e.answer is not None]
    if arrivals:
        QueueCall.objects.bulk_create(
            [
                QueueCall(
                    organization_id=org_id,
                    queue_id=a.queue_id,
                    phone_call_id=a.call_id,
                    caller=a.caller[:200],
                    arrived=a.arrived,
                )
                for a in arrivals.values()
            ],
            ignore_conflicts=True,
        )
    for answer in answers:
        QueueCall.objects.filter(phone_call_id=answer.call_id, answered__isnull=True).update(
            answered=answer.answered,
            agent=answer.agent[:24],
            outcome=QueueCall.Outcome.ANSWERED,
            wait_seconds=_seconds(answer.answered, answer.arrived),
        )
    if changes.ends:
        ends = {e.call_id: e for e in changes.ends}
        for row in QueueCall.objects.filter(phone_call_id__in=list(ends), ended__isnull=True):
            _end(row, ends[row.phone_call_id].ended)
    if close_except is not None:
        stale = QueueCall.objects.filter(organization_id=org_id, ended__isnull=True)
        now = timezone.now()
        for row in stale.only("pk", "phone_call_id", "answered"):
            if row.phone_call_id in close_except:
                continue
            outcome = QueueCall.Outcome.ANSWERED if row.answered else QueueCall.Outcome.ABANDONED
            QueueCall.objects.filter(pk=row.pk, ended__isnull=True).update(
                ended=now, outcome=outcome
            )


def _end(row: QueueCall, ended: datetime) -> None:
    """Close one record: an answered call talked until ``ended``; one nobody answered was
    abandoned after waiting until then."""
    found = QueueCall.objects.filter(pk=row.pk, ended__isnull=True)
    if row.answered is not None:
        found.update(
            ended=ended,
            outcome=QueueCall.Outcome.ANSWERED,
            talk_seconds=_seconds(ended, row.answered),
        )
    else:
        found.update(
            ended=ended,
            outcome=QueueCall.Outcome.ABANDONED,
            wait_seconds=_seconds(ended, row.arrived),
        )


def purge(*, days: int, now: datetime | None = None) -> int:
    """Delete the records of calls that arrived more than ``days`` days ago; returns how
    many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = QueueCall.objects.filter(arrived__lt=cutoff).delete()
    return deleted


# ---- the panels ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Queue:
    id: int
    number: str
    label: str
    threshold: int


@dataclass
class _Org:
    """What the floor knows of one Organization."""

    id: int
    voipnow_id: str
    time_zone: str
    queues: dict[str, _Queue]
    # The calls last shown, and whether each was answered then: only a change is written.
    seen: dict[str, tuple[PhoneCall, bool]] = field(default_factory=dict)
    # Open records of calls that ended while nobody watched are closed once, at first sight
    # of the Organization's calls.
    swept: bool = False
    # Each queue's figures as last read, and the queues (by id) whose figures are current:
    # a change reads again only the figures of the queues it touched.
    day: dict[int, QueueDay] = field(default_factory=dict)
    slices: dict[int, list[Slice]] = field(default_factory=dict)
    current: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class AgentFigures:
    available: str = NO_FIGURE
    on_call: str = NO_FIGURE
    paused: str = NO_FIGURE


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Chart:
    """The chart's geometry in SVG user units; the template draws it."""

    bars: list[Bar]
    lines: list[str]
    dots: list[Dot]
    first: str
    last: str
    # 8:1, the shape of the panel's width at a few lines of height.
    width: int = CHART_SLICES * 24
    height: int = 48
    hours: int = CHART_SLICES * CHART_STEP // timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class QueuePanel:
    """What a queue's panel shows; texts are figures ready to print."""

    number: str
    label: str
    threshold: int
    waiting: int
    oldest_waiting: datetime | None
    talking: int
    day: QueueDay
    agents: AgentFigures
    chart: Chart

    @property
    def dom_id(self) -> str:
        return "queue-" + self.number.replace("*", "-")

    @property
    def abandon_rate(self) -> str:
        return _percent(self.day.abandon_rate)

    @property
    def service_level(self) -> str:
        return _percent(self.day.service_level)

    @property
    def average_wait(self) -> str:
        return _duration(self.day.average_wait)

    @property
    def longest_wait_today(self) -> str:
        return _duration(self.day.longest_wait)

    @property
    def average_talk(self) -> str:
        return _duration(self.day.average_talk)


def _percent(share: float | None) -> str:
    return NO_FIGURE if share is None else f"{round(share * 100)} %"


def _duration(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), as the browser's timers print."""
    if seconds is None:
        return NO_FIGURE
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def chart_of(slices: Sequence[Slice], time_zone: str) -> Chart:
    """Bars of the most calls waiting at once and a line of the service level, per quarter
    hour, oldest on the left."""
    width, height = 24, 48
    top = max([s.peak_waiting for s in slices] + [1])
    tz = zone(time_zone)
    bars: list[Bar] = []
    dots: list[Dot] = []
    lines: list[str] = []
    run: list[Dot] = []
    for n, s in enumerate(slices):
        h = round(s.peak_waiting / top * (height - 8), 1)
        if h:
            bars.append(Bar(x=n * width + 2, y=round(height - h, 1), width=width - 4, height=h))
        if s.service_level is None:
            _end_run(run, lines, dots)
            run = []
            continue
        run.append(
            Dot(x=n * width + width / 2, y=round(height - 2 - s.service_level * (height - 4), 1))
        )
    _end_run(run, lines, dots)
    first = slices[0].start.astimezone(tz).strftime("%H:%M") if slices else ""
    last = (slices[-1].start + CHART_STEP).astimezone(tz).strftime("%H:%M") if slices else ""
    return Chart(bars=bars, lines=lines, dots=dots, first=first, last=last)


def _end_run(run: list[Dot], lines: list[str], dots: list[Dot]) -> None:
    """A run of service levels in consecutive slices is a line; a lone one, a dot."""
    if len(run) > 1:
        lines.append(" ".join(f"{d.x:g},{d.y:g}" for d in run))
    elif run:
        dots.append(run[0])


def _read_directory() -> dict[int, tuple[str, str, dict[str, _Queue]]]:
    orgs: dict[int, tuple[str, str, dict[str, _Queue]]] = {
        pk: (voipnow_id, time_zone, {})
        for pk, voipnow_id, time_zone in Organization.objects.values_list(
            "pk", "voipnow_id", "time_zone"
        )
    }
    queues: dict[int, dict[str, _Queue]] = {pk: found[2] for pk, found in orgs.items()}
    for pk, number, label, threshold, org_id in Extension.objects.filter(
        type=Extension.Type.QUEUE
    ).values_list("pk", "number", "label", "service_level_seconds", "organization_id"):
        queues.setdefault(org_id, {})[number] = _Queue(pk, number, label, threshold)
    return {pk: (v, tz, dict(sorted(queues[pk].items()))) for pk, (v, tz, _) in orgs.items()}


def _read_figures(
    queue_ids: list[int], time_zone: str, at: datetime
) -> tuple[dict[int, QueueDay], dict[int, list[Slice]]]:
    return day_figures(queue_ids, time_zone, at), recent_slices(queue_ids, at)


class QueueFloor:
    """The queues' part of the live picture: records queue calls, renders a panel per queue
    (``<section id="queue-…" data-queue="…">``) and turns the day at each Organization's
    midnight. ``agents`` counts each queue's agents (without it, those figures show "—");
    ``uapi`` is asked for VoipNow's call history at start (see ``reconcile_with_cdr``)."""

    def __init__(self, uapi: Any = None, *, agents: AgentCounts | None = None) -> None:
        self.uapi = uapi
        self.agents = agents
        self._orgs: dict[int, _Org] = {}
        self._directory_loaded = -float("inf")

    # -- the directory --

    async def _org(self, org_id: int) -> _Org | None:
        if monotonic_time.monotonic() - self._directory_loaded > DIRECTORY_EVERY:
            await self._load_directory()
        return self._orgs.get(org_id)

    async def _load_directory(self) -> None:
        found = await sync_to_async(_read_directory)()
        self._directory_loaded = monotonic_time.monotonic()
        for org_id, (voipnow_id, time_zone, queues) in found.items():
            org = self._orgs.get(org_id)
            if org is None:
                self._orgs[org_id] = _Org(org_id, voipnow_id, time_zone, queues)
            elif (org.time_zone, org.queues) != (time_zone, queues):
                org.time_zone, org.queues = time_zone, queues
                org.current.clear()
        for org_id in set(self._orgs) - set(found):
            del self._orgs[org_id]

    # -- Floor --

    async def calls_changed(
        self, org_id: int, calls: Mapping[str, PhoneCall], ended: Sequence[PhoneCall]
    ) -> None:
        """Record what changed in the Organization's queue calls: arrivals, answers, ends.
        Raises what the database raises (the watcher logs it and goes on)."""
        org = await self._org(org_id)
        if org is None:
            return
        changes = _look(org, calls, ended, timezone.now())
        if len(org.seen) > 2 * len(calls) + 100:
            # Calls that left without being reported as ended (a failed publish): forget them.
            org.seen = {k: v for k, v in org.seen.items() if k in calls}
        sweep = None if org.swept else set(calls)
        if not changes and sweep is None:
            return
        await sync_to_async(record)(changes, org_id, close_except=sweep)
        if sweep is not None:
            org.current.clear()
        org.swept = True
        org.current -= changes.queues

    async def panels(self, org_id: int, calls: Mapping[str, PhoneCall]) -> dict[str, str]:
        """One panel per queue of the Organization, by name (``queue:<number>``)."""
        org = await self._org(org_id)
        if org is None or not org.queues:
            return {}
        stale = [q.id for q in org.queues.values() if q.id not in org.current]
        if stale:
            day, slices = await sync_to_async(_read_figures)(stale, org.time_zone, timezone.now())
            for queue_id in stale:
                org.day[queue_id] = day.get(queue_id, QueueDay())
                org.slices[queue_id] = slices.get(queue_id, [])
            org.current.update(stale)
        live = _live_figures(org, calls)
        counts = self.agents.counts(org_id) if self.agents is not None else {}
        out: dict[str, str] = {}
        for queue in org.queues.values():
            waiting, oldest, talking = live.get(queue.number, (0, None, 0))
            agents = counts.get(queue.number)
            # No counts at all: the agents were not polled yet, so nothing is known.
            panel = QueuePanel(
                number=queue.number,
                label=queue.label,
                threshold=queue.threshold,
                waiting=waiting,
                oldest_waiting=oldest,
                talking=talking,
                day=org.day.get(queue.id, QueueDay()),
                agents=_agent_figures(agents) if counts else AgentFigures(),
                chart=chart_of(org.slices.get(queue.id, []), org.time_zone),
            )
            out[f"queue:{queue.number}"] = render_to_string(PANEL_TEMPLATE, {"panel": panel})
        return out

    async def run(self, watcher: PanelSink, stop: asyncio.Event) -> None:
        """Reconcile today with VoipNow's CDR and apply the retention once at start; then wake
        at every quarter hour (the chart moves on) and at each Organization's midnight (today
        rolls over), and publish the panels again. Never raises."""
        with contextlib.suppress(Exception):
            await self._load_directory()
        purged_at = -float("inf")
        started = True
        while not stop.is_set():
            try:
                if monotonic_time.monotonic() - purged_at >= PURGE_EVERY:
                    days = settings.CALLBOARD_HISTORY_DAYS
                    deleted = await sync_to_async(purge)(days=days)
                    purged_at = monotonic_time.monotonic()
                    if deleted:
                        log.info("deleted %d queue call records older than %d days", deleted, days)
                if started:
                    started = False
                    await self._reconcile_today()
                for org_id in watcher.organizations:
                    org = self._orgs.get(org_id)
                    if org is not None:
                        org.current.clear()
                    await watcher.refresh_panels(org_id)
            except Exception:
                log.exception("the queue figures could not be brought up to date")
            wait = (self.next_wake(timezone.now()) - timezone.now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, wait))

    def next_wake(self, now: datetime) -> datetime:
        """The next quarter hour, or an Organization's midnight if one comes first (a zone
        whose offset is not in quarter hours)."""
        quarter = chart_start(now) + CHART_STEP * CHART_SLICES
        midnights = [next_midnight(org.time_zone, now) for org in self._orgs.values()]
        return min([quarter, *midnights])

    async def _reconcile_today(self) -> None:
        if self.uapi is None:
            return
        for org in list(self._orgs.values()):
            organization = await Organization.objects.aget(pk=org.id)
            start, _ = day_bounds(org.time_zone, timezone.now())
            added = await reconcile_with_cdr(self.uapi, organization, start, timezone.now())
            if added:
                org.current.clear()


def _look(
    org: _Org, calls: Mapping[str, PhoneCall], ended: Sequence[PhoneCall], now: datetime
) -> _Changes:
    """What changed in the Organization's queue calls since the floor last looked."""
    changes = _Changes()
    for call in calls.values():
        seen = org.seen.get(call.id)
        if seen is not None and seen[0] is call:
            continue  # the very object last shown: unchanged
        queue = org.queues.get(call.extension)
        if queue is None:
            continue
        answered, agent = answer_of(call, now)
        arrived = call.published or now
        if seen is None:
            changes.arrivals.append(_Arrival(call.id, queue.id, caller_of(call), arrived))
            changes.queues.add(queue.id)
        if answered is not None and (seen is None or not seen[1]):
            changes.answers.append(_Answer(call.id, answered, agent, arrived))
            changes.queues.add(queue.id)
        org.seen[call.id] = (call, answered is not None)
    for call in ended:
        org.seen.pop(call.id, None)
        queue = org.queues.get(call.extension)
        if queue is None:
            continue
        answered, agent = answer_of(call, now)
        arrived = call.published or now
        # Recorded already, unless it came and went between two looks.
        changes.arrivals.append(_Arrival(call.id, queue.id, caller_of(call), arrived))
        answer = _Answer(call.id, answered, agent, arrived) if answered else None
        changes.ends.append(_End(call.id, now, answer))
        changes.queues.add(queue.id)
    return changes


def _live_figures(
    org: _Org, calls: Mapping[str, PhoneCall]
) -> dict[str, tuple[int, datetime | None, int]]:
    """Per queue number: calls waiting, when the one waiting longest arrived, calls talking."""
    waiting: dict[str, int] = {}
    oldest: dict[str, datetime] = {}
    talking: dict[str, int] = {}
    for call in calls.values():
        if call.extension not in org.queues:
            continue
        seen = org.seen.get(call.id)
        answered = seen[1] if seen is not None and seen[0] is call else _is_answered(call)
        q = call.extension
        if answered:
            talking[q] = talking.get(q, 0) + 1
            continue
        waiting[q] = waiting.get(q, 0) + 1
        if call.published is not None and (q not in oldest or call.published < oldest[q]):
            oldest[q] = call.published
    return {q: (waiting.get(q, 0), oldest.get(q), talking.get(q, 0)) for q in org.queues}


def _is_answered(call: PhoneCall) -> bool:
    return answer_of(call, datetime.now(UTC))[0] is not None


def _agent_figures(counts: Mapping[str, int] | None) -> AgentFigures:
    counts = counts or {}
    return AgentFigures(
        available=str(counts.get("available", 0)),
        on_call=str(counts.get("on_call", 0)),
        paused=str(counts.get("paused", 0)),
    )


# ---- VoipNow's own history ---------------------------------------------------------------

_cdr_missing_logged = False


def _log_no_cdr(why: str) -> None:
    global _cdr_missing_logged
    if not _cdr_missing_logged:
        _cdr_missing_logged = True
        log.info("VoipNow's call history is not available (%s): nothing to reconcile", why)


async def reconcile_with_cdr(uapi: Any, org: Organization, start: datetime, end: datetime) -> int:
    """Add the queue calls of ``org`` that VoipNow's CDR lists between ``start`` and ``end``
    and the history misses (a time no watcher was running); returns how many were added.

    Does nothing (and says so once in the log) when the client cannot list CDR or the server
    answers ``request_not_implemented``; returns 0 when VoipNow is unavailable. Raises what
    the database raises."""
    list_cdr = getattr(uapi, "list_cdr", None)
    if list_cdr is None:
        _log_no_cdr("the client cannot list CDR")
        return 0
    try:
        records: Iterable[CdrRecord] = await list_cdr(start=start, end=end, owner_id=org.voipnow_id)
    except UapiRejected as exc:
        if exc.code == ErrorCode.REQUEST_NOT_IMPLEMENTED:
            _log_no_cdr("VoipNow does not implement List CDR")
            return 0
        log.warning("VoipNow refused its call history (%s): %s", exc.code, exc)
        return 0
    except UapiError as exc:
        log.warning("VoipNow's call history could not be read: %s", exc)
        return 0
    return await sync_to_async(_add_records)(org.pk, list(records))


def _add_records(org_id: int, records: list[CdrRecord]) -> int:
    queues = dict(
        Extension.objects.filter(organization_id=org_id, type=Extension.Type.QUEUE).values_list(
            "number", "pk"
        )
    )
    rows: list[QueueCall] = []
    for r in records:
        queue_id = queues.get(r.extension)
        if queue_id is None or not r.phone_call_id:
            continue
        ended = r.ended
        answered = r.answered if r.was_answered else None
        done = answered or ended
        if r.was_answered:
            outcome = QueueCall.Outcome.ANSWERED
        elif ended is not None:
            outcome = QueueCall.Outcome.ABANDONED
        else:
            outcome = QueueCall.Outcome.WAITING
        rows.append(
            QueueCall(
                organization_id=org_id,
                queue_id=queue_id,
                phone_call_id=r.phone_call_id,
                caller=", ".join(r.source)[:200],
                arrived=r.published,
                answered=answered,
                agent=(r.destination[0] if r.was_answered and r.destination else "")[:24],
                ended=ended,
                outcome=outcome,
                wait_seconds=None if done is None else _seconds(done, r.published),
                talk_seconds=_seconds(ended, answered) if answered and ended else None,
            )
        )
    if not rows:
        return 0
    known = set(
        QueueCall.objects.filter(phone_call_id__in=[r.phone_call_id for r in rows]).values_list(
            "phone_call_id", flat=True
        )
    )
    fresh = [r for r in rows if r.phone_call_id not in known]
    QueueCall.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)
