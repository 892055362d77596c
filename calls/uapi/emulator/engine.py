"""The emulator's live world: calls moving through queues, phones ringing, tokens, Call Events.

Everything runs on the event loop serving the app: state changes happen in plain functions
called from request handlers or from ``loop.call_later`` timers, so there are no locks and no
threads. Timers are scaled by ``speed`` and ignored once the world was reset (``_epoch``).

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
import contextlib
import logging
import math
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from calls.uapi.wire import (
    DEFAULT_WAIT_FOR_PICKUP,
    EXTENSION_SELF,
    USER_ME,
    USER_OWNER,
    USER_VIEWER,
    Action,
    AgentStatus,
    CallEventMethod,
    CallEventType,
    ErrorCode,
    ExtensionType,
    Flow,
    PresenceStatus,
    ViewStatus,
)

from .errors import ControlError, bad_request
from .events import EventSender, Registration
from .faults import FaultBook
from .model import Call, View, compact, iso, now
from .world import Account, App, Queue, World, build_world, load_scenario

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
CALLER_ID_PARTS = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<number>[^>]*)>\s*$")
PHONE_NUMBER_RE = re.compile(r"^\+?[0-9]{4,}$")
OBJECT_ID_RE = re.compile(r"^[A-Za-z0-9]+$")
RECORDING_FORMATS = ("wav", "wav49", "gsm", "mp3")
# Unknown in the docs for 3.x: the default of maxInParking. The vendor's MCP client uses 180 s.
DEFAULT_MAX_IN_PARKING = 180.0
# A caller sent to voicemail leaves a message of about this long before hanging up.
VOICEMAIL_SECONDS = 30.0
# A public number called by Create Simple PhoneCalls answers after about this long.
PUBLIC_PICKUP_SECONDS = 1.0
# Unknown in the docs for 3.x: the default of callDuration (v5: "the global system value").
DEFAULT_CALL_DURATION = 3600.0
RING_ACTIONS = frozenset(
    {Action.BARGE_IN, Action.WHISPER, Action.MONITOR, Action.PICK_UP, Action.UNPARK}
)
# Actions documented as applying to all calls of the extension when phoneCallId is absent.
BULK_ACTIONS = frozenset(
    {
        Action.ON_HOLD,
        Action.OFF_HOLD,
        Action.PARK,
        Action.TRANSFER,
        Action.START_RECORDING,
        Action.STOP_RECORDING,
    }
)
EVENT_EXTENSION_TYPES = frozenset(
    {
        ExtensionType.PHONE_TERMINAL,
        ExtensionType.QUEUE,
        ExtensionType.CONFERENCE,
        ExtensionType.IVR,
    }
)


def split_caller_id(caller_id: str) -> tuple[str, str]:
    """(name, number) of ``Name <number>``; a bare number is all number."""
    match = CALLER_ID_PARTS.match(caller_id)
    if match is None:
        return "", caller_id
    return match["name"], match["number"]


def valid_caller_id(value: str) -> bool:
    match = re.match(r"^(?P<name>.+?)\s+<(?P<number>\+?[0-9*]+)>$", value)
    if match is None:
        return False
    name = match["name"].strip()
    return bool(name) and all(ch.isalnum() or ch in " .'-" for ch in name)


def positive_number(value: Any) -> float | None:
    """A number (or numeric string) > 0, else None. Booleans are not numbers here."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    return number


@dataclass
class Token:
    value: str
    app: App
    lifetime: int
    expires_at: float


@dataclass
class Phone:
    """Runtime state of a phone terminal."""

    pickup_delay: float
    answers: bool = True
    idle_since: int = 0  # a tick, lower = idle for longer


@dataclass(frozen=True)
class Context:
    """Who is asking about what: the resolved URI segments of a UAPI request."""

    account: Account  # the user context (the token's account or one below it)
    user_segment: str  # as given in the URI, for links
    extension: str | None  # None for @self

    def extensions(self) -> frozenset[str]:
        if self.extension is None:
            return self.account.extensions
        return frozenset({self.extension})


