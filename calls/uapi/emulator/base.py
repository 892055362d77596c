"""What every room of the engine shares: the world's live state and the operations one room
uses from another.

``engine.Emulator`` is made of rooms (queues and agents, simple calls, PhoneCallActions,
Call Events, tokens, traffic), each a class in its own module built on ``EmulatorBase``. The
state is set up by the engine; the abstract methods below are implemented by the engine (the
call model) or by the room named in their docstring, so each room type-checks on its own and a
reader sees here everything a room may reach.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from calls.uapi.wire import AgentStatus, CallEventType

from .events import EventSender, Registration
from .model import Call, View
from .profiles import Profile
from .world import World

if TYPE_CHECKING:
    from .cdr import CallRecord
    from .queues import Phone
    from .tokens import Context, Token


class EmulatorBase(ABC):
    world: World
    profile: Profile  # what differs between VoipNow 3.x and 5.x
    speed: float
    events: EventSender
    tokens: dict[str, Token]
    token_lifetime: int | None
    calls: dict[str, Call]
    waiting: dict[str, dict[str, None]]  # queue -> ids of the calls waiting in it, oldest first
    agent_status: dict[tuple[str, str], AgentStatus]  # (queue, agent) -> status
    phones: dict[str, Phone]
    rings: list[dict[str, Any]]  # the ring log of PhoneCallActions
    arrivals: list[dict[str, Any]]  # the traffic log
    agent_breaks: list[dict[str, Any]]  # the log of agents' scheduled pauses and log-outs
    cdrs: deque[CallRecord]  # the records of ended calls, oldest first (``cdr``)
    registrations: dict[str, dict[str, Registration]]  # extension -> id -> Call Event
    _seq: int
    _index: dict[str, dict[str, int]]  # extension -> call id -> references
    _traffic_tasks: list[asyncio.Task[None]]
    _queue_rngs: dict[str, random.Random]
    _break_rngs: dict[str, random.Random]  # "queue:agent:kind" -> generator of its breaks

    # ------------------------------------------------------------------ the call model (engine)

    @abstractmethod
    def _later(self, seconds: float, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` after ``seconds`` of emulated time, unless the world was reset."""

    @abstractmethod
    def _new_call_id(self) -> str: ...

    @abstractmethod
    def _ref(self, ext: str | None, call: Call, delta: int) -> None:
        """Count a reference from ``ext`` to ``call`` in the index of involved extensions."""

    @abstractmethod
    def _add_view(self, call: Call, view: View) -> View: ...

    @abstractmethod
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
        """Add a new ringing leg to ``call`` and return it."""

    @abstractmethod
    def _await_pickup(
        self,
        call: Call,
        leg: View,
        give_up_after: float,
        answered: Callable[[str, str], None],
        gave_up: Callable[[str, str], None],
    ) -> None:
        """Schedule ``answered`` after the leg's phone's pickupDelay (if it answers at all)
        and ``gave_up`` after ``give_up_after`` seconds."""

    @abstractmethod
    def _drop_view(self, call: Call, view: View, status: str) -> None: ...

    @abstractmethod
    def _ringing_view(self, call_id: str, view_id: str) -> tuple[Call, View] | None:
        """The call and its view, if that view is still ringing."""

    @abstractmethod
    def _end_call(self, call: Call) -> None: ...

    @abstractmethod
    def _talk_over(self, call_id: str, phase: int) -> None: ...

    @abstractmethod
    def is_busy(self, phone: str) -> bool: ...

    @abstractmethod
    def create_call(
        self,
        queue: str,
        caller: str | None = None,
        *,
        auto: bool = True,
        talk_seconds: float | None = None,
        patience_seconds: float | None = None,
        rng: random.Random | None = None,
    ) -> Call: ...

    @abstractmethod
    def visible_calls(self, context: Context) -> list[Call]: ...

    @abstractmethod
    def involves(self, call: Call, context: Context) -> bool: ...

    # ------------------------------------------------------------------ queues and agents

    @abstractmethod
    def dispatch(self, queue: str) -> None:
        """Offer waiting calls to free agents (``queues``)."""

    @abstractmethod
    def _dispatch_all(self, organization_id: str) -> None: ...

    @abstractmethod
    def set_agent_status(self, agent: str, status: int, queue: str | None = None) -> list[str]:
        """Set an agent's QueueAgents status in ``queue`` or in all its queues (``queues``)."""

    # ------------------------------------------------------------------ call records

    @abstractmethod
    def _record_call(self, call: Call) -> None:
        """Keep the record (CDR) of a call that has just ended (``cdr``)."""

    @abstractmethod
    def _record_leg(self, call: Call, view: View, status: str) -> None:
        """Note a leg that has just left ``call``, for its record (``cdr``)."""

    @abstractmethod
    def _connect_agent(self, call: Call, view: View) -> None:
        """Answer the call on ``view`` (``queues``)."""

    # ------------------------------------------------------------------ Call Events

    @abstractmethod
    def _send(self, ext: str, event_type: CallEventType, fields: dict[str, str]) -> None:
        """Deliver a Call Event to the registrations of ``ext`` (``call_events``)."""

    @abstractmethod
    def _fields(
        self,
        call: Call,
        *,
        caller_id: str,
        caller_ext: str | None,
        called_ext: str | None,
        called_number: str,
        status: str,
        flow: str,
    ) -> dict[str, str]: ...

    @abstractmethod
    def _inbound_event(
        self, call: Call, ext: str, event_type: CallEventType, status: str = "ANSWER"
    ) -> None: ...

    @abstractmethod
    def _outbound_event(
        self, call: Call, leg: View, event_type: CallEventType, status: str = "ANSWER"
    ) -> None: ...

    @abstractmethod
    def _hangup_event(self, call: Call, view: View, status: str) -> None: ...
