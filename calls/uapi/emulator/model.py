"""Live calls: the PhoneCall and PhoneCallView of the UAPI, and their JSON.

A call keeps its serialized dict and JSON bytes until it changes, so listing thousands of
calls costs a join of cached bytes, not thousands of dict builds and encodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PHONE_CALL_FIELDS = frozenset(
    {
        "id",
        "nonce",
        "extension",
        "ownerId",
        "ownerName",
        "published",
        "answered",
        "phoneCallView",
        "links",
    }
)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with offset, seconds precision, as the docs' examples write dates."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def now() -> datetime:
    return datetime.now(UTC)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def compact(pairs: dict[str, Any]) -> dict[str, Any]:
    """Drop None values: the UAPI omits null fields instead of sending null."""
    return {k: v for k, v in pairs.items() if v is not None}


@dataclass(eq=False)
class View:
    """One party's PhoneCallView; ``role`` and the private fields are the emulator's own."""

    id: str
    extension: str
    source: list[str]
    destination: list[str]
    flow: int
    status: int
    role: str  # caller, agent, barge, whisper, monitor, pickup, unpark, transfer
    caller_id: str | None = None
    ringing: datetime | None = None
    answered: datetime | None = None
    recording: datetime | None = None
    on_hold: datetime | None = None
    holder: int | None = None
    parked: datetime | None = None
    parked_pos: int | None = None
    parked_by: str | None = None
    private: bool | None = None  # Whisper: the whisperer does not hear the conversation
    device: str | None = None  # the phone terminal this leg rings or occupies, if any
    ring_index: int | None = None  # position in the ring log, for rings placed by requests
    target: str | None = None  # the view a ringing pickup leg means to take over

    def to_json(self) -> dict[str, Any]:
        return compact(
            {
                "id": self.id,
                "extension": self.extension,
                "source": list(self.source),
                "destination": list(self.destination),
                "flow": self.flow,
                "status": self.status,
                "ringing": iso(self.ringing),
                "answered": iso(self.answered),
                "callerId": self.caller_id,
                "recording": iso(self.recording),
                "onHold": iso(self.on_hold),
                "holder": self.holder,
                "parked": iso(self.parked),
                "parkedPos": self.parked_pos,
                "parkedBy": self.parked_by,
            }
        )


@dataclass(eq=False)
class Call:
    """A PhoneCall while it is in the system. ``seq`` orders calls by publication."""

    id: str
    seq: int
    nonce: str
    uid: str  # the CallID of Call Events (the PBX channel id)
    extension: str  # charged extension: the queue for inbound queue calls
    owner_user_id: str  # user owning ``extension``, for links.self
    organization_id: str
    organization_name: str
    published: datetime
    caller_number: str
    caller_name: str
    queue: str | None = None
    answered: datetime | None = None
    views: dict[str, View] = field(default_factory=dict)
    next_view: int = 0
    auto: bool = True  # follows the queue model on its own (else only changes on request)
    talk_seconds: float = 60.0
    patience_seconds: float = 60.0
    offered_to: str | None = None  # agent whose phone is ringing with this waiting call
    phase: int = 0  # bumped when the call is answered anew, so a stale talk timer does nothing
    ended: bool = False
    # Made through Create Simple PhoneCalls: its Call Events carry its id as CallAPIID on
    # every VoipNow version.
    via_api: bool = False
    # The legs that have left the call, as its record (CDR) lists them (``cdr``).
    ended_legs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _dicts: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _bytes: dict[str, bytes] = field(default_factory=dict, repr=False)

    def changed(self) -> None:
        self._dicts.clear()
        self._bytes.clear()

    def new_view_id(self) -> str:
        view_id = f"{self.next_view:02d}"
        self.next_view += 1
        return view_id

    def extensions(self) -> set[str]:
        found = {self.extension}
        found.update(v.extension for v in self.views.values())
        return found

    def self_path(self) -> str:
        return f"/uapi/phoneCalls/{self.owner_user_id}/{self.extension}/{self.id}"

    def to_json(self, base_url: str) -> dict[str, Any]:
        cached = self._dicts.get(base_url)
        if cached is None:
            cached = self._dicts[base_url] = compact(
                {
                    "id": self.id,
                    "nonce": self.nonce,
                    "extension": self.extension,
                    "ownerId": self.organization_id,
                    "ownerName": self.organization_name,
                    "published": iso(self.published),
                    "answered": iso(self.answered),
                    "phoneCallView": [v.to_json() for v in self.views.values()],
                    "links": {"self": base_url + self.self_path()},
                }
            )
        return cached

    def to_bytes(self, base_url: str) -> bytes:
        cached = self._bytes.get(base_url)
        if cached is None:
            cached = self._bytes[base_url] = dumps(self.to_json(base_url))
        return cached
