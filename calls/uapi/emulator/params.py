"""Values of UAPI payloads and queries as the rooms of the engine check them: numbers,
callerIds, waitForPickup, booleans and enums, each refused with its documented error code."""

from __future__ import annotations

import math
import re
from enum import IntEnum
from typing import Any, TypeVar

from calls.uapi.wire import DEFAULT_WAIT_FOR_PICKUP, ErrorCode

from .errors import bad_request

CALLER_ID_PARTS = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<number>[^>]*)>\s*$")
PHONE_NUMBER_RE = re.compile(r"^\+?[0-9]{4,}$")

E = TypeVar("E", bound=IntEnum)


def split_caller_id(caller_id: str) -> tuple[str, str]:
    """(name, number) of ``Name <number>``; a bare number is all number."""
    match = CALLER_ID_PARTS.match(caller_id)
    if match is None:
        return "", caller_id
    return match["name"], match["number"]


def valid_caller_id(value: str) -> bool:
    """VoipNow's UAPI-Caller-Id: the Data Types grammar allows letters, digits, "<", ">", "+"
    and "*" (its examples add spaces), and 4PSA's own client checks ^[A-Za-z\\s]+<[0-9*+]+>$:
    a name of letters, digits and spaces, then the number in angle brackets (a "+" only in
    front, as phone numbers have it); punctuation is refused."""
    match = re.fullmatch(r"(?P<name>[A-Za-z0-9 ]+?) *<(?P<number>\+?[0-9*]+)>", value)
    return match is not None and bool(match["name"].strip())


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


def number(value: Any) -> str | None:
    """An extension or phone number given as an int or a non-blank string, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def caller_id(value: Any, default: str) -> str:
    """The callerId given, or ``default`` when absent; raises ``pc_callerid_invalid``."""
    if value is None:
        return default
    if not isinstance(value, str) or not valid_caller_id(value.strip()):
        raise bad_request(
            ErrorCode.PC_CALLERID_INVALID,
            "Invalid callerId. It must have the format: John Doe <+3334444>.",
        )
    return value.strip()


def wait_for_pickup(payload: dict[str, Any]) -> float:
    """Seconds to let a phone ring (default 25); raises ``pc_timeout_invalid``."""
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


def private_flag(value: Any) -> bool:
    """Whisper's ``private`` (default 0): the number 0 or 1, or the string "0" or "1" (4PSA's
    MCP client sends strings). Anything else, booleans included, raises
    ``pc_private_invalid``: the 3.x Whisper page and its example (``"private":0``) give a
    number, and the code is named like the other PhoneCallAction fields' (not documented)."""
    if value is None:
        return False
    if (type(value) is int and value in (0, 1)) or value in ("0", "1"):
        return value in (1, "1")
    raise bad_request(ErrorCode.PC_PRIVATE_INVALID, "Invalid private. It must be 0 or 1.")


def enum_field(spec: dict[str, Any], key: str, enum: type[E], default: E | None) -> E | None:
    """``spec[key]`` (an int or numeric string) as a member of ``enum``, else None."""
    value = spec.get(key, default)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return enum(int(value))
    except (TypeError, ValueError):
        return None
