"""Queues and agents: offering waiting calls to agents, agents' phones ringing and picking up,
QueueAgents status, phones and Presence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from calls.uapi.wire import AgentStatus, CallEventType, Flow, PresenceStatus, ViewStatus

from .base import EmulatorBase
from .errors import QAG_AGENT_INVALID, ControlError, bad_request
from .model import Call, View, iso, now
from .world import Queue

# Presence's registration values a phone terminal can have here (the PhoneRegistration
# resource): registered, not registered, registration expired.
REGISTERED, NOT_REGISTERED, EXPIRED = 1, -1, -2
REGISTRATIONS = (REGISTERED, NOT_REGISTERED, EXPIRED)


@dataclass
class Phone:
    """Runtime state of a phone terminal."""

    pickup_delay: float
    answers: bool = True
    idle_since: int = 0  # a tick, lower = idle for longer
    # One of REGISTRATIONS. A phone that is not registered (or whose registration expired)
    # rings nowhere: it is offered no queue calls and never picks up a ring.
    registration: int = REGISTERED

    @property
    def registered(self) -> bool:
        return self.registration == REGISTERED


class QueuesAndAgents(EmulatorBase):
    def free_agents(self, queue: str) -> list[str]:
        """Online agents of the queue whose phones are idle, idle the longest first."""
        q = self.world.queues[queue]
        free = [
            a
            for a in q.agents
            if self.agent_status[(queue, a)] is AgentStatus.ONLINE
            and self.phones[a].registered
            and not self.is_busy(a)
        ]
        free.sort(key=lambda a: self.phones[a].idle_since)
        return free

    def dispatch(self, queue: str) -> None:
        """Offer waiting calls to free agents, oldest call first."""
        waiting = self.waiting.get(queue)
        if not waiting:
            return
        free = self.free_agents(queue)
        if not free:
            return
        for call_id in list(waiting):
            if not free:
                break
            call = self.calls[call_id]
            if call.offered_to is None:
                self._offer(call, self.world.queues[queue], free.pop(0))

    def _dispatch_all(self, organization_id: str) -> None:
        for queue in self.world.organizations[organization_id].queues:
            self.dispatch(queue)

    def _ring_agent(self, call: Call, agent: str) -> View:
        """The agent's phone starts ringing with the caller: a new leg, and its Dial-In."""
        view = self._ring_leg(
            call,
            extension=agent,
            source=[call.caller_number],
            destination=[agent],
            flow=Flow.INCOMING_PUBLIC,
            role="agent",
            caller_id=f"{call.caller_name} <{call.caller_number}>",
            device=agent,
        )
        self._inbound_event(call, agent, CallEventType.DIAL_IN, "CALLING")
        return view

    def _offer(self, call: Call, queue: Queue, agent: str) -> None:
        call.offered_to = agent
        view = self._ring_agent(call, agent)
        self._await_pickup(
            call, view, queue.ring_seconds, self._agent_pickup, self._agent_ring_over
        )

    def _agent_pickup(self, call_id: str, view_id: str) -> None:
        found = self._ringing_view(call_id, view_id)
        if found is not None:
            self._connect_agent(*found)

    def _connect_agent(self, call: Call, view: View) -> None:
        """The agent's leg is answered: the caller is connected, the call is answered."""
        moment = now()
        view.status = ViewStatus.ON_CALL
        view.answered = moment
        view.role = "agent"
        for other in call.views.values():
            if other.role == "caller":
                other.status = ViewStatus.ON_CALL
                other.answered = other.answered or moment
                other.destination = [view.device or view.extension]
        call.answered = call.answered or moment
        call.offered_to = None
        call.phase += 1
        if call.queue is not None:
            self.waiting[call.queue].pop(call.id, None)
        call.changed()
        self._inbound_event(call, view.device or view.extension, CallEventType.ANSWER_INCOMING)
        if call.queue is not None:
            self._inbound_event(call, call.queue, CallEventType.ANSWER_INCOMING)
        if call.auto:
            self._later(call.talk_seconds, self._talk_over, call.id, call.phase)

    def _agent_ring_over(self, call_id: str, view_id: str) -> None:
        found = self._ringing_view(call_id, view_id)
        if found is None:
            return
        call, view = found
        call.offered_to = None
        self._drop_view(call, view, "NOANSWER")
        self._dispatch_all(call.organization_id)

    def answer_call(self, call_id: str, agent: str | None = None) -> Call:
        """Answer a call at once by ``agent`` (or the free agent idle the longest)."""
        call = self.calls.get(call_id)
        if call is None:
            raise ControlError(404, f"no call {call_id}")
        if agent is not None:
            full = self.world.resolve_number(agent, call.organization_id)
            if full is None or full not in self.phones:
                raise ControlError(400, f"{agent} is not a phone terminal")
            agent = full
        elif call.offered_to is not None:
            agent = call.offered_to
        else:
            free = self.free_agents(call.queue) if call.queue else []
            if not free:
                raise ControlError(409, "no free agent to answer the call")
            agent = free[0]
        ringing = [v for v in call.views.values() if v.role == "agent" and v.answered is None]
        target = next((v for v in ringing if v.device == agent), None)
        for view in ringing:
            if view is not target:
                self._drop_view(call, view, "CANCEL")
        call.offered_to = None
        if target is None:
            target = self._ring_agent(call, agent)
        self._connect_agent(call, target)
        return call

    # ------------------------------------------------------------------ QueueAgents

    def set_agent_status(self, agent: str, status: int, queue: str | None = None) -> list[str]:
        """Set an agent's status in ``queue`` (or in every queue it belongs to)."""
        status = AgentStatus(status)
        queues = [queue] if queue else list(self.world.queues_of_agent(agent))
        changed = []
        for q in queues:
            if (q, agent) in self.agent_status:
                self.agent_status[(q, agent)] = status
                changed.append(q)
        for q in changed:
            self.dispatch(q)
        return changed

    def queue_agent(self, queue: str, number: str) -> str:
        """The extended number of the agent of ``queue`` called ``number`` (short numbers are
        read in the queue's organization); raises ``qag_agent_invalid``, the code of the 3.x
        Update QueueAgents page."""
        org = self.world.extensions[queue].organization_id
        agent = self.world.resolve_number(number, org)
        if agent is None or agent not in self.queue_agents(queue):
            raise bad_request(QAG_AGENT_INVALID, "Invalid agent. Not an agent of the queue.")
        return agent

    def queue_agents(self, queue: str) -> tuple[str, ...]:
        """The agents of ``queue``, as the scenario lists them (none for another extension)."""
        q = self.world.queues.get(queue)
        return q.agents if q else ()

    def agent_status_of(self, queue: str, agent: str) -> AgentStatus:
        """The status of an agent (one of ``queue_agents(queue)``) in ``queue``."""
        return self.agent_status[(queue, agent)]

    # ------------------------------------------------------------------ phones and Presence

    def set_phone(
        self,
        phone: str,
        *,
        pickup_delay: float | None = None,
        answers: bool | None = None,
        registered: bool | None = None,
        registration: int | None = None,
    ) -> Phone:
        """Change a phone terminal: its pickup delay, whether it answers, whether it is
        registered (``registered``, or ``registration`` as Presence writes it: 1, -1 or -2
        for expired). Raises ControlError 404 for an extension that is no phone terminal."""
        state = self.phones.get(phone)
        if state is None:
            raise ControlError(404, f"{phone} is not a phone terminal")
        if registration is not None and registration not in REGISTRATIONS:
            raise ControlError(400, "registration must be 1, -1 or -2")
        if pickup_delay is not None:
            state.pickup_delay = float(pickup_delay)
        if answers is not None:
            state.answers = bool(answers)
        if registered is not None:
            state.registration = REGISTERED if registered else NOT_REGISTERED
        if registration is not None:
            state.registration = registration
        return state

    def presence(self, ext: str) -> dict[str, Any]:
        extension = self.world.extensions[ext]
        if not extension.is_phone:
            # Unknown in the docs: presence of a non-phone extension. Reported online with
            # "no registration necessary" (2).
            return {
                "extension": ext,
                "status": int(PresenceStatus.ONLINE),
                "registration": [{"registration": 2, "status": int(PresenceStatus.ONLINE)}],
            }
        registration = self.phones[ext].registration
        if registration == NOT_REGISTERED:
            # Not registered (-1): no user agent, no expiry, and nothing known of its status.
            return {
                "extension": ext,
                "status": int(PresenceStatus.UNKNOWN),
                "registration": [{"registration": -1, "status": int(PresenceStatus.UNKNOWN)}],
            }
        if registration == EXPIRED:
            # Expired (-2): the phone that was registered is remembered (its user agent); the
            # expiry is missing, as the resource page says for an expired registration.
            unknown = int(PresenceStatus.UNKNOWN)
            return {
                "extension": ext,
                "status": unknown,
                "registration": [{"agent": extension.agent, "registration": -2, "status": unknown}],
            }
        status = PresenceStatus.ONLINE
        for call_id in self._index.get(ext, ()):
            for view in self.calls[call_id].views.values():
                if view.device != ext:
                    continue
                if view.status == ViewStatus.RINGING and status is PresenceStatus.ONLINE:
                    status = PresenceStatus.RINGING
                elif view.status in (ViewStatus.ON_CALL, ViewStatus.OTHER_SIDE_RINGING):
                    status = PresenceStatus.BUSY
        expire = now().replace(microsecond=0) + timedelta(seconds=3600)
        return {
            "extension": ext,
            "status": int(status),
            "registration": [
                {
                    "agent": extension.agent,
                    "registration": 1,
                    "status": int(status),
                    "expire": iso(expire),
                }
            ],
        }
