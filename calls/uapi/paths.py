"""The UAPI's resource paths, one function each, so no URI is spelled twice.

Every user, extension and id segment is checked against the form VoipNow documents for it
and percent-encoded; extension numbers carry ``*`` and user contexts ``@``, both legal in a
path segment and kept as they are. A segment of another form (``.``, ``..``, empty, a slash,
an id of a thousand characters) raises UapiInvalidId before anything is sent: a dot segment
would be resolved away by the HTTP client (``/uapi/phoneCalls/@me/@self/..`` is a request for
``/uapi/phoneCalls/@me``), and an empty one names another resource.

The forms, no stricter than VoipNow documents them (facts.md, sections 1 and 5):

- a user: ``@me``, ``@viewer``, ``@owner`` or a numeric User-Id;
- an extension: ``UAPI-Extension-Number = *( DIGIT / "*" ) / "@self"`` (``0003*210``, the
  short ``210``), not empty;
- a PhoneCall id (Object-Id): letters and digits (``7d280cc4feae3255a497``);
- a PhoneCallEvent id: letters and digits, 1 to 255 characters.

VoipNow documents no length for an Object-Id, a User-Id or an extension number; 255 (the one
length it documents for an id, the PhoneCallEvent's) bounds ids, and 64 extension numbers,
whose extended form is eight characters.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .errors import UapiInvalidId
from .wire import EXTENSION_SELF, USER_ME, USER_OWNER, USER_VIEWER, ErrorCode

_USER_CONTEXTS = frozenset({USER_ME, USER_VIEWER, USER_OWNER})
_USER_ID_RE = re.compile(r"[0-9]{1,255}")
_EXTENSION_RE = re.compile(r"[0-9*]{1,64}")
_OBJECT_ID_RE = re.compile(r"[A-Za-z0-9]{1,255}")


def is_user_id(value: object) -> bool:
    """A user segment: ``@me``, ``@viewer``, ``@owner`` or a numeric User-Id."""
    return isinstance(value, str) and (
        value in _USER_CONTEXTS or _USER_ID_RE.fullmatch(value) is not None
    )


def is_extension(value: object) -> bool:
    """An extension segment: digits and ``*`` (``0001*100``, ``100``), or ``@self``."""
    return isinstance(value, str) and (
        value == EXTENSION_SELF or _EXTENSION_RE.fullmatch(value) is not None
    )


def is_call_id(value: object) -> bool:
    """A PhoneCall id (Object-Id): 1 to 255 letters and digits."""
    return isinstance(value, str) and _OBJECT_ID_RE.fullmatch(value) is not None


def _user(value: str) -> str:
    if not is_user_id(value):
        raise UapiInvalidId(segment="userId", value=value, code=ErrorCode.USER_INVALID)
    return quote(value, safe="@")


def _extension(value: str, segment: str = "extension") -> str:
    if not is_extension(value):
        raise UapiInvalidId(segment=segment, value=value, code=ErrorCode.EXTENSION_INVALID)
    return quote(value, safe="@*")


def _object_id(value: str, segment: str, code: str) -> str:
    if not is_call_id(value):
        raise UapiInvalidId(segment=segment, value=value, code=code)
    return quote(value, safe="")


def phone_calls(user_id: str, extension: str) -> str:
    """List PhoneCalls of ``extension`` (or ``@self``) seen as ``user_id``.
    Raises UapiInvalidId for a segment not of its documented form."""
    return f"/uapi/phoneCalls/{_user(user_id)}/{_extension(extension)}"


def phone_call(user_id: str, extension: str, call_id: str) -> str:
    """One PhoneCall: GET it, PUT a PhoneCallAction on it, DELETE it.
    Raises UapiInvalidId for a segment not of its documented form."""
    call = _object_id(call_id, "phoneCallId", ErrorCode.PC_PHONECALL_INVALID)
    return f"{phone_calls(user_id, extension)}/{call}"


def simple_calls(user_id: str) -> str:
    """Create Simple PhoneCalls for ``user_id``. Raises UapiInvalidId for a malformed user."""
    return f"/uapi/phoneCalls/{_user(user_id)}/simple"


def call_events(user_id: str, extension: str) -> str:
    """The PhoneCallEvent registrations of an extension: list them, add one.
    Raises UapiInvalidId for a segment not of its documented form."""
    return f"/uapi/extensions/{_user(user_id)}/{_extension(extension)}/phoneCallEvents"


def call_event(user_id: str, extension: str, type: int, event_id: str) -> str:
    """One PhoneCallEvent registration, addressed by its type and id.
    Raises UapiInvalidId for a segment not of its documented form."""
    event = _object_id(event_id, "PhoneCallEvent id", ErrorCode.PCE_ID_INVALID)
    return f"{call_events(user_id, extension)}/{int(type)}/{event}"


def cdr(owner_id: str | None = None) -> str:
    """List CDR: the call records the app's account may see, or those of ``owner_id`` (an
    account at or below it). The trailing slash is how 4PSA's own client writes it.
    Raises UapiInvalidId for an owner that is no User-Id."""
    if owner_id is None:
        return "/uapi/cdr/"
    return f"/uapi/cdr/{_user(owner_id)}/"


def queue_agents(user_id: str, queue: str) -> str:
    """The agents of a queue extension (never ``@self``: VoipNow refuses it): list them.
    Raises UapiInvalidId for a segment not of its documented form."""
    return f"/uapi/extensions/{_user(user_id)}/{_extension(queue, 'queue')}/queue/agents"


def presence(user_id: str, extension: str) -> str:
    """List Presence of an extension, or of every extension of the user with ``@self``.
    Raises UapiInvalidId for a segment not of its documented form."""
    return f"/uapi/extensions/{_user(user_id)}/{_extension(extension)}/presence"
