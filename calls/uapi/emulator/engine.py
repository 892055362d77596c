"""The emulator's live world: calls moving through queues, phones ringing, tokens, Call Events.

Everything runs on the event loop serving the app: state changes happen in plain functions
called from request handlers or from ``loop.call_later`` timers, so there are no locks and no
threads. Timers are scaled by ``speed`` and ignored once the world was reset (``_epoch``).

``Emulator`` is made of rooms, one module each: ``queues`` (queues and agents: offering calls,
agents' phones, QueueAgents, Presence), ``simple`` (Create Simple PhoneCalls), ``actions``
(PhoneCallActions and Delete PhoneCalls), ``call_events`` (PhoneCallEvents and the fields of
each event), ``tokens`` (tokens and URI contexts) and ``traffic`` (arrivals). ``base`` lists
what the rooms share. This module keeps the call model they all work on: creating and ending
calls, adding and dropping legs, the indexes and the timers.

The call model (documented in the README):

* an inbound call arrives in a queue: view "00" (the caller's leg, extension = queue,
  status 4 "other side ringing") and waits;
* the queue offers it to the online agent idle the longest: a view for the agent, status 3
  ringing; after the phone's pickupDelay both views go to status 5 and the call is answered;
  a phone that does not answer is given up after the queue's ringSeconds and another agent
  is tried;
* after a talk time drawn from the queue's talkSeconds the call ends and leaves the list;
  a caller whose patience runs out before an agent answers abandons;
* a PhoneCallAction that rings a phone (BargeIn, Whisper, Monitor, PickUp, UnPark, Transfer
  to a phone) adds a ringing view that is answered after that phone's pickupDelay or removed
  when waitForPickup runs out; each such ring is logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from calls.uapi.wire import AgentStatus, CallEventType, Flow, ViewStatus

from .actions import PhoneCallActions
from .call_events import CallEvents
from .cdr import CallRecords, new_records
from .errors import ControlError
from .events import EventSender
from .faults import FaultBook
from .model import Call, View, now
from .profiles import DEFAULT_VOIPNOW, EndedCall, Profile, profile_for
from .queues import Phone, QueuesAndAgents
from .simple import SimpleCalls
from .tokens import Context, Tokens
from .traffic import Traffic
from .world import build_world, load_scenario

log = logging.getLogger(__name__)

CALLER_NAMES = (
    "Alex Morgan",
    "Sam Lee",
    "Maria Garcia",
    "Chen Wei",
    "Olivia Brown",
    "Noah Fischer",
    "Priya Patel",
    "Lucas Martin",
)


class Emulator(
    QueuesAndAgents, SimpleCalls, PhoneCallActions, CallEvents, CallRecords, Tokens, Traffic
):
    """The world of a stand-in VoipNow server. Use through ``create_app`` or directly."""

    def __init__(
        self,
        scenario: dict[str, Any] | str | Path | None = None,
        *,
        seed: int | None = None,
        speed: float | None = None,
        base_url: str | None = None,
        voipnow: int = DEFAULT_VOIPNOW,
    ) -> None:
        self.profile: Profile = profile_for(voipnow)
        # None: the profile's own answer to the lookup of an ended call.
        self.ended_call_override: EndedCall | None = None
        self.scenario = load_scenario(scenario)
        self.world = build_world(self.scenario)
        self.seed = self.world.seed if seed is None else int(seed)
        self.speed = float(speed) if speed else self.world.speed
        if self.speed <= 0:
            raise ValueError("speed must be > 0")
        self.base_url = base_url.rstrip("/") if base_url else None
        self.faults = FaultBook()
        self.events = EventSender()
        # Choice: tokens survive a reset, so a client that logged in keeps working; the
        # control API revokes them explicitly.
        self.tokens = {}
        self.token_lifetime = None
        self._handles: set[asyncio.TimerHandle] = set()
        self._traffic_tasks = []
        self._epoch = 0
        self._reset_world()

    # ------------------------------------------------------------------ state and reset

    def _reset_world(self) -> None:
        self._epoch += 1
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        world = self.world
        self.calls = {}
        self._seq = 0
        self._tick = 0
        self._index = {}
        self._busy: dict[str, int] = {}
        self.waiting = {q: {} for q in world.queues}
        self.agent_status = {
            (q.extension, a): AgentStatus.ONLINE for q in world.queues.values() for a in q.agents
        }
        self.phones = {}
        for ext in world.extensions.values():
            if ext.is_phone:
                self._tick += 1
                self.phones[ext.number] = Phone(ext.pickup_delay, idle_since=self._tick)
        self.rings = []
        self.arrivals = []
        self.agent_breaks = []
        self.cdrs = new_records()
        self.registrations = {}
        self._rng = random.Random(f"{self.seed}:control")
        self._queue_rngs = {q: random.Random(f"{self.seed}:{q}") for q in world.queues}
        # One generator per agent, queue and kind of break, so one agent's schedule does not
        # depend on another's.
        self._break_rngs = {
            f"{q.extension}:{a}:{kind}": random.Random(f"{self.seed}:{q.extension}:{a}:{kind}")
            for q in world.queues.values()
            for a in q.agents
            for kind in ("pause", "logout")
        }
        self.events.clear()

    def reset(self) -> None:
        """Back to the scenario's initial state: no calls, call records, rings, faults, event
        registrations, agents online, phones as configured. Tokens and the VoipNow version
        are kept; the lifetime and ended-call overrides are not."""
        self._reset_world()
        self.faults.remove()
        self.token_lifetime = None
        self.ended_call_override = None

    # ------------------------------------------------------------------ VoipNow version

    def set_voipnow(self, voipnow: int) -> Profile:
        """Play VoipNow ``voipnow`` (3 or 5) from now on; raises ValueError for another.

        Live calls and registrations stay; registrations of event types the version does not
        have stay listed but receive nothing."""
        self.profile = profile_for(voipnow)
        return self.profile

    @property
    def ended_call(self) -> EndedCall:
        """How the lookup of a call that is no longer live is answered."""
        return self.ended_call_override or self.profile.ended_call

    async def stop(self) -> None:
        """Stop traffic, timers and Call Event delivery."""
        await self.stop_traffic()
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        await self.events.stop()

    # ------------------------------------------------------------------ time

    def _later(self, seconds: float, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` after ``seconds`` of emulated time (scaled by speed)."""
        loop = asyncio.get_running_loop()
        epoch = self._epoch

        def fire() -> None:
            self._handles.discard(handle)
            if epoch != self._epoch:
                return
            try:
                fn(*args)
            except Exception:  # a broken timer must not take the loop's other work down
                log.exception("emulator timer %s failed", getattr(fn, "__name__", fn))

        handle = loop.call_later(max(0.0, seconds) / self.speed, fire)
        self._handles.add(handle)

    def _next_tick(self) -> int:
        self._tick += 1
        return self._tick

    # ------------------------------------------------------------------ contexts

    def visible_calls(self, context: Context) -> list[Call]:
        """Live calls involving the context's extension(s), oldest first."""
        if context.extension is not None:
            return self._calls_of([context.extension])
        account = context.account
        if account.kind == "serviceProvider":
            return list(self.calls.values())
        if account.kind == "organization":
            org_ids = account.organization_ids
            return [c for c in self.calls.values() if c.organization_id in org_ids]
        return self._calls_of(account.extensions)

    def _calls_of(self, extensions: Iterable[str]) -> list[Call]:
        ids: set[str] = set()
        for ext in extensions:
            ids.update(self._index.get(ext, ()))
        return sorted((self.calls[i] for i in ids), key=lambda c: c.seq)

    def involves(self, call: Call, context: Context) -> bool:
        if context.extension is not None:
            return call.id in self._index.get(context.extension, {})
        account = context.account
        if account.kind == "serviceProvider":
            return True
        if account.kind == "organization":
            return call.organization_id in account.organization_ids
        return any(call.id in self._index.get(e, {}) for e in account.extensions)

    # ------------------------------------------------------------------ indexes

    def _ref(self, ext: str | None, call: Call, delta: int) -> None:
        if ext is None:
            return
        refs = self._index.setdefault(ext, {})
        count = refs.get(call.id, 0) + delta
        if count > 0:
            refs[call.id] = count
        else:
            refs.pop(call.id, None)
            if not refs:
                del self._index[ext]

    def _add_view(self, call: Call, view: View) -> View:
        call.views[view.id] = view
        self._ref(view.extension, call, 1)
        if view.device is not None:
            # The phone of a barge-in or pickup leg is involved too, so listing the
            # supervisor's own extension shows the call it is ringing for.
            if view.device != view.extension:
                self._ref(view.device, call, 1)
            self._busy[view.device] = self._busy.get(view.device, 0) + 1
        call.changed()
        return view

    def _ring_leg(
        self,
        call: Call,
        *,
        extension: str,
        source: list[str],
        destination: list[str],
        flow: int,
        role: str,
        caller_id: str,
        device: str | None,
        private: bool | None = None,
        ringing: datetime | None = None,
    ) -> View:
        """A new leg of ``call`` ringing ``device`` (status 3, ``ringing`` now unless given),
        added to the call and its indexes. The caller sends the leg's events."""
        return self._add_view(
            call,
            View(
                id=call.new_view_id(),
                extension=extension,
                source=source,
                destination=destination,
                flow=flow,
                status=ViewStatus.RINGING,
                role=role,
                caller_id=caller_id,
                ringing=ringing or now(),
                private=private,
                device=device,
            ),
        )

    def _await_pickup(
        self,
        call: Call,
        leg: View,
        give_up_after: float,
        answered: Callable[[str, str], None],
        gave_up: Callable[[str, str], None],
    ) -> None:
        """The leg's phone answers after its pickupDelay (unless it never answers); the ring
        is given up after ``give_up_after`` seconds, whichever comes first."""
        assert leg.device is not None
        phone = self.phones[leg.device]
        # A phone that is not registered is rung (VoipNow accepted the request) but no device
        # answers: the ring runs out. A real PBX may end it sooner (CHANUNAVAIL).
        if phone.answers and phone.registered:
            self._later(phone.pickup_delay, answered, call.id, leg.id)
        self._later(give_up_after, gave_up, call.id, leg.id)

    def _drop_view(self, call: Call, view: View, status: str) -> None:
        """Remove one leg, tell its extension (Hangup) and free its phone."""
        if call.views.pop(view.id, None) is None:
            return
        self._record_leg(call, view, status)
        self._ref(view.extension, call, -1)
        phone = view.device
        if phone is not None:
            if phone != view.extension:
                self._ref(phone, call, -1)
            left = self._busy.get(phone, 0) - 1
            if left > 0:
                self._busy[phone] = left
            else:
                self._busy.pop(phone, None)
            if phone in self.phones:
                self.phones[phone].idle_since = self._next_tick()
        if view.ring_index is not None and self.rings[view.ring_index]["outcome"] == "ringing":
            self.rings[view.ring_index]["outcome"] = (
                "noAnswer" if status == "NOANSWER" else "cancelled"
            )
        call.changed()
        self._hangup_event(call, view, status)

    def is_busy(self, phone: str) -> bool:
        return self._busy.get(phone, 0) > 0

    # ------------------------------------------------------------------ calls

    def create_call(
        self,
        queue: str,
        caller: str | None = None,
        *,
        auto: bool = True,
        talk_seconds: float | None = None,
        patience_seconds: float | None = None,
        rng: random.Random | None = None,
    ) -> Call:
        """A new inbound call waiting in ``queue``. ``auto=False`` keeps it waiting until it is
        answered or hung up on request (no offers, no patience, no talk timer)."""
        q = self.world.queues.get(queue)
        if q is None:
            raise ControlError(404, f"{queue} is not a queue")
        rng = rng or self._rng
        name = rng.choice(CALLER_NAMES)
        number = caller or rng.choice(self.world.caller_numbers)
        talk = rng.uniform(*q.talk_seconds) if talk_seconds is None else float(talk_seconds)
        patience = (
            rng.uniform(*q.patience_seconds) if patience_seconds is None else patience_seconds
        )
        # Ids and nonces are not drawn from the seeded generator: a restarted emulator must
        # never hand out an id again (a dashboard may keep history by id); the seed governs
        # what happens (arrivals, callers, durations), not the names.
        call_id = self._new_call_id()
        ext = self.world.extensions[queue]
        org = self.world.organizations[q.organization_id]
        self._seq += 1
        published = now()
        call = Call(
            id=call_id,
            seq=self._seq,
            nonce=secrets.token_hex(16),
            uid=f"{int(time.time())}.{self._seq}",
            extension=queue,
            owner_user_id=ext.user_id,
            organization_id=org.id,
            organization_name=org.name,
            published=published,
            caller_number=number,
            caller_name=name,
            queue=queue,
            auto=auto,
            talk_seconds=talk,
            patience_seconds=float(patience),
        )
        self.calls[call_id] = call
        self._ref(call.extension, call, 1)  # the charged extension
        self._add_view(
            call,
            View(
                id=call.new_view_id(),
                extension=queue,
                source=[number],
                destination=[queue],
                flow=Flow.INCOMING_PUBLIC,
                status=ViewStatus.OTHER_SIDE_RINGING,
                role="caller",
                caller_id=f"{name} <{number}>",
            ),
        )
        self._inbound_event(call, queue, CallEventType.DIAL_IN, "CALLING")
        if auto:
            self.waiting[queue][call_id] = None
            self._later(call.patience_seconds, self._patience_over, call_id)
            self.dispatch(queue)
        return call

    def _new_call_id(self) -> str:
        call_id = secrets.token_hex(10)
        while call_id in self.calls:
            call_id = secrets.token_hex(10)
        return call_id

    def hangup_call(self, call_id: str) -> bool:
        call = self.calls.get(call_id)
        if call is None:
            return False
        self._end_call(call)
        return True

    def _end_call(self, call: Call) -> None:
        if call.ended:
            return
        call.ended = True
        for view in list(call.views.values()):
            self._drop_view(call, view, "ANSWER" if view.answered else "CANCEL")
        self.calls.pop(call.id, None)
        self._ref(call.extension, call, -1)
        if call.queue is not None:
            self.waiting[call.queue].pop(call.id, None)
        self._record_call(call)
        self._dispatch_all(call.organization_id)

    def _patience_over(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.answered is None and call.auto:
            self._end_call(call)

    def _talk_over(self, call_id: str, phase: int) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.phase == phase:
            self._end_call(call)

    def _ringing_view(self, call_id: str, view_id: str) -> tuple[Call, View] | None:
        call = self.calls.get(call_id)
        view = call.views.get(view_id) if call else None
        if call is None or view is None or view.status != ViewStatus.RINGING:
            return None
        return call, view

    # ------------------------------------------------------------------ summary

    def state(self) -> dict[str, Any]:
        by_org: dict[str, int] = {org: 0 for org in self.world.organizations}
        for call in self.calls.values():
            by_org[call.organization_id] += 1
        queues = {}
        for q in self.world.queues.values():
            queues[q.extension] = {
                "waiting": len(self.waiting[q.extension]),
                "agents": {
                    a: {
                        "status": int(self.agent_status[(q.extension, a)]),
                        "busy": self.is_busy(a),
                    }
                    for a in q.agents
                },
            }
        return {
            "scenario": self.world.name,
            "voipnow": self.profile.voipnow,
            "endedCall": str(self.ended_call),
            "seed": self.seed,
            "speed": self.speed,
            "traffic": self.traffic_running,
            "calls": {"total": len(self.calls), "byOrganization": by_org},
            "queues": queues,
            "rings": len(self.rings),
            "callRecords": len(self.cdrs),
            "agentBreaks": len(self.agent_breaks),
            "tokens": len(self.tokens),
            "faults": len(self.faults.faults),
            "events": {
                "registrations": sum(len(r) for r in self.registrations.values()),
                "sent": self.events.sent,
                "failed": self.events.failed,
                "dropped": self.events.dropped,
                "pending": self.events.pending(),
            },
        }
