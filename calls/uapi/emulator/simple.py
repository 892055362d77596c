"""Create Simple PhoneCalls: a call placed from a user's phone, ringing the source first and
then the destination, charged to the user's extension."""

from __future__ import annotations

import secrets
import time
from typing import Any

from calls.uapi.wire import CallEventType, ErrorCode, Flow, ViewStatus

from . import params
from .base import EmulatorBase
from .errors import bad_request
from .model import Call, View, now
from .tokens import Context
from .world import Account

# A public number called by Create Simple PhoneCalls answers after about this long.
PUBLIC_PICKUP_SECONDS = 1.0
# Unknown in the docs for 3.x: the default of callDuration (v5: "the global system value").
DEFAULT_CALL_DURATION = 3600.0


class SimpleCalls(EmulatorBase):
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
        source_caller_id = params.caller_id(spec.get("callerId"), ext.caller_id)
        caller_destination = params.caller_id(spec.get("callerDestination"), ext.caller_id)
        wait = params.wait_for_pickup({"waitForPickup": wait_for_pickup})
        duration = (
            DEFAULT_CALL_DURATION
            if call_duration is None
            else params.positive_number(call_duration)
        )
        if duration is None:
            raise bad_request(
                ErrorCode.PC_CALLDURATION_INVALID,
                "Invalid callDuration. It must be a number above 0.",
            )
        nonce = payload.get("nonce")
        name, caller_number = params.split_caller_id(source_caller_id)
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
            caller_number=caller_number,
            caller_name=name,
            auto=False,  # no queue model: only its own timers and requests change it
            talk_seconds=duration,
            via_api=True,
        )
        self.calls[call.id] = call
        self._ref(call.extension, call, 1)
        first = sources[0]
        phone = first if first in self.phones else None
        leg = self._ring_leg(
            call,
            extension=ext.number,
            source=sources,
            destination=destinations,
            flow=Flow.LOCAL if destinations[0] in self.world.extensions else Flow.OUTGOING_PUBLIC,
            role="source",
            caller_id=source_caller_id,
            device=phone,
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
        given = params.number(value)
        full: str | None = None
        if given is not None and "*" in given:
            full = given
        elif given is not None and len(account.organization_ids) == 1:
            # A short number is only meaningful within one organization.
            full = self.world.resolve_number(given, next(iter(account.organization_ids)))
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
            given = params.number(item)
            full = self.world.resolve_number(given, organization_id) if given else None
            ext = self.world.extensions.get(full) if full else None
            if ext is not None:
                # A source rings first, so it must be a phone of the organization; a
                # destination may be any extension.
                if source and (not ext.is_phone or ext.organization_id != organization_id):
                    ext = None
                else:
                    numbers.append(ext.number)
                    continue
            if ext is None and given is not None and params.PHONE_NUMBER_RE.match(given):
                numbers.append(given)
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
            dest = self._ring_leg(
                call,
                extension=target,
                source=[call.extension],
                destination=[target],
                flow=Flow.LOCAL,
                role="destination",
                caller_id=caller_destination,
                device=target,
                ringing=moment,
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
