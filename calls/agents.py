"""The agent panel: each queue agent of an Organization, its state and how long it has been in it.

Whether an agent is logged out, online or paused comes from QueueAgents, one request per queue,
polled every ``CALLBOARD_AGENT_POLL_INTERVAL`` seconds; whether its phone rings or it is on a
call comes from the live calls, which the watcher hands over the moment they change; whether
its phone is registered comes from Presence, polled with QueueAgents. When each state began is
kept in the live store, so time in state survives a watcher restart or a handover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.template.loader import render_to_string

from calls import store
from calls.backoff import backoff
from calls.floor import PanelSink
from calls.models import Extension, Organization
from calls.rows import Directory, call_row
from calls.store import AgentSince
from calls.uapi.client import UapiClient
from calls.uapi.types import PhoneCall, PhoneCallView
from calls.uapi.wire import AgentStatus, ViewStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

PANEL = "agents"
PANEL_TEMPLATE = "calls/agents.html#agents-panel"
# The states, in the order a queue card lists them.
STATES = ("available", "ringing", "on_call", "paused", "logged_out")
STATE_WORDS = {
    "available": "available",
    "ringing": "ringing",
    "on_call": "on a call",
    "paused": "paused",
    "logged_out": "logged out",
}
QUEUE_STATUS_WORDS = {AgentStatus.PAUSED: "paused", AgentStatus.LOGGED_OUT: "logged out"}
# While VoipNow fails every request, polls back off up to this many seconds.
BACKOFF_MAX = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


# ---- what the panel shows -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueRef:
    number: str
    label: str


@dataclass(frozen=True, slots=True)
class AgentCall:
    """The call an agent's phone rings with or is on."""

    id: str
    caller: str
    state: str  # "ringing" or "on_call"
    # When VoipNow says the agent's leg started ringing or was answered.
    began: datetime | None = None


@dataclass(frozen=True, slots=True)
class ServedQueue:
    number: str
    label: str
    status: int

    @property
    def status_words(self) -> str:
        """Empty while online: only a queue where the agent is not taking calls is named."""
        try:
            return QUEUE_STATUS_WORDS.get(AgentStatus(self.status), "")
        except ValueError:
            return "logged out"


@dataclass(frozen=True, slots=True)
class AgentRow:
    extension: str
    label: str
    state: str
    since: datetime
    call: AgentCall | None
    queues: tuple[ServedQueue, ...]
    registered: bool | None  # None: Presence has not said

    @property
    def state_words(self) -> str:
        return STATE_WORDS[self.state]

    @property
    def queue_numbers(self) -> str:
        """The queues served, space separated: what the browser filters on."""
        return " ".join(q.number for q in self.queues)


@dataclass(frozen=True, slots=True)
class AgentPanel:
    queues: tuple[QueueRef, ...]
    agents: tuple[AgentRow, ...]


def agent_state(statuses: Mapping[str, int], call: AgentCall | None) -> str:
    """An agent's state from its status in each queue it serves and the call its phone is on:
    logged out of every queue, else on a call or ringing, else available when online in any
    queue, else paused."""
    if not any(s in (AgentStatus.ONLINE, AgentStatus.PAUSED) for s in statuses.values()):
        return "logged_out"
    if call is not None:
        return call.state
    return "available" if AgentStatus.ONLINE in statuses.values() else "paused"


def state_in_queue(status: int, call: AgentCall | None) -> str:
    """An agent's state as one queue counts it: logged out of that queue, else on a call or
    ringing (whichever queue the call came from, it is not free for this one), else online
    (available) or paused there."""
    if status not in (AgentStatus.ONLINE, AgentStatus.PAUSED):
        return "logged_out"
    if call is not None:
        return call.state
    return "available" if status == AgentStatus.ONLINE else "paused"


# ---- the floor ---------------------------------------------------------------------------


