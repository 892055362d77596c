"""Typed views of the UAPI's JSON: what the client returns and sends.

Parsing is lenient where VoipNow itself is inconsistent (numbers sent as strings, ``callerID``
spelled two ways, ``link`` vs ``links``) and strict where a wrong value would mislead a
supervisor (a call without an id, a view without a status is not a call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .wire import Action, Disposition, PresenceStatus


class WireFormatError(ValueError):
    """The JSON did not have the shape of the resource it should be."""


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return str(value)


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise WireFormatError(f"{key} is not a number: {value!r}") from exc


def _opt_date(data: dict[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        # Python 3.11 parses "Z" and offsets.
        return datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise WireFormatError(f"{key} is not a date: {value!r}") from exc


def _str_list(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str | int):
        # Some VoipNow clients and servers send a lone number instead of a list.
        return (str(value),)
    if not isinstance(value, list):
        raise WireFormatError(f"{key} is not a list: {value!r}")
    return tuple(str(v) for v in value)


def _required(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise WireFormatError(f"missing {key}")
    return str(value)


@dataclass(frozen=True, slots=True)
class PhoneCallView:
    """One party's view of a call."""

    id: str
    extension: str
    status: int
    source: tuple[str, ...] = ()
    destination: tuple[str, ...] = ()
    flow: int | None = None
    caller_id: str | None = None
    ringing: datetime | None = None
    answered: datetime | None = None
    recording: datetime | None = None
    on_hold: datetime | None = None
    parked: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> PhoneCallView:
        if not isinstance(data, dict):
            raise WireFormatError("a phoneCallView is not an object")
        status = _opt_int(data, "status")
        return cls(
            id=_required(data, "id"),
            extension=_opt_str(data, "extension") or "",
            status=0 if status is None else status,
            source=_str_list(data, "source"),
            destination=_str_list(data, "destination"),
            flow=_opt_int(data, "flow"),
            # The resource page spells it callerID, every payload callerId.
            caller_id=_opt_str(data, "callerId") or _opt_str(data, "callerID"),
            ringing=_opt_date(data, "ringing"),
            answered=_opt_date(data, "answered"),
            recording=_opt_date(data, "recording"),
            on_hold=_opt_date(data, "onHold"),
            parked=_opt_date(data, "parked"),
        )


@dataclass(frozen=True, slots=True)
class PhoneCall:
    """A live call as List PhoneCalls returns it."""

    id: str
    extension: str
    owner_id: str
    owner_name: str = ""
    published: datetime | None = None
    answered: datetime | None = None
    views: tuple[PhoneCallView, ...] = ()
    self_link: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> PhoneCall:
        if not isinstance(data, dict):
            raise WireFormatError("a PhoneCall is not an object")
        views = data.get("phoneCallView") or []
        if not isinstance(views, list):
            raise WireFormatError("phoneCallView is not a list")
        links = data.get("links") or data.get("link") or {}
        return cls(
            id=_required(data, "id"),
            extension=_opt_str(data, "extension") or "",
            owner_id=_opt_str(data, "ownerId") or "",
            owner_name=_opt_str(data, "ownerName") or "",
            published=_opt_date(data, "published"),
            answered=_opt_date(data, "answered"),
            views=tuple(PhoneCallView.from_json(v) for v in views),
            self_link=links.get("self") if isinstance(links, dict) else None,
        )

    def view(self, view_id: str) -> PhoneCallView | None:
        return next((v for v in self.views if v.id == view_id), None)