class Emulator:
    """The world of a stand-in VoipNow server. Use through ``create_app`` or directly."""

    def __init__(
        self,
        scenario: dict[str, Any] | str | Path | None = None,
        *,
        seed: int | None = None,
        speed: float | None = None,
        base_url: str | None = None,
    ) -> None:
        self.scenario = load_scenario(scenario)
        self.world: World = build_world(self.scenario)
        self.seed = self.world.seed if seed is None else int(seed)
        self.speed = float(speed) if speed else self.world.speed
        if self.speed <= 0:
            raise ValueError("speed must be > 0")
        self.base_url = base_url.rstrip("/") if base_url else None
        self.faults = FaultBook()
        self.events = EventSender()
        # Choice: tokens survive a reset, so a client that logged in keeps working; the
        # control API revokes them explicitly.
        self.tokens: dict[str, Token] = {}
        self.token_lifetime: int | None = None
        self._handles: set[asyncio.TimerHandle] = set()
        self._traffic_tasks: list[asyncio.Task[None]] = []
        self._epoch = 0
        self._reset_world()

    # ------------------------------------------------------------------ state and reset

    def _reset_world(self) -> None:
        self._epoch += 1
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        world = self.world
        self.calls: dict[str, Call] = {}
        self._seq = 0
        self._tick = 0
        self._index: dict[str, dict[str, int]] = {}
        self._busy: dict[str, int] = {}
        self.waiting: dict[str, dict[str, None]] = {q: {} for q in world.queues}
        self.agent_status: dict[tuple[str, str], AgentStatus] = {
            (q.extension, a): AgentStatus.ONLINE for q in world.queues.values() for a in q.agents
        }
        self.phones: dict[str, Phone] = {}
        for ext in world.extensions.values():
            if ext.is_phone:
                self._tick += 1
                self.phones[ext.number] = Phone(ext.pickup_delay, idle_since=self._tick)
        self.rings: list[dict[str, Any]] = []
        self.arrivals: list[dict[str, Any]] = []
        self.registrations: dict[str, dict[str, Registration]] = {}
        self._rng = random.Random(f"{self.seed}:control")
        self._queue_rngs = {q: random.Random(f"{self.seed}:{q}") for q in world.queues}
        self.events.clear()

    def reset(self) -> None:
        """Back to the scenario's initial state: no calls, rings, faults, event registrations,
        agents online, phones as configured. Tokens are kept; the lifetime override is not."""
        self._reset_world()
        self.faults.remove()
        self.token_lifetime = None

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

    # ------------------------------------------------------------------ tokens

    def issue_token(self, client_id: str, client_secret: str | None = None) -> Token | None:
        """A new access token for the app, or None when the credentials are wrong."""
        app = self.world.apps.get(client_id)
        if app is None or (client_secret is not None and client_secret != app.client_secret):
            return None
        lifetime = self.token_lifetime if self.token_lifetime is not None else app.token_lifetime
        # 40 hex characters, like the PHP OAuth2 server VoipNow is built on.
        token = Token(secrets.token_hex(20), app, lifetime, time.time() + lifetime)
        self.tokens[token.value] = token
        return token

    def token_account(self, value: str | None) -> Account | None:
        token = self.tokens.get(value or "")
        if token is None:
            return None
        if token.expires_at <= time.time():
            del self.tokens[token.value]
            return None
        return self.world.accounts[token.app.account]

    def revoke_tokens(self, value: str | None = None) -> int:
        if value is None:
            count = len(self.tokens)
            self.tokens.clear()
            return count
        return 1 if self.tokens.pop(value, None) else 0

    # ------------------------------------------------------------------ contexts

    def resolve(self, account: Account, user_segment: str, ext_segment: str) -> Context:
        """Apply the userId and extension rules of the UAPI URI fragment."""
        world = self.world
        if user_segment in (USER_ME, USER_VIEWER):
            context_account = account
        elif user_segment == USER_OWNER:
            if ext_segment == EXTENSION_SELF:
                # Unknown in the docs: @owner with @self. The owner cannot be derived from
                # an extension, so the token's own account is used.
                context_account = account
            else:
                if ext_segment not in account.extensions:
                    raise bad_request(ErrorCode.EXTENSION_INVALID, "Invalid extension.")
                context_account = world.accounts[world.extensions[ext_segment].user_id]
        else:
            target = world.accounts.get(user_segment)
            if target is None or not (
                target.id == account.id
                or target.id in account.user_ids
                # organization_ids of a user account names the organization above it.
                or (account.kind == "serviceProvider" and target.id in account.organization_ids)
            ):
                raise bad_request(
                    ErrorCode.USER_INVALID,
                    "Invalid userId. It must be a User Id or @owner, @me, @viewer.",
                )
            context_account = target
        if ext_segment == EXTENSION_SELF:
            return Context(context_account, user_segment, None)
        if ext_segment not in context_account.extensions:
            raise bad_request(
                ErrorCode.EXTENSION_INVALID,
                "Invalid extension. It must be an existing extension number or @self.",
            )
        return Context(context_account, user_segment, ext_segment)

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

    def _drop_view(self, call: Call, view: View, status: str) -> None:
        """Remove one leg, tell its extension (Hangup) and free its phone."""
        if call.views.pop(view.id, None) is None:
            return
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
        self._dispatch_all(call.organization_id)

    def _patience_over(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.answered is None and call.auto:
            self._end_call(call)

    def _talk_over(self, call_id: str, phase: int) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.phase == phase:
            self._end_call(call)

    def _dispatch_all(self, organization_id: str) -> None:
        for queue in self.world.organizations[organization_id].queues:
            self.dispatch(queue)

    def free_agents(self, queue: str) -> list[str]:
        """Online agents of the queue whose phones are idle, idle the longest first."""
        q = self.world.queues[queue]
        free = [
            a
            for a in q.agents
            if self.agent_status[(queue, a)] is AgentStatus.ONLINE and not self.is_busy(a)
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

    def _ring_agent(self, call: Call, agent: str) -> View:
        """The agent's phone starts ringing with the caller: a new leg, and its Dial-In."""
        view = self._add_view(
            call,
            View(
                id=call.new_view_id(),
                extension=agent,
                source=[call.caller_number],
                destination=[agent],
                flow=Flow.INCOMING_PUBLIC,
                status=ViewStatus.RINGING,
                role="agent",
                caller_id=f"{call.caller_name} <{call.caller_number}>",
                ringing=now(),
                device=agent,
            ),
        )
        self._inbound_event(call, agent, CallEventType.DIAL_IN, "CALLING")
        return view

    def _offer(self, call: Call, queue: Queue, agent: str) -> None:
        call.offered_to = agent
        view = self._ring_agent(call, agent)
        phone = self.phones[agent]
        if phone.answers:
            self._later(phone.pickup_delay, self._agent_pickup, call.id, view.id)
        self._later(queue.ring_seconds, self._agent_ring_over, call.id, view.id)

    def _ringing_view(self, call_id: str, view_id: str) -> tuple[Call, View] | None:
        call = self.calls.get(call_id)
        view = call.views.get(view_id) if call else None
        if call is None or view is None or view.status != ViewStatus.RINGING:
            return None
        return call, view

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

    # ------------------------------------------------------------------ Create Simple PhoneCalls

    def create_simple_call(
        self,
        context: Context,
        body: Any,
        *,
        wait_for_pickup: str | None = None,
        call_duration: str | None = None,
    ) -> Call:
        """Create Simple PhoneCalls: ring the first source, and once it answers call the first
        destination; the call lasts ``callDuration`` from the destination's answer.

        Validation order (unknown in the docs; this one follows the payload, then the query):
        extension, source, destination, callerId, callerDestination, waitForPickup,
        callDuration."""
        payload: dict[str, Any] = body if isinstance(body, dict) else {}
        ext = self.world.extensions[self._own_phone(context.account, payload.get("extension"))]
        org = self.world.organizations[ext.organization_id]
        views = payload.get("phoneCallView")
        spec = views[0] if isinstance(views, list) and views and isinstance(views[0], dict) else {}
        sources = self._parties(spec.get("source"), org.id, source=True)
        destinations = self._parties(spec.get("destination"), org.id, source=False)
        caller_id = self._caller_id(spec.get("callerId"), ext.number)
        caller_destination = self._caller_id(spec.get("callerDestination"), ext.number)
        wait = self._wait({"waitForPickup": wait_for_pickup})
        duration = (
            DEFAULT_CALL_DURATION if call_duration is None else positive_number(call_duration)
        )
        if duration is None:
            raise bad_request(
                ErrorCode.PC_CALLDURATION_INVALID,
                "Invalid callDuration. It must be a number above 0.",
            )
        nonce = payload.get("nonce")
        name, number = split_caller_id(caller_id)
        self._seq += 1
        call = Call(
            id=self._new_call_id(),
            seq=self._seq,
            nonce=nonce if isinstance(nonce, str) and nonce else secrets.token_hex(16),
            uid=f"{int(time.time())}.{self._seq}",
            extension=ext.number,
            owner_user_id=ext.user_id,
            organization_id=org.id,
            organization_name=org.name,
            published=now(),
            caller_number=number,
            caller_name=name,
            auto=False,  # no queue model: only its own timers and requests change it
            talk_seconds=duration,
        )
        self.calls[call.id] = call
        self._ref(call.extension, call, 1)
        first = sources[0]
        phone = first if first in self.phones else None
        leg = self._add_view(
            call,
            View(
                id=call.new_view_id(),
                extension=ext.number,
                source=sources,
                destination=destinations,
                flow=Flow.LOCAL
                if destinations[0] in self.world.extensions
                else Flow.OUTGOING_PUBLIC,
                status=ViewStatus.RINGING,
                role="source",
                caller_id=caller_id,
                ringing=now(),
                device=phone,
            ),
        )
        if phone is not None:
            self._inbound_event(call, phone, CallEventType.DIAL_IN, "CALLING")
        delay = self._answer_delay(first)
        if delay is not None:
            self._later(
                delay, self._simple_source_answered, call.id, leg.id, wait, caller_destination
            )
        self._later(wait, self._simple_ring_over, call.id, call.phase)
        return call

    def _own_phone(self, account: Account, value: Any) -> str:
        number = self._number(value)
        full: str | None = None
        if number is not None and "*" in number:
            full = number
        elif number is not None and len(account.organization_ids) == 1:
            # A short number is only meaningful within one organization.
            full = self.world.resolve_number(number, next(iter(account.organization_ids)))
        ext = self.world.extensions.get(full) if full else None
        if ext is None or not ext.is_phone or ext.number not in account.extensions:
            raise bad_request(
                ErrorCode.PC_EXTENSION_INVALID,
                "Invalid extension. It must be a phone terminal extension of the user.",
            )
        return ext.number

    def _parties(self, value: Any, organization_id: str, *, source: bool) -> list[str]:
        """The numbers of a source or destination list: extended extension numbers (short
        ones resolved in the organization) or public numbers. A lone string counts as a list
        of one, as some of 4PSA's own clients send it."""
        code = ErrorCode.PC_SOURCE_INVALID if source else ErrorCode.PC_DESTINATION_INVALID
        what = "source" if source else "destination"
        items = [value] if isinstance(value, str | int) and not isinstance(value, bool) else value
        if not isinstance(items, list) or not items:
            raise bad_request(code, f"Invalid {what}. It must list at least one number.")
        numbers: list[str] = []
        for item in items:
            number = self._number(item)
            full = self.world.resolve_number(number, organization_id) if number else None
            ext = self.world.extensions.get(full) if full else None
            if ext is not None:
                # A source rings first, so it must be a phone of the organization; a
                # destination may be any extension.
                if source and (not ext.is_phone or ext.organization_id != organization_id):
                    ext = None
                else:
                    numbers.append(ext.number)
                    continue
            if ext is None and number is not None and PHONE_NUMBER_RE.match(number):
                numbers.append(number)
                continue
            raise bad_request(
                code,
                f"Invalid {what}. It must list extension numbers"
                + (" of phone terminals" if source else "")
                + " or public phone numbers.",
            )
        return numbers

    def _answer_delay(self, number: str) -> float | None:
        """Seconds until ``number`` answers: its phone's pickupDelay, about a second for a
        public number, at once for other extensions; None when its phone never answers."""
        phone = self.phones.get(number)
        if phone is not None:
            return phone.pickup_delay if phone.answers else None
        if number in self.world.extensions:
            return 0.0
        return PUBLIC_PICKUP_SECONDS

    def _simple_ring_over(self, call_id: str, phase: int) -> None:
        call = self.calls.get(call_id)
        if call is None or call.phase != phase or call.answered is not None:
            return
        for view in list(call.views.values()):
            if view.status == ViewStatus.RINGING:
                self._drop_view(call, view, "NOANSWER")
        self._end_call(call)

    def _simple_source_answered(
        self, call_id: str, view_id: str, wait: float, caller_destination: str
    ) -> None:
        found = self._ringing_view(call_id, view_id)
        if found is None:
            return
        call, leg = found
        moment = now()
        leg.status = ViewStatus.OTHER_SIDE_RINGING
        leg.answered = moment
        call.phase += 1  # the source's waitForPickup no longer applies
        call.changed()
        if leg.device is not None:
            self._inbound_event(call, leg.device, CallEventType.ANSWER_INCOMING)
        target = leg.destination[0]
        target_ext = self.world.extensions.get(target)
        self._simple_event(call, CallEventType.DIAL_OUT, "CALLING", caller_destination, target)
        if target_ext is not None and target_ext.is_phone:
            dest = self._add_view(
                call,
                View(
                    id=call.new_view_id(),
                    extension=target,
                    source=[call.extension],
                    destination=[target],
                    flow=Flow.LOCAL,
                    status=ViewStatus.RINGING,
                    role="destination",
                    caller_id=caller_destination,
                    ringing=moment,
                    device=target,
                ),
            )
            fields = self._fields(
                call,
                caller_id=caller_destination,
                caller_ext=call.extension,
                called_ext=target,
                called_number=target,
                status="CALLING",
                flow="IN",
            )
            self._send(target, CallEventType.DIAL_IN, fields)
            delay = self._answer_delay(target)
            if delay is not None:
                self._later(
                    delay,
                    self._simple_destination_answered,
                    call.id,
                    dest.id,
                    call.phase,
                    caller_destination,
                )
        else:
            self._later(
                self._answer_delay(target) or 0.0,
                self._simple_destination_answered,
                call.id,
                None,
                call.phase,
                caller_destination,
            )
        self._later(wait, self._simple_ring_over, call.id, call.phase)

    def _simple_destination_answered(
        self, call_id: str, view_id: str | None, phase: int, caller_destination: str
    ) -> None:
        call = self.calls.get(call_id)
        if call is None or call.phase != phase:
            return
        leg: View | None = None
        if view_id is not None:
            found = self._ringing_view(call_id, view_id)
            if found is None:
                return
            leg = found[1]
        moment = now()
        for view in call.views.values():
            if view is leg or view.role == "source":
                view.status = ViewStatus.ON_CALL
                view.answered = view.answered or moment
        call.answered = moment
        call.phase += 1
        call.changed()
        source = next((v for v in call.views.values() if v.role == "source"), None)
        if source is None:
            return
        target = leg.extension if leg is not None else source.destination[0]
        self._simple_event(
            call, CallEventType.ANSWER_OUTGOING, "ANSWER", caller_destination, target
        )
        if leg is not None:
            fields = self._fields(
                call,
                caller_id=caller_destination,
                caller_ext=call.extension,
                called_ext=leg.extension,
                called_number=leg.extension,
                status="ANSWER",
                flow="IN",
            )
            self._send(leg.extension, CallEventType.ANSWER_INCOMING, fields)
        self._later(call.talk_seconds, self._talk_over, call.id, call.phase)

    def _simple_event(
        self, call: Call, event_type: CallEventType, status: str, caller_id: str, target: str
    ) -> None:
        """A Dial-Out or Answer (outgoing) event of the charged extension calling ``target``."""
        if call.extension not in self.registrations:
            return
        fields = self._fields(
            call,
            caller_id=caller_id,
            caller_ext=call.extension,
            called_ext=target if target in self.world.extensions else None,
            called_number=target,
            status=status,
            flow="OUT",
        )
        self._send(call.extension, event_type, fields)

    # ------------------------------------------------------------------ agents and phones

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

    def set_phone(
        self, phone: str, *, pickup_delay: float | None = None, answers: bool | None = None
    ) -> Phone:
        state = self.phones.get(phone)
        if state is None:
            raise ControlError(404, f"{phone} is not a phone terminal")
        if pickup_delay is not None:
            state.pickup_delay = float(pickup_delay)
        if answers is not None:
            state.answers = bool(answers)
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

    # ------------------------------------------------------------------ PhoneCallActions

    def update_calls(
        self, context: Context, call_id: str | None, body: Any
    ) -> list[tuple[Call, str]]:
        """Validate and apply a PhoneCallAction; the calls changed with the extension to
        report for each. Validation order: phoneCallId, action, phoneCallViewId, sendCallTo,
        callerId, waitForPickup, then the action's own fields (private, maxInParking,
        format). Unknown in the docs: the order; this one follows the URI, then the payload
        as the spec's table lists it."""
        payload: dict[str, Any] = body if isinstance(body, dict) else {}
        call: Call | None = None
        if call_id is not None:
            call = self.calls.get(call_id) if OBJECT_ID_RE.match(call_id) else None
            if call is None or not self.involves(call, context):
                raise bad_request(
                    ErrorCode.PC_PHONECALL_INVALID,
                    "Invalid phoneCallId. It must be alphanumeric and reference an existing "
                    "phone call.",
                )
        try:
            action = Action(str(payload.get("action")))
        except ValueError:
            raise bad_request(ErrorCode.PC_ACTION_INVALID, "Invalid action.") from None
        if call is None:
            if action not in BULK_ACTIONS or context.extension is None:
                raise bad_request(
                    ErrorCode.PC_PHONECALL_INVALID, "This action needs a phoneCallId."
                )
            results = []
            for each in self.visible_calls(context):
                view = next(
                    (
                        v
                        for v in each.views.values()
                        if context.extension in (v.extension, v.device)
                    ),
                    None,
                )
                if view is not None:
                    bulk = dict(payload, phoneCallViewId=view.id)
                    results.append(self._apply(context, each, action, bulk))
            return results
        return [self._apply(context, call, action, payload)]

    def _apply(
        self, context: Context, call: Call, action: Action, payload: dict[str, Any]
    ) -> tuple[Call, str]:
        view = self._view_for(call, action, payload.get("phoneCallViewId"))
        uri_ext = context.extension or view.extension
        org_id = self.world.extensions[uri_ext].organization_id
        if action in RING_ACTIONS:
            send_to = self._phone_of_org(payload.get("sendCallTo"), org_id)
            caller_id = self._caller_id(payload.get("callerId"), send_to)
            wait = self._wait(payload)
            private = None
            if action is Action.WHISPER:
                private = self._private(payload.get("private"))
            self._ring(call, view, action, send_to, uri_ext, caller_id, wait, private)
        elif action is Action.ON_HOLD:
            view.on_hold, view.holder = view.on_hold or now(), 1
        elif action is Action.OFF_HOLD:
            view.on_hold = view.holder = None
        elif action is Action.PARK:
            seconds = payload.get("maxInParking")
            limit = DEFAULT_MAX_IN_PARKING if seconds is None else positive_number(seconds)
            if limit is None:
                raise bad_request(
                    ErrorCode.PC_MAXINPARKING_INVALID, "maxInParking must be a number above 0."
                )
            self._park(call, view, uri_ext, limit)
        elif action is Action.TRANSFER:
            self._transfer(call, view, payload.get("sendCallTo"), org_id, self._wait(payload))
        elif action is Action.TRANSFER_TO_VOICEMAIL:
            self._to_voicemail(call, view, payload.get("sendCallTo"), org_id)
        elif action in (Action.START_RECORDING, Action.STOP_RECORDING):
            fmt = payload.get("format")
            if fmt is not None and fmt not in RECORDING_FORMATS:
                raise bad_request(
                    ErrorCode.PC_FORMAT_INVALID,
                    "Invalid format. It must be one of " + ", ".join(RECORDING_FORMATS) + ".",
                )
            if action is Action.START_RECORDING:
                view.recording = view.recording or now()
            else:
                view.recording = None
        call.changed()
        return call, uri_ext

    def _view_for(self, call: Call, action: Action, view_id: Any) -> View:
        if isinstance(view_id, int) and not isinstance(view_id, bool):
            view_id = f"{view_id:02d}"
        view = call.views.get(view_id) if isinstance(view_id, str) else None
        if view_id is None and action is Action.PICK_UP:
            view = next((v for v in call.views.values() if v.status == ViewStatus.RINGING), None)
        elif view_id is None and action is Action.UNPARK:
            view = next((v for v in call.views.values() if v.parked), None)
        if view is not None and action is Action.PICK_UP and view.status != ViewStatus.RINGING:
            view = None
        if view is not None and action is Action.UNPARK and view.parked is None:
            view = None
        if view is None:
            raise bad_request(
                ErrorCode.PC_PHONECALLVIEW_INVALID,
                "Invalid phoneCallViewId. It must reference a view of the phone call.",
            )
        return view

    def _phone_of_org(self, value: Any, organization_id: str) -> str:
        number = self._number(value)
        full = self.world.resolve_number(number, organization_id) if number else None
        ext = self.world.extensions.get(full) if full else None
        if ext is None or not ext.is_phone or ext.organization_id != organization_id:
            raise bad_request(
                ErrorCode.PC_SENDCALLTO_INVALID,
                "Invalid sendCallTo. It must be the number of a phone terminal extension of "
                "the same organization.",
            )
        return ext.number

    @staticmethod
    def _number(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
        return None

    def _caller_id(self, value: Any, send_to: str) -> str:
        if value is None:
            return self.world.extensions[send_to].caller_id
        if not isinstance(value, str) or not valid_caller_id(value.strip()):
            raise bad_request(
                ErrorCode.PC_CALLERID_INVALID,
                "Invalid callerId. It must have the format: John Doe <+3334444>.",
            )
        return value.strip()

    @staticmethod
    def _wait(payload: dict[str, Any]) -> float:
        # The spec spells it waitForPickup; the PhoneCallAction table spells waitForPickUp.
        value = payload.get("waitForPickup", payload.get("waitForPickUp"))
        if value is None:
            return float(DEFAULT_WAIT_FOR_PICKUP)
        wait = positive_number(value)
        if wait is None:
            raise bad_request(
                ErrorCode.PC_TIMEOUT_INVALID, "Invalid waitForPickup. It must be a number above 0."
            )
        return wait

    @staticmethod
    def _private(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if value in (0, 1, "0", "1", "true", "false"):
            return value in (1, "1", "true")
        raise bad_request(ErrorCode.PC_PRIVATE_INVALID, "Invalid private. It must be a boolean.")

    def _ring(
        self,
        call: Call,
        target: View,
        action: Action,
        send_to: str,
        uri_ext: str,
        caller_id: str,
        wait: float,
        private: bool | None,
    ) -> View:
        """Ring ``send_to`` for ``action``: the new leg is answered after the phone's
        pickupDelay, or removed when ``wait`` runs out first."""
        if action is Action.PICK_UP:
            leg = View(
                id="",
                extension=send_to,
                source=[call.caller_number],
                destination=[send_to],
                flow=target.flow,
                status=ViewStatus.RINGING,
                role="pickup",
                caller_id=caller_id,
            )
        else:
            leg = View(
                id="",
                extension=uri_ext,
                source=[send_to],
                destination=[uri_ext],
                flow=Flow.LOCAL,
                status=ViewStatus.RINGING,
                role=action.value.lower(),
                caller_id=caller_id,
                private=private,
            )
        leg.id = call.new_view_id()
        leg.ringing = now()
        leg.device = send_to
        self.rings.append(
            {
                "at": iso(leg.ringing),
                "phoneCallId": call.id,
                "phoneCallViewId": leg.id,
                "targetViewId": target.id,
                "sendCallTo": send_to,
                "action": action.value,
                "callerId": caller_id,
                "waitForPickup": int(wait) if wait.is_integer() else wait,
                "outcome": "ringing",
            }
        )
        leg.ring_index = len(self.rings) - 1
        leg.target = target.id
        self._add_view(call, leg)
        self._outbound_event(call, leg, CallEventType.DIAL_OUT, "CALLING")
        phone = self.phones[send_to]
        if phone.answers:
            self._later(phone.pickup_delay, self._ring_pickup, call.id, leg.id)
        self._later(wait, self._ring_over, call.id, leg.id)
        return leg

    def _ring_pickup(self, call_id: str, view_id: str) -> None:
        found = self._ringing_view(call_id, view_id)
        if found is None:
            return
        call, leg = found
        target = call.views.get(leg.target or "")
        if leg.role == "pickup" and (target is None or target.status != ViewStatus.RINGING):
            # Someone else answered first: there is nothing left to pick up.
            self._drop_view(call, leg, "CANCEL")
            return
        leg.status = ViewStatus.ON_CALL
        leg.answered = now()
        if leg.ring_index is not None:
            self.rings[leg.ring_index]["outcome"] = "answered"
        call.changed()
        self._outbound_event(call, leg, CallEventType.ANSWER_OUTGOING)
        if leg.role == "pickup" and target is not None:
            self._drop_view(call, target, "CANCEL")
            self._connect_agent(call, leg)
        elif leg.role == "unpark":
            for view in call.views.values():
                view.parked = view.parked_pos = view.parked_by = None
        elif leg.role == "transfer":
            self._connect_agent(call, leg)

    def _ring_over(self, call_id: str, view_id: str) -> None:
        found = self._ringing_view(call_id, view_id)
        if found is not None:
            self._drop_view(found[0], found[1], "NOANSWER")

    def _park(self, call: Call, view: View, uri_ext: str, limit: float) -> None:
        taken = {
            v.parked_pos
            for c in self.calls.values()
            if c.organization_id == call.organization_id
            for v in c.views.values()
            if v.parked_pos is not None
        }
        if view.parked is None:
            view.parked = now()
            view.parked_pos = next(p for p in range(1, len(taken) + 2) if p not in taken)
            view.parked_by = uri_ext
            self._later(limit, self._park_over, call.id, view.id, view.parked)

    def _park_over(self, call_id: str, view_id: str, parked: datetime) -> None:
        # When maxInParking runs out the call goes back to the extension that parked it: in
        # this model it simply stops being parked.
        call = self.calls.get(call_id)
        view = call.views.get(view_id) if call else None
        if call is not None and view is not None and view.parked == parked:
            view.parked = view.parked_pos = view.parked_by = None
            call.changed()

    def _transfer(
        self, call: Call, target: View, value: Any, organization_id: str, wait: float
    ) -> None:
        number = self._number(value)
        full = self.world.resolve_number(number, organization_id) if number else None
        if full is None and (number is None or not PHONE_NUMBER_RE.match(number)):
            raise bad_request(
                ErrorCode.PC_SENDCALLTO_INVALID,
                "Invalid sendCallTo. It must be an extension number or a public phone number.",
            )
        assert number is not None
        # The answered internal legs leave; the caller stays and goes to the new party.
        for view in list(call.views.values()):
            if view.role == "agent":
                self._drop_view(call, view, "ANSWER" if view.answered else "CANCEL")
        call.offered_to = None
        call.phase += 1  # the old talk timer no longer applies
        ext = self.world.extensions.get(full) if full else None
        if ext is not None and ext.type is ExtensionType.QUEUE:
            call.queue = ext.number
            for view in call.views.values():
                if view.role == "caller":
                    view.destination = [ext.number]
                    view.status = ViewStatus.OTHER_SIDE_RINGING
            self.waiting[ext.number][call.id] = None
            call.auto = True
            self.dispatch(ext.number)
            return
        if ext is not None and ext.is_phone:
            caller_id = f"{call.caller_name} <{call.caller_number}>"
            leg = View(
                id=call.new_view_id(),
                extension=ext.number,
                source=[call.caller_number],
                destination=[ext.number],
                flow=target.flow,
                status=ViewStatus.RINGING,
                role="transfer",
                caller_id=caller_id,
                ringing=now(),
                device=ext.number,
            )
            self._add_view(call, leg)
            self._inbound_event(call, ext.number, CallEventType.DIAL_IN, "CALLING")
            phone = self.phones[ext.number]
            if phone.answers:
                self._later(phone.pickup_delay, self._ring_pickup, call.id, leg.id)
            self._later(wait, self._ring_over, call.id, leg.id)
            return
        # Another kind of extension (IVR, conference, ...) or a public number takes the call
        # at once.
        public = ext is None
        self._add_view(
            call,
            View(
                id=call.new_view_id(),
                extension=ext.number if ext else call.extension,
                source=[call.caller_number],
                destination=[number if public else ext.number],  # type: ignore[union-attr]
                flow=Flow.OUTGOING_PUBLIC if public else target.flow,
                status=ViewStatus.ON_CALL,
                role="agent",
                answered=now(),
            ),
        )
        if call.auto:
            self._later(call.talk_seconds, self._talk_over, call.id, call.phase)

    def _to_voicemail(self, call: Call, target: View, value: Any, organization_id: str) -> None:
        if value is not None:
            number = self._number(value)
            full = self.world.resolve_number(number, organization_id) if number else None
            ext = self.world.extensions.get(full) if full else None
            if ext is None or not ext.voicemail or ext.organization_id != organization_id:
                raise bad_request(
                    ErrorCode.PC_SENDCALLTO_INVALID,
                    "Invalid sendCallTo. It must be an extension of the organization with "
                    "voicemail.",
                )
            mailbox = ext.number
        else:
            owner = self.world.extensions.get(target.device or target.extension)
            if owner is None or not owner.voicemail:
                raise bad_request(
                    ErrorCode.PC_PHONECALLVIEW_INVALID,
                    "Invalid phoneCallViewId. Its extension has no voicemail.",
                )
            mailbox = owner.number
        for view in list(call.views.values()):
            if view.role != "caller":
                self._drop_view(call, view, "ANSWER" if view.answered else "CANCEL")
        call.offered_to = None
        call.phase += 1
        if call.queue is not None:
            self.waiting[call.queue].pop(call.id, None)
        moment = now()
        for view in call.views.values():
            view.destination = [mailbox]
            view.status = ViewStatus.ON_CALL
            view.answered = view.answered or moment
        call.answered = call.answered or moment
        self._later(VOICEMAIL_SECONDS, self._talk_over, call.id, call.phase)

    # ------------------------------------------------------------------ hang up (DELETE)

    def delete_calls(
        self, context: Context, call_id: str | None, phone_number: str | None
    ) -> list[str]:
        """Hang up calls (or one leg of them); the ids of the calls affected."""
        if call_id is not None:
            call = self.calls.get(call_id)
            calls = [call] if call is not None and self.involves(call, context) else []
        else:
            calls = self.visible_calls(context)
        if phone_number is None:
            for call in calls:
                self._end_call(call)
            return [c.id for c in calls]
        affected: list[str] = []
        for call in calls:
            legs = [
                v
                for v in call.views.values()
                if phone_number in (v.extension, v.device) or phone_number in v.source
            ]
            if not legs:
                continue
            affected.append(call.id)
            # The caller of a queue call or the source of a simple call leaving ends it.
            if any(
                v.role in ("caller", "source") or (v.role == "agent" and v.answered) for v in legs
            ):
                self._end_call(call)
                continue
            for view in legs:
                self._drop_view(call, view, "ANSWER" if view.answered else "CANCEL")
            self._dispatch_all(call.organization_id)
        if not affected and calls:
            raise bad_request(
                ErrorCode.PC_PHONENUMBER_INVALID, "Invalid phoneNumber. It is not in the call."
            )
        return affected

    # ------------------------------------------------------------------ Call Events

    def register_event(
        self, context: Context, spec: dict[str, Any], existing: Registration | None = None
    ) -> Registration:
        """Create or update a PhoneCallEvent. Validation order: type, method, url, status."""
        ext = context.extension
        assert ext is not None
        base = existing
        event_type = self._enum(spec, "type", CallEventType, base and base.type)
        if event_type is None:
            raise bad_request(ErrorCode.PCE_TYPE_INVALID, "Invalid type. It must be 0 to 4.")
        method = self._enum(spec, "method", CallEventMethod, base and base.method)
        if method is None:
            raise bad_request(
                ErrorCode.PCE_METHOD_INVALID, "Invalid method. It must be 0 (GET) or 1 (POST)."
            )
        url = spec.get("url", base.url if base else None)
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/?#]+[^\s]*$", url):
            raise bad_request(
                ErrorCode.PCE_URL_INVALID, "Invalid url. It must be an absolute http(s) URL."
            )
        status_value = spec.get("status", base.status if base else 1)
        status = status_value if status_value in (0, 1) else None
        if isinstance(status_value, str) and status_value in ("0", "1"):
            status = int(status_value)
        if status is None or isinstance(status_value, bool):
            raise bad_request(ErrorCode.PCE_STATUS_INVALID, "Invalid status. It must be 0 or 1.")
        note = spec.get("note", base.note if base else None)
        registration = Registration(
            id=base.id if base else secrets.token_hex(8),
            extension=ext,
            user_id=self.world.extensions[ext].user_id,
            type=event_type,
            method=method,
            url=url,
            status=status,
            note=None if note is None else str(note),
            modified=now(),
        )
        self.registrations.setdefault(ext, {})[registration.id] = registration
        return registration

    @staticmethod
    def _enum(spec: dict[str, Any], key: str, enum: Any, default: Any) -> Any:
        value = spec.get(key, default)
        if isinstance(value, bool) or value is None:
            return None
        try:
            return enum(int(value))
        except (TypeError, ValueError):
            return None

    def _send(self, ext: str, event_type: CallEventType, fields: dict[str, str]) -> None:
        for registration in self.registrations.get(ext, {}).values():
            if registration.status == 1 and registration.type == event_type:
                self.events.submit(registration, fields)

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
    ) -> dict[str, str]:
        name, number = split_caller_id(caller_id)
        called = self.world.extensions.get(called_ext) if called_ext else None
        return compact(
            {
                "CallID": call.uid,
                "CallerIDNum": number,
                "CallerIDName": name,
                "CalledDID": called.did if called else None,
                "CalledExtension": called_ext,
                # Omitted when the caller is a public number, as null fields are elsewhere.
                "CallerExtension": caller_ext,
                "CalledNumber": called_number,
                "CallStatus": status,
                "CallFlow": flow,
                # Unknown in the docs (description cut off): assumed to be the PhoneCall id.
                "CallAPIID": call.id,
            }
        )

    def _inbound_event(
        self, call: Call, ext: str, event_type: CallEventType, status: str = "ANSWER"
    ) -> None:
        if ext not in self.registrations:
            return
        called_number = call.queue if ext == call.queue and call.queue else ext
        if call.queue and ext == call.queue and self.world.extensions[call.queue].did:
            called_number = self.world.extensions[call.queue].did or called_number
        fields = self._fields(
            call,
            caller_id=f"{call.caller_name} <{call.caller_number}>",
            caller_ext=None,
            called_ext=ext,
            called_number=called_number,
            status=status,
            flow="IN",
        )
        self._send(ext, event_type, fields)

    def _outbound_event(
        self, call: Call, leg: View, event_type: CallEventType, status: str = "ANSWER"
    ) -> None:
        phone = leg.device
        if phone is None or phone not in self.registrations:
            return
        fields = self._fields(
            call,
            caller_id=leg.caller_id or self.world.extensions[phone].caller_id,
            caller_ext=phone,
            called_ext=leg.extension,
            called_number=leg.extension,
            status=status,
            flow="OUT",
        )
        self._send(phone, event_type, fields)

    def _hangup_event(self, call: Call, view: View, status: str) -> None:
        if view.role in ("barge", "whisper", "monitor", "unpark"):
            self._outbound_event(call, view, CallEventType.HANGUP, status)
        else:
            self._inbound_event(call, view.device or view.extension, CallEventType.HANGUP, status)

    # ------------------------------------------------------------------ traffic

    @property
    def traffic_running(self) -> bool:
        return any(not t.done() for t in self._traffic_tasks)

    async def start_traffic(self, speed: float | None = None) -> None:
        """Start Poisson arrivals in every queue (on the running loop). Idempotent."""
        if speed:
            self.speed = float(speed)
        if self.traffic_running:
            return
        loop = asyncio.get_running_loop()
        self._traffic_tasks = [
            loop.create_task(self._arrivals(q), name=f"traffic-{q.extension}")
            for q in self.world.queues.values()
            if q.arrivals_per_minute > 0
        ]

    async def stop_traffic(self) -> None:
        tasks, self._traffic_tasks = self._traffic_tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _arrivals(self, queue: Queue) -> None:
        rate = queue.arrivals_per_minute / 60.0
        limit = max(1, len(queue.agents) * 3)
        while True:
            rng = self._queue_rngs[queue.extension]
            gap = rng.expovariate(rate)
            await asyncio.sleep(gap / self.speed)
            rng = self._queue_rngs[queue.extension]  # a reset swaps the generator
            if len(self.waiting[queue.extension]) >= limit:
                continue  # a full queue: callers hear busy and never enter
            call = self.create_call(queue.extension, rng=rng)
            self.arrivals.append(
                {
                    "queue": queue.extension,
                    "phoneCallId": call.id,
                    "callerId": call.views["00"].caller_id,
                    "talkSeconds": round(call.talk_seconds, 3),
                    "patienceSeconds": round(call.patience_seconds, 3),
                }
            )

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
            "seed": self.seed,
            "speed": self.speed,
            "traffic": self.traffic_running,
            "calls": {"total": len(self.calls), "byOrganization": by_org},
            "queues": queues,
            "rings": len(self.rings),
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
