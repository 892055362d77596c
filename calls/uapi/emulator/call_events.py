"""Call Events: PhoneCallEvents registrations and the fields each leg's events carry.

Delivery itself (the bounded queue and its workers) is ``events.EventSender``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any

from calls.uapi.wire import CallEventMethod, CallEventType, ErrorCode, ExtensionType

from .base import EmulatorBase
from .errors import PCET_TYPE_INVALID, bad_request
from .events import Registration
from .model import Call, View, compact, now
from .params import enum_field, split_caller_id
from .tokens import Context

EVENT_EXTENSION_TYPES = frozenset(
    {
        ExtensionType.PHONE_TERMINAL,
        ExtensionType.QUEUE,
        ExtensionType.CONFERENCE,
        ExtensionType.IVR,
    }
)

EVENT_TYPE_NAMES = {
    CallEventType.DIAL_IN: "Dial-In",
    CallEventType.DIAL_OUT: "Dial-Out",
    CallEventType.HANGUP: "Hangup",
    CallEventType.ANSWER_INCOMING: "Answer incoming call",
    CallEventType.ANSWER_OUTGOING: "Answer outgoing call",
}


class CallEvents(EmulatorBase):
    def register_event(
        self, context: Context, spec: dict[str, Any], existing: Registration | None = None
    ) -> Registration:
        """Create or update a PhoneCallEvent. Validation order: type, method, url, status.

        A type the VoipNow version does not have (3.x: only 0, 1 and 2) is refused like an
        unknown one: ``pcet_type_invalid`` on Create, ``pce_type_invalid`` on Update, the
        codes of the 3.x Create and Update PhoneCallEvents pages."""
        ext = context.extension
        assert ext is not None
        base = existing
        event_type = enum_field(spec, "type", CallEventType, base.type if base else None)
        if event_type is None or event_type not in self.profile.event_types:
            raise bad_request(
                PCET_TYPE_INVALID if base is None else ErrorCode.PCE_TYPE_INVALID,
                self.event_type_message(),
            )
        method = enum_field(spec, "method", CallEventMethod, base.method if base else None)
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

    def event_type_message(self) -> str:
        """The message refusing a Call Event type this version does not have."""
        allowed = [f"{int(t)} ({EVENT_TYPE_NAMES[t]})" for t in sorted(self.profile.event_types)]
        return f"Invalid type. It must be {', '.join(allowed[:-1])} or {allowed[-1]}."

    def registrations_of(
        self, ext: str, event_type: CallEventType | None = None, event_id: str | None = None
    ) -> list[Registration]:
        """The PhoneCallEvents of ``ext``, of ``event_type`` and with ``event_id`` when given,
        in the order they were registered."""
        return [
            r
            for r in self.registrations.get(ext, {}).values()
            if (event_type is None or r.type == event_type) and (event_id in (None, r.id))
        ]

    def unregister_events(self, registrations: Iterable[Registration]) -> None:
        """Delete PhoneCallEvents; their extension gets no more of those events."""
        for registration in registrations:
            mine = self.registrations.get(registration.extension, {})
            mine.pop(registration.id, None)

    def _send(self, ext: str, event_type: CallEventType, fields: dict[str, str]) -> None:
        if event_type not in self.profile.event_types:
            # Kept from before a switch to an older version, which has no such event.
            return
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
                # The PhoneCall id of a call made through the API (4PSA's app-securemyform
                # reads it after Create Simple PhoneCalls); empty for other calls on 3.x.
                # 5.x is played setting it for every call, so a client meets both cases.
                "CallAPIID": call.id if call.via_api or self.profile.call_api_id_always else "",
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