@dataclass(frozen=True, slots=True)
class UpdatedCall:
    """What VoipNow answers to an accepted PhoneCallAction: the call's id and extension."""

    id: str
    extension: str
    self_link: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> UpdatedCall:
        if isinstance(data, list) and data:
            data = data[0]
        if isinstance(data, dict) and "entry" in data and isinstance(data["entry"], list):
            data = data["entry"][0] if data["entry"] else {}
        if not isinstance(data, dict):
            raise WireFormatError("the updated PhoneCall is not an object")
        links = data.get("link") or data.get("links") or {}
        return cls(
            id=_required(data, "id"),
            extension=_opt_str(data, "extension") or "",
            self_link=links.get("self") if isinstance(links, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class PhoneCallAction:
    """The PUT payload. Optional fields left ``None`` are not sent, so VoipNow's defaults
    apply (callerId of the phone terminal, 25 s to pick up)."""

    action: Action
    phone_call_view_id: str
    send_call_to: str | None = None
    caller_id: str | None = None
    # Seconds; a string is sent as is (the spec's example sends "20").
    wait_for_pickup: int | str | None = None
    private: bool | None = None
    format: str | None = None
    max_in_parking: int | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "action": str(self.action),
            "phoneCallViewId": self.phone_call_view_id,
        }
        if self.send_call_to is not None:
            body["sendCallTo"] = self.send_call_to
        if self.caller_id is not None:
            body["callerId"] = self.caller_id
        if self.wait_for_pickup is not None:
            # The spec's example sends it as a string ("20").
            body["waitForPickup"] = str(self.wait_for_pickup)
        if self.private is not None:
            # A number, 0 or 1: the Whisper example sends "private":0, 4PSA's client "0"/"1".
            body["private"] = 1 if self.private else 0
        if self.format is not None:
            body["format"] = self.format
        if self.max_in_parking is not None:
            body["maxInParking"] = str(self.max_in_parking)
        return body


@dataclass(frozen=True, slots=True)
class CallPage:
    """One page of List PhoneCalls."""

    calls: tuple[PhoneCall, ...]
    total: int | None = None
    next_url: str | None = None


@dataclass(frozen=True, slots=True)
class CallEventSubscription:
    """A PhoneCallEvent registration on an extension."""

    id: str
    type: int
    url: str
    method: int
    status: int
    note: str = ""

    @classmethod
    def from_json(cls, data: Any) -> CallEventSubscription:
        if not isinstance(data, dict):
            raise WireFormatError("a PhoneCallEvent is not an object")
        return cls(
            id=_required(data, "id"),
            type=_opt_int(data, "type") or 0,
            url=_opt_str(data, "url") or "",
            method=_opt_int(data, "method") or 0,
            status=1 if _opt_int(data, "status") is None else int(data["status"]),
            note=_opt_str(data, "note") or "",
        )


def _first_view(views: tuple[dict[str, Any], ...], key: str) -> Any:
    return next((v[key] for v in views if v.get(key) not in (None, "", [])), None)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One ended call as List CDR returns it (``GET /uapi/cdr/``).

    What a record holds is not documented; this reads both the summary the emulator puts on
    the record (``source``, ``destination``, ``answered``, ``ended``, ``duration``,
    ``billsec``, ``disposition``, ``flow``) and, where those are missing, the legs
    (``phoneCallView``) that clients of real servers read them from. ``id`` and
    ``published`` are required; everything else may be missing.
    """

    id: str
    published: datetime
    # The call's UAPI PhoneCall id (the CallAPIID of its Call Events): ``phoneCallId`` when
    # the server sends one, else the record's own id, which is that id on the servers seen.
    phone_call_id: str
    extension: str = ""  # the charged extension: the queue of a queue call
    owner_id: str = ""
    source: tuple[str, ...] = ()
    # Who the call reached: for an answered queue call the agent's extension.
    destination: tuple[str, ...] = ()
    answered: datetime | None = None
    ended: datetime | None = None
    duration: int | None = None  # seconds from start to end
    billsec: int | None = None  # seconds from answer to end
    disposition: int | None = None  # wire.Disposition: 0 answered ... 3 no answer
    flow: int | None = None  # wire.Flow: 2 local, 4 outgoing public, 8 incoming public

    @property
    def was_answered(self) -> bool:
        """True when the record says the call was answered."""
        if self.disposition is not None:
            return self.disposition == Disposition.ANSWERED
        return self.answered is not None

    @classmethod
    def from_json(cls, data: Any) -> CallRecord:
        """Read one record; raises WireFormatError when it is not an object, lacks ``id``
        or ``published``, or has a field of the wrong type."""
        if not isinstance(data, dict):
            raise WireFormatError("a call record is not an object")
        raw_views = data.get("phoneCallView") or []
        if not isinstance(raw_views, list):
            raise WireFormatError("phoneCallView is not a list")
        views = tuple(v for v in raw_views if isinstance(v, dict))
        published = _opt_date(data, "published") or _opt_date(data, "startDate")
        if published is None:
            raise WireFormatError("missing published")
        record_id = _required(data, "id")
        merged = dict(data)
        for key in ("source", "destination", "flow", "duration", "answered"):
            if merged.get(key) in (None, "", []):
                merged[key] = _first_view(views, key)
        disposition = _opt_int(data, "disposition")
        if disposition is None and views:
            # A record without its own disposition: answered if any leg was (an agent's
            # leg may follow legs that rang out), else what its first leg says.
            legs = [_opt_int(v, "disposition") for v in views]
            known = [d for d in legs if d is not None]
            if Disposition.ANSWERED in known:
                disposition = int(Disposition.ANSWERED)
            elif known:
                disposition = known[0]
        return cls(
            id=record_id,
            published=published,
            phone_call_id=_opt_str(data, "phoneCallId") or record_id,
            extension=_opt_str(data, "extension") or "",
            owner_id=_opt_str(data, "ownerId") or "",
            source=_str_list(merged, "source"),
            destination=_str_list(merged, "destination"),
            answered=_opt_date(merged, "answered"),
            ended=_opt_date(data, "ended") or _opt_date(data, "endDate"),
            duration=_opt_int(merged, "duration"),
            billsec=_opt_int(data, "billsec"),
            disposition=disposition,
            flow=_opt_int(merged, "flow"),
        )


@dataclass(frozen=True, slots=True)
class QueueAgent:
    """An agent of a queue as QueueAgents lists it: ``agent_number`` is an extension number
    (a local agent, full or short) or a public number (a remote agent); ``status`` 0 logged
    out, 1 online, 2 paused (``wire.AgentStatus``)."""

    agent_number: str
    status: int

    @classmethod
    def from_json(cls, data: Any) -> QueueAgent:
        if not isinstance(data, dict):
            raise WireFormatError("a queue agent is not an object")
        status = _opt_int(data, "status")
        if status is None:
            # An agent whose status is unknown is not one to count as online or logged out.
            raise WireFormatError("missing status")
        return cls(agent_number=_required(data, "agentNumber"), status=status)


# PhoneRegistration.registration values that mean the phone can take calls: 1 registered,
# 2 no registration necessary (-1 not registered, -2 registration expired, 0 unknown).
_REGISTERED = frozenset({1, 2})
_NOT_REGISTERED = frozenset({-1, -2})  # not registered, registration expired


@dataclass(frozen=True, slots=True)
class Presence:
    """An extension's presence: ``status`` 0 unknown, 1 online, 2 ringing, 3 busy
    (``wire.PresenceStatus``); ``registered`` when any of its registrations is registered or
    needs none (a phone without any registration is not registered); ``unregistered`` when
    VoipNow says so outright: it lists registrations and each is not registered (-1) or
    expired (-2). An empty list or an unknown (0) one is neither."""

    extension: str
    status: int
    registered: bool
    unregistered: bool = False

    @property
    def online(self) -> bool:
        return self.status == PresenceStatus.ONLINE

    @property
    def on_a_call(self) -> bool:
        """Ringing or busy."""
        return self.status in (PresenceStatus.RINGING, PresenceStatus.BUSY)

    @classmethod
    def from_json(cls, data: Any) -> Presence:
        if not isinstance(data, dict):
            raise WireFormatError("a presence is not an object")
        registrations = data.get("registration") or []
        if isinstance(registrations, dict):
            registrations = [registrations]  # one registration, not wrapped in a list
        if not isinstance(registrations, list):
            raise WireFormatError(f"registration is not a list: {registrations!r}")
        states = {_opt_int(r, "registration") for r in registrations if isinstance(r, dict)}
        return cls(
            extension=_required(data, "extension"),
            status=_opt_int(data, "status") or 0,
            registered=any(state in _REGISTERED for state in states),
            unregistered=bool(states) and states <= _NOT_REGISTERED,
        )
