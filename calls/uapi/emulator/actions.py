"""PhoneCallActions (Update PhoneCalls) and hanging up (Delete PhoneCalls): BargeIn and the
other rings, hold, park, transfer, voicemail and recording."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from calls.uapi.wire import Action, CallEventType, ErrorCode, ExtensionType, Flow, ViewStatus

from . import params
from .base import EmulatorBase
from .errors import bad_request
from .model import Call, View, iso, now
from .tokens import Context
from .world import Extension

OBJECT_ID_RE = re.compile(r"^[A-Za-z0-9]+$")
RECORDING_FORMATS = ("wav", "wav49", "gsm", "mp3")
# Unknown in the docs for 3.x: the default of maxInParking. The vendor's MCP client uses 180 s.
DEFAULT_MAX_IN_PARKING = 180.0
# A caller sent to voicemail leaves a message of about this long before hanging up.
VOICEMAIL_SECONDS = 30.0
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


class PhoneCallActions(EmulatorBase):
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
            action = None
        if action is None or action not in self.profile.actions:
            # Unknown in the docs: what 3.x answers for Monitor, an action it does not have.
            # Played as any action it does not know: pc_action_invalid, the code the PUT's
            # action check has (not 501: the request itself, Update PhoneCalls, exists).
            raise bad_request(ErrorCode.PC_ACTION_INVALID, "Invalid action.")
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
            caller_id = params.caller_id(
                payload.get("callerId"), self.world.extensions[send_to].caller_id
            )
            wait = params.wait_for_pickup(payload)
            private = None
            if action is Action.WHISPER:
                private = params.private_flag(payload.get("private"))
            self._ring(call, view, action, send_to, uri_ext, caller_id, wait, private)
        elif action is Action.ON_HOLD:
            view.on_hold, view.holder = view.on_hold or now(), 1
        elif action is Action.OFF_HOLD:
            view.on_hold = view.holder = None
        elif action is Action.PARK:
            seconds = payload.get("maxInParking")
            limit = DEFAULT_MAX_IN_PARKING if seconds is None else params.positive_number(seconds)
            if limit is None:
                raise bad_request(
                    ErrorCode.PC_MAXINPARKING_INVALID, "maxInParking must be a number above 0."
                )
            self._park(call, view, uri_ext, limit)
        elif action is Action.TRANSFER:
            self._transfer(
                call, view, payload.get("sendCallTo"), org_id, params.wait_for_pickup(payload)
            )
        elif action is Action.TRANSFER_TO_VOICEMAIL:
            self._to_voicemail(call, view, payload.get("sendCallTo"), org_id)
        elif action in (Action.START_RECORDING, Action.STOP_RECORDING):
            self._record(view, action, payload.get("format"))
        call.changed()
        return call, uri_ext

    def _record(self, view: View, action: Action, fmt: Any) -> None:
        if fmt is not None and fmt not in RECORDING_FORMATS:
            raise bad_request(
                ErrorCode.PC_FORMAT_INVALID,
                "Invalid format. It must be one of " + ", ".join(RECORDING_FORMATS) + ".",
            )
        if action is Action.START_RECORDING:
            view.recording = view.recording or now()
        else:
            view.recording = None

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

    def _extension_of_org(self, value: Any, organization_id: str) -> Extension | None:
        """The extension a ``sendCallTo`` names (full or short number) if it is one of the
        organization's."""
        number = params.number(value)
        full = self.world.resolve_number(number, organization_id) if number else None
        ext = self.world.extensions.get(full) if full else None
        return ext if ext is not None and ext.organization_id == organization_id else None

    def _phone_of_org(self, value: Any, organization_id: str) -> str:
        ext = self._extension_of_org(value, organization_id)
        if ext is None or not ext.is_phone:
            raise bad_request(
                ErrorCode.PC_SENDCALLTO_INVALID,
                "Invalid sendCallTo. It must be the number of a phone terminal extension of "
                "the same organization.",
            )
        return ext.number

    # ------------------------------------------------------------------ rings

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
            # The picker's phone rings with the caller's leg.
            leg = self._ring_leg(
                call,
                extension=send_to,
                source=[call.caller_number],
                destination=[send_to],
                flow=target.flow,
                role="pickup",
                caller_id=caller_id,
                device=send_to,
            )
        else:
            leg = self._ring_leg(
                call,
                extension=uri_ext,
                source=[send_to],
                destination=[uri_ext],
                flow=Flow.LOCAL,
                role=action.value.lower(),
                caller_id=caller_id,
                device=send_to,
                private=private,
            )
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
        self._outbound_event(call, leg, CallEventType.DIAL_OUT, "CALLING")
        self._await_pickup(call, leg, wait, self._ring_pickup, self._ring_over)
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

    # ------------------------------------------------------------------ park

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

    # ------------------------------------------------------------------ transfer and voicemail

    def _transfer(
        self, call: Call, target: View, value: Any, organization_id: str, wait: float
    ) -> None:
        number = params.number(value)
        full = self.world.resolve_number(number, organization_id) if number else None
        if full is None and (number is None or not params.PHONE_NUMBER_RE.match(number)):
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
            leg = self._ring_leg(
                call,
                extension=ext.number,
                source=[call.caller_number],
                destination=[ext.number],
                flow=target.flow,
                role="transfer",
                caller_id=f"{call.caller_name} <{call.caller_number}>",
                device=ext.number,
            )
            self._inbound_event(call, ext.number, CallEventType.DIAL_IN, "CALLING")
            self._await_pickup(call, leg, wait, self._ring_pickup, self._ring_over)
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
                destination=[number if ext is None else ext.number],
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
            ext = self._extension_of_org(value, organization_id)
            if ext is None or not ext.voicemail:
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
        """Hang up calls, or one party's part of them; the ids of the calls affected.

        Without ``phoneNumber``, the URI's extension decides: ``@self`` or the extension a call
        is charged to (its owner) ends the whole call; an extension that is only a party of
        the call (an agent, a supervisor's phone that barged in) ends its own legs, and the
        call goes on unless one of them was a side of the conversation itself. A call the
        extension has no leg of is not affected (204 when none is). Unknown in the docs: what
        a party's extension does; this is what "all calls owned by the extension" and 4PSA's
        "the number involved in the phone call and the Extension are closed" suggest."""
        if call_id is not None:
            call = self.calls.get(call_id)
            calls = [call] if call is not None and self.involves(call, context) else []
        else:
            calls = self.visible_calls(context)
        if phone_number is None:
            party = context.extension
            affected: list[str] = []
            for call in calls:
                if party is None or party == call.extension:
                    self._end_call(call)
                    affected.append(call.id)
                    continue
                legs = [v for v in call.views.values() if (v.device or v.extension) == party]
                if legs:
                    self._hang_up_legs(call, legs)
                    affected.append(call.id)
            return affected
        affected = []
        for call in calls:
            legs = [
                v
                for v in call.views.values()
                if phone_number in (v.extension, v.device) or phone_number in v.source
            ]
            if not legs:
                continue
            affected.append(call.id)
            self._hang_up_legs(call, legs)
        if not affected and calls:
            raise bad_request(
                ErrorCode.PC_PHONENUMBER_INVALID, "Invalid phoneNumber. It is not in the call."
            )
        return affected

    def _hang_up_legs(self, call: Call, legs: list[View]) -> None:
        """End these legs of ``call``. A side of the conversation leaving (the caller of a
        queue call, the source of a simple call, an agent or a destination that answered)
        ends the call; any other leg (a ringing agent, a supervisor's phone ringing or
        joined) leaves and the call goes on."""
        if any(
            v.role in ("caller", "source") or (v.role in ("agent", "destination") and v.answered)
            for v in legs
        ):
            self._end_call(call)
            return
        for view in legs:
            if view.role == "agent" and view.device == call.offered_to:
                call.offered_to = None  # offered to another agent below
            self._drop_view(call, view, "ANSWER" if view.answered else "CANCEL")
        self._dispatch_all(call.organization_id)
