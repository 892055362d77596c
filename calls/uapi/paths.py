"""The UAPI's resource paths, one function each, so no URI is spelled twice.

Every user, extension and id segment is percent-encoded; extension numbers carry ``*`` and
user contexts ``@``, both legal in a path segment and kept as they are.
"""

from __future__ import annotations

from urllib.parse import quote


def _segment(value: str) -> str:
    return quote(value, safe="@*")


def phone_calls(user_id: str, extension: str) -> str:
    """List PhoneCalls of ``extension`` (or ``@self``) seen as ``user_id``."""
    return f"/uapi/phoneCalls/{_segment(user_id)}/{_segment(extension)}"


def phone_call(user_id: str, extension: str, call_id: str) -> str:
    """One PhoneCall: GET it, PUT a PhoneCallAction on it, DELETE it."""
    return f"{phone_calls(user_id, extension)}/{_segment(call_id)}"


def simple_calls(user_id: str) -> str:
    """Create Simple PhoneCalls for ``user_id``."""
    return f"/uapi/phoneCalls/{_segment(user_id)}/simple"


def call_events(user_id: str, extension: str) -> str:
    """The PhoneCallEvent registrations of an extension: list them, add one."""
    return f"/uapi/extensions/{_segment(user_id)}/{_segment(extension)}/phoneCallEvents"


def call_event(user_id: str, extension: str, type: int, event_id: str) -> str:
    """One PhoneCallEvent registration, addressed by its type and id."""
    return f"{call_events(user_id, extension)}/{type}/{_segment(event_id)}"


def cdr(owner_id: str | None = None) -> str:
    """List CDR: the call records the app's account may see, or those of ``owner_id`` (an
    account at or below it). The trailing slash is how 4PSA's own client writes it."""
    if owner_id is None:
        return "/uapi/cdr/"
    return f"/uapi/cdr/{_segment(owner_id)}/"


def queue_agents(user_id: str, queue: str) -> str:
    """The agents of a queue extension (never ``@self``): list them."""
    return f"/uapi/extensions/{_segment(user_id)}/{_segment(queue)}/queue/agents"


def presence(user_id: str, extension: str) -> str:
    """List Presence of an extension, or of every extension of the user with ``@self``."""
    return f"/uapi/extensions/{_segment(user_id)}/{_segment(extension)}/presence"