@dataclass
class _Org:
    org_id: int
    prefix: str = ""
    queues: tuple[QueueRef, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    # Queue number -> agent number -> status there, as QueueAgents last answered.
    agents: dict[str, dict[str, int]] = field(default_factory=dict)
    polled: bool = False
    # The live calls as the watcher last handed them over, and the agents' calls among them.
    live: Mapping[str, PhoneCall] = field(default_factory=dict)
    legs: _Legs = field(default_factory=lambda: _Legs())
    calls: dict[str, AgentCall] = field(default_factory=dict)
    # When each agent's state began; None until read back from the store.
    states: dict[str, AgentSince] | None = None
    rendered: tuple[AgentPanel, str] | None = None

    def statuses(self, agent: str) -> dict[str, int]:
        return {q: found[agent] for q, found in self.agents.items() if agent in found}

    def agent_numbers(self) -> list[str]:
        return sorted({a for found in self.agents.values() for a in found})


@dataclass(frozen=True, slots=True)
class _OrgDirectory:
    prefix: str
    queues: tuple[QueueRef, ...]
    labels: dict[str, str]


class AgentFloor:
    """The agent panel of every watched Organization (a ``calls.floor.Floor``)."""

    def __init__(
        self,
        uapi: UapiClient,
        *,
        poll_interval: float,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.uapi = uapi
        self.poll_interval = poll_interval
        self.clock = clock
        self._orgs: dict[int, _Org] = {}
        # Phone registrations by extension, as Presence last answered.
        self._registered: dict[str, bool] = {}
        self._lock = asyncio.Lock()

    # -- Floor --

    async def calls_changed(
        self, org_id: int, calls: Mapping[str, PhoneCall], ended: Sequence[PhoneCall]
    ) -> None:
        """Move the Organization's agents to ringing or on a call, or off it, at once."""
        async with self._lock:
            org = self._orgs.setdefault(org_id, _Org(org_id))
            org.live = calls
            await self._settle(org)

    async def panels(self, org_id: int, calls: Mapping[str, PhoneCall]) -> dict[str, str]:
        """``{"agents": <section id="agents">}`` once the agents were polled, else nothing.
        Rendered again only when something it shows changed."""
        org = self._orgs.get(org_id)
        if org is None or not org.polled or org.states is None:
            return {}
        panel = self._panel(org)
        if org.rendered is None or org.rendered[0] != panel:
            org.rendered = (panel, render_to_string(PANEL_TEMPLATE, {"panel": panel}))
        return {PANEL: org.rendered[1]}

    async def run(self, watcher: PanelSink, stop: asyncio.Event) -> None:
        """Poll the agents of the watched Organizations until ``stop``, publishing the panels
        that changed. Never raises: with VoipNow down the last known states stay, and polls
        back off."""
        failures = 0
        while not stop.is_set():
            try:
                changed, failed = await self.poll(watcher.organizations)
                for org_id in changed:
                    await watcher.refresh_panels(org_id)
            except Exception:
                log.exception("polling the agents failed")
                failed = True
            failures = failures + 1 if failed else 0
            wait = self.poll_interval
            if failures:
                cap = max(BACKOFF_MAX, self.poll_interval)
                wait = backoff(failures, first=self.poll_interval, cap=cap)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    # -- polling --

    async def poll(self, org_ids: Iterable[int]) -> tuple[list[int], bool]:
        """Ask VoipNow once for the agents of every queue of these Organizations and for the
        phones' presence. Returns the Organizations whose panel changed, and whether every
        request failed. What VoipNow could not answer keeps its last known value; a failure
        is logged (one line), never raised. Raises only what the database raises."""
        directory = await sync_to_async(_read_directory)()
        wanted = [o for o in org_ids if o in directory]
        if not wanted:
            return [], False
        queues = [(o, q.number) for o in wanted for q in directory[o].queues]
        listed, presence = await asyncio.gather(
            asyncio.gather(*(_attempt(self.uapi.list_queue_agents(q)) for _, q in queues)),
            _attempt(self.uapi.presence()),
        )
        errors = [e for e in (*listed, presence) if isinstance(e, Exception)]
        if errors:
            log.warning(
                "agents: %d of %d VoipNow requests failed, keeping the last known states: %s",
                len(errors),
                len(queues) + 1,
                errors[0],
            )
        if not isinstance(presence, Exception):
            self._registered.update({p.extension: p.registered for p in presence})
        changed: list[int] = []
        async with self._lock:
            for org_id in wanted:
                org = self._orgs.setdefault(org_id, _Org(org_id))
                found = directory[org_id]
                org.prefix, org.queues, org.labels = found.prefix, found.queues, found.labels
                fresh = {
                    q: {_full(a.agent_number, org): a.status for a in agents}
                    for (o, q), agents in zip(queues, listed, strict=True)
                    if o == org_id and not isinstance(agents, Exception)
                }
                # A queue VoipNow did not answer keeps its agents; one no longer ours goes.
                org.agents = {
                    q.number: fresh.get(q.number, org.agents.get(q.number, {})) for q in org.queues
                }
                # An Organization without queues has no agents: an empty panel, not none.
                org.polled = org.polled or bool(fresh) or not org.queues
                before = org.rendered[0] if org.rendered else None
                await self._settle(org)
                if org.polled and org.states is not None and self._panel(org) != before:
                    changed.append(org_id)
        return changed, len(errors) == len(queues) + 1

    # -- states --

    async def _settle(self, org: _Org) -> None:
        """Derive each agent's state; a state that changed begins now (or when VoipNow says
        the call's leg began). Saves the states when any changed."""
        if not org.polled:
            return
        org.calls = org.legs.agent_calls(org.live)
        if org.states is None:
            try:
                org.states = await store.agent_states(org.org_id)
            except Exception as exc:  # noqa: BLE001 - Redis down: times start afresh
                log.warning("could not read the agents' states: %s", exc)
                org.states = {}
        now = self.clock()
        states: dict[str, AgentSince] = {}
        for agent in org.agent_numbers():
            call = org.calls.get(agent)
            state = agent_state(org.statuses(agent), call)
            known = org.states.get(agent)
            if known is not None and known.state == state:
                states[agent] = known
            else:
                began = call.began if call is not None and call.state == state else None
                states[agent] = AgentSince(state, min(began, now) if began else now)
        if states != org.states:
            org.states = states
            try:
                await store.save_agent_states(org.org_id, states)
            except Exception as exc:  # noqa: BLE001 - Redis down: kept in memory meanwhile
                log.warning("could not save the agents' states: %s", exc)

    def _panel(self, org: _Org) -> AgentPanel:
        states = org.states or {}
        labels = {q.number: q.label for q in org.queues}
        rows = []
        for agent in org.agent_numbers():
            known = states.get(agent)
            if known is None:
                continue
            rows.append(
                AgentRow(
                    extension=agent,
                    label=org.labels.get(agent, ""),
                    state=known.state,
                    since=known.since,
                    call=org.calls.get(agent),
                    queues=tuple(
                        ServedQueue(q, labels.get(q, ""), status)
                        for q, status in sorted(org.statuses(agent).items())
                    ),
                    registered=self._registered.get(agent),
                )
            )
        rows.sort(key=lambda r: ((r.label or r.extension).casefold(), r.extension))
        return AgentPanel(queues=org.queues, agents=tuple(rows))

    def counts(self, org_id: int) -> dict[str, dict[str, int]]:
        """Per queue of the Organization, how many of its agents are available, ringing, on
        a call, paused and logged out there (see ``state_in_queue``); empty until the agents
        were first polled."""
        org = self._orgs.get(org_id)
        if org is None or not org.polled:
            return {}
        out: dict[str, dict[str, int]] = {}
        for queue, agents in org.agents.items():
            tally = dict.fromkeys(STATES, 0)
            for agent, status in agents.items():
                tally[state_in_queue(status, org.calls.get(agent))] += 1
            out[queue] = tally
        return out


# ---- reading the calls and the directory --------------------------------------------------


class _Legs:
    """The legs of an Organization's calls that ring an extension or have it on a call, read
    once per call: the watcher hands over the same PhoneCall object while a call
    is unchanged, so a change costs a look-up per call, not a reading of every view."""

    def __init__(self) -> None:
        self._read: dict[str, tuple[PhoneCall, tuple[tuple[str, AgentCall], ...]]] = {}

    def agent_calls(self, calls: Mapping[str, PhoneCall]) -> dict[str, AgentCall]:
        """The call each extension's phone rings with or is on, by extension. A call it is on
        wins over one that rings: a supervisor barging in (whispering, listening) rings a leg
        that carries the agent's extension while the agent talks."""
        read: dict[str, tuple[PhoneCall, tuple[tuple[str, AgentCall], ...]]] = {}
        found: dict[str, AgentCall] = {}
        for call_id, call in calls.items():
            known = self._read.get(call_id)
            legs = known[1] if known is not None and known[0] is call else _legs(call)
            read[call_id] = (call, legs)
            for extension, agent_call in legs:
                prev = found.get(extension)
                if prev is None or (prev.state == "ringing" and agent_call.state == "on_call"):
                    found[extension] = agent_call
        self._read = read
        return found


_NO_LABELS = Directory(labels={})


def _legs(call: PhoneCall) -> tuple[tuple[str, AgentCall], ...]:
    legs = []
    caller: str | None = None
    for view in call.views:
        state = _leg_state(view)
        if state is None:
            continue
        if caller is None:
            caller = call_row(call, _NO_LABELS).caller  # who called, as the call's row shows it
        began = view.answered if state == "on_call" else view.ringing
        legs.append((view.extension, AgentCall(call.id, caller, state, _aware(began))))
    return tuple(legs)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # VoipNow's dates are UTC
    return moment


def _leg_state(view: PhoneCallView) -> str | None:
    if view.status == ViewStatus.RINGING:
        return "ringing"
    # The other side ringing: the agent has dialled out and is on the phone already.
    if view.status in (ViewStatus.ON_CALL, ViewStatus.OTHER_SIDE_RINGING):
        return "on_call"
    return None


def _full(number: str, org: _Org) -> str:
    """An agent's number in the extended form when it is a short number of the Organization's;
    a remote agent's public number as it is."""
    if "*" in number or not org.prefix:
        return number
    full = f"{org.prefix}*{number}"
    return full if full in org.labels else number


async def _attempt(work: Awaitable[T]) -> T | Exception:
    """What ``work`` returns, or what it raised: one request failing spoils no other."""
    try:
        return await work
    except Exception as exc:  # noqa: BLE001 - any failure keeps the last known value
        return exc


def _read_directory() -> dict[int, _OrgDirectory]:
    orgs = dict(Organization.objects.values_list("pk", "extension_prefix"))
    labels: dict[int, dict[str, str]] = {pk: {} for pk in orgs}
    queues: dict[int, list[QueueRef]] = {pk: [] for pk in orgs}
    rows = Extension.objects.values_list("organization_id", "number", "label", "type")
    for org_id, number, label, type_ in rows.order_by("number"):
        labels[org_id][number] = label
        if type_ == Extension.Type.QUEUE:
            queues[org_id].append(QueueRef(number, label))
    return {pk: _OrgDirectory(prefix, tuple(queues[pk]), labels[pk]) for pk, prefix in orgs.items()}
