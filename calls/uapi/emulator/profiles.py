"""What differs between VoipNow 3.x and 5.x, as the emulator plays each (``--voipnow 3|5``).

Callboard must work with the servers customers run, not only with the newest. Each field of
``Profile`` is one documented difference (the README's "Versions" lists the sources): which
Call Event types the PhoneCallEvents service accepts, which PhoneCallActions exist, whether
collections come wrapped in an array, how the lookup of a call that has ended is answered,
whether ``CallAPIID`` is set for calls not made through the API, how ``count`` is limited,
and whether List CDR exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from calls.uapi.wire import Action, CallEventType


class EndedCall(StrEnum):
    """How ``GET /uapi/phoneCalls/{user}/{ext}/{id}`` answers for a call no longer live."""

    INVALID = "invalid"  # 400 pc_phonecall_invalid (3.x)
    EMPTY = "empty"  # 200, totalResults 0 and no entry (5.x)
    NO_CONTENT = "noContent"  # 204, which either version may answer too


@dataclass(frozen=True)
class Profile:
    voipnow: int
    event_types: frozenset[CallEventType]
    actions: frozenset[Action]
    # 5.x: every collection is ``[{"entry": [...], ...}]`` (the v5 QueueAgents example);
    # 3.x: the object itself.
    wraps_collections: bool
    ended_call: EndedCall
    # CallAPIID for calls not made through Create Simple PhoneCalls: the PhoneCall id (5.x, as
    # this emulator plays it) or empty (3.x, an ordinary inbound queue call).
    call_api_id_always: bool
    max_count: int
    # 3.x documents a maximum of 5000 and is played as clamping a larger count to it; 5.x
    # refuses a count outside 1..max_count with count_invalid.
    clamps_count: bool
    # List CDR (``/uapi/cdr/``): seen only in v5 pages (its error codes) and 4PSA's MCP
    # server (5.6+); the 3.x docs have no CDR service, so 3.x answers 501.
    has_cdr: bool


ALL_EVENT_TYPES = frozenset(CallEventType)
# The 3.x Create/Update PhoneCallEvents pages: "must be 0 DialIn, 1 DialOut, 2 Hangup".
V3_EVENT_TYPES = frozenset({CallEventType.DIAL_IN, CallEventType.DIAL_OUT, CallEventType.HANGUP})

PROFILES: dict[int, Profile] = {
    3: Profile(
        voipnow=3,
        event_types=V3_EVENT_TYPES,
        # Monitor is not among the 3.x PhoneCallActions; 4PSA's MCP server (5.6+) has it.
        actions=frozenset(Action) - {Action.MONITOR},
        wraps_collections=False,
        ended_call=EndedCall.INVALID,
        call_api_id_always=False,
        max_count=5000,
        clamps_count=True,
        has_cdr=False,
    ),
    5: Profile(
        voipnow=5,
        event_types=ALL_EVENT_TYPES,
        actions=frozenset(Action),
        wraps_collections=True,
        ended_call=EndedCall.EMPTY,
        call_api_id_always=True,
        # 4PSA's own client (mcp-voipnow calls/src/utils.ts) caps count at 4999.
        max_count=4999,
        clamps_count=False,
        has_cdr=True,
    ),
}
VERSIONS = tuple(sorted(PROFILES))
DEFAULT_VOIPNOW = 5


def profile_for(voipnow: int) -> Profile:
    """The profile of VoipNow major version ``voipnow``; raises ValueError for another."""
    try:
        return PROFILES[voipnow]
    except KeyError:
        versions = " or ".join(str(v) for v in VERSIONS)
        raise ValueError(f"voipnow must be {versions}, not {voipnow!r}") from None
