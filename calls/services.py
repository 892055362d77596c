"""Writes and outside calls: the only way the UI acts on calls."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from calls.exceptions import (
    AlreadyRinging,
    BadInput,
    CallboardError,
    NotAllowed,
    VoipNowRejected,
    VoipNowUnavailable,
)
from calls.models import (
    CALLER_ID_HELP,
    CALLER_ID_RE,
    CONTROL_RE,
    MAX_WAIT_FOR_PICKUP,
    BargeInAttempt,
    Extension,
    Organization,
)
from calls.selectors import BargeTarget, LiveCall, barge_target, modes_held, supervisor_of
from calls.uapi.client import UapiClient
from calls.uapi.errors import UapiRejected, UapiUnavailable, describe_code
from calls.uapi.types import PhoneCallAction
from calls.uapi.wire import DEFAULT_WAIT_FOR_PICKUP, USER_OWNER, Action, ErrorCode, ViewStatus

log = logging.getLogger(__name__)

MODES: dict[str, Action] = {
    BargeInAttempt.Mode.BARGE: Action.BARGE_IN,
    BargeInAttempt.Mode.WHISPER: Action.WHISPER,
    BargeInAttempt.Mode.LISTEN: Action.MONITOR,
}
_JOIN_WORDS: dict[str, str] = {
    BargeInAttempt.Mode.BARGE: "pick up to join",
    BargeInAttempt.Mode.WHISPER: "pick up to whisper to the agent",
    BargeInAttempt.Mode.LISTEN: "pick up to listen",
}
# The VoipNow version that introduced each mode (Monitor: 5.6, as 4PSA's own client requires).
_SINCE: dict[str, tuple[int, ...]] = {
    BargeInAttempt.Mode.BARGE: (3,),
    BargeInAttempt.Mode.WHISPER: (3,),
    BargeInAttempt.Mode.LISTEN: (5, 6),
}
_DOING: dict[str, str] = {
    BargeInAttempt.Mode.BARGE: "barging in",
    BargeInAttempt.Mode.WHISPER: "whispering",
    BargeInAttempt.Mode.LISTEN: "listening",
}
# What a supervisor without a mode's right may not do.
_MAY_NOT: dict[str, str] = {
    BargeInAttempt.Mode.BARGE: "barge in on calls",
    BargeInAttempt.Mode.WHISPER: "whisper to agents on calls",
    BargeInAttempt.Mode.LISTEN: "listen to calls",
}
# A server answers these when it does not have the action at all.
_NO_SUCH_ACTION = {ErrorCode.PC_ACTION_INVALID, ErrorCode.REQUEST_NOT_IMPLEMENTED}


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.strip().split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) or (0,)


def modes_offered() -> list[str]:
    """The modes the configured VoipNow supports (``settings.VOIPNOW_VERSION``), in the
    order the dialog shows them."""
    version = _version(settings.VOIPNOW_VERSION)
    return [mode for mode in MODES if version >= _SINCE[mode]]


def not_supported(mode: str) -> str:
    """What a supervisor reads when VoipNow does not have ``mode``."""
    return f"Your VoipNow does not support {_DOING[mode]}."


# How a VoipNow refusal reads to the supervisor: (HTTP status we answer, code).
_UAPI_STATUS: dict[str, int] = {
    ErrorCode.PC_PHONECALL_INVALID: 404,
    ErrorCode.PC_PHONECALLVIEW_INVALID: 400,
    ErrorCode.PC_SENDCALLTO_INVALID: 400,
    ErrorCode.PC_CALLERID_INVALID: 400,
    ErrorCode.PC_TIMEOUT_INVALID: 400,
}


@dataclass(frozen=True, slots=True)
class BargeInResult:
    attempt_id: int
    message: str
    send_call_to: str
    call_id: str


@dataclass(frozen=True, slots=True)
class _Checked:
    attempt_id: int
    call: LiveCall
    target_extension: str
    action: PhoneCallAction
    guard_key: str


@dataclass(frozen=True, slots=True)
class _Sent:
    """How the PUT ended, as the audit records it; ``error`` is what the supervisor is told
    when it did not succeed."""

    outcome: str
    status: int
    message: str
    latency_ms: int
    code: str = ""
    error: CallboardError | None = None


def _guard_key(supervisor_id: int, call_id: str) -> str:
    return f"barge-ringing:{supervisor_id}:{call_id}"


# As long as the audit's columns (and the admin's caller IDs) hold.
_CALLER_ID_MAX = 200
_REASON_MAX = 500
_MODE_WORDS = "Choose listen, whisper or barge in."
_WAIT_WORDS = f"Wait for pickup must be a whole number of seconds from 1 to {MAX_WAIT_FOR_PICKUP}."


def _printable(value: str) -> str:
    """``value`` with its control characters written as ``\\xNN`` (or ``\\u2028``): how typed
    input is kept in the audit and quoted back (PostgreSQL refuses NUL in text, and a line
    break in a log or an export would forge a line)."""
    return CONTROL_RE.sub(lambda found: _escaped(ord(found.group())), value)


def _escaped(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _parse_mode(raw: str | None) -> str:
    """The mode exactly as typed when it is one; nothing else is guessed, least of all an
    audible barge for a value that is not one."""
    if raw in MODES:
        return str(raw)
    if not raw:
        raise BadInput(_MODE_WORDS)
    raise BadInput(f'{_MODE_WORDS} "{_printable(raw)[:24]}" is not one of them.')


def _parse_wait(raw: str | int | None) -> int | None:
    """Seconds the phone may ring, 1 to MAX_WAIT_FOR_PICKUP; None (VoipNow's default) when
    left empty."""
    text = str(raw).strip(" ") if raw is not None else ""
    if not text:
        return None
    # ASCII digits only: int() also takes "+5", "1_0" and digits of other scripts.
    if not (text.isascii() and text.isdigit()):
        raise BadInput(_WAIT_WORDS)
    try:
        value = int(text)
    except ValueError:  # more digits than int() reads from text
        raise BadInput(_WAIT_WORDS) from None
    if not 1 <= value <= MAX_WAIT_FOR_PICKUP:
        raise BadInput(_WAIT_WORDS)
    return value


def _parse_caller_id(raw: str | None) -> str | None:
    """The caller ID without the spaces around it; None when empty (VoipNow then shows the
    phone's own)."""
    text = raw or ""
    if CONTROL_RE.search(text):
        raise BadInput(
            f"The caller ID is one line, without line breaks or control characters: "
            f"{CALLER_ID_HELP}."
        )
    value = text.strip()
    if not value:
        return None
    if len(value) > _CALLER_ID_MAX:
        raise BadInput(
            f"The caller ID is at most {_CALLER_ID_MAX} characters (this one has "
            f"{len(value)}): {CALLER_ID_HELP}."
        )
    if not CALLER_ID_RE.match(value):
        raise BadInput(f"The caller ID must look like {CALLER_ID_HELP}.")
    return value


def _parse_reason(raw: str | None, organization: Organization) -> str:
    """Why the supervisor joins, one line without the spaces around it; "" when none is given
    and the Organization does not ask for one. With the Organization's list of reasons, a
    reason given must be one of them."""
    text = raw or ""
    if CONTROL_RE.search(text):
        raise BadInput("The reason is one line, without line breaks or control characters.")
    value = text.strip()
    if len(value) > _REASON_MAX:
        raise BadInput(f"The reason is at most {_REASON_MAX} characters.")
    if not value:
        if organization.reason_required:
            raise BadInput(
                f"{organization} asks for a reason before you listen, whisper or barge in."
            )
        return ""
    choices = organization.reason_choices
    if choices and value not in choices:
        raise BadInput(f"Choose one of {organization}'s reasons.")
    return value


def _parse_address(raw: str | None) -> str | None:
    """The client's IP address as the server saw it, or None when it is not one (a Unix
    socket, a test client)."""
    try:
        # Without an IPv6 zone ("%eth0"): the audit's column holds bare addresses.
        return str(ipaddress.ip_address((raw or "").split("%", 1)[0]))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Request:
    """What the supervisor asked for, as typed, and the address the request came from."""

    call_id: str
    phone_call_view_id: str
    send_call_to: str
    caller_id: str | None
    wait_for_pickup: str | int | None
    mode: str
    reason: str | None = None
    address: str | None = None


def _check(user: Any, request: _Request) -> _Checked:
    """Every rule, in order; one audit row whatever the outcome. Raises Refused."""
    typed = {
        "phone_call_id": request.call_id,
        "phone_call_view_id": request.phone_call_view_id or "",
        "send_call_to": request.send_call_to or "",
        "caller_id": request.caller_id or "",
        "wait_for_pickup": "" if request.wait_for_pickup is None else str(request.wait_for_pickup),
        "reason": request.reason or "",
    }
    attempt = BargeInAttempt(
        user=user if getattr(user, "is_authenticated", False) else None,
        username=getattr(user, "username", "") or "",
        # The mode column holds a mode: one that is not is recorded as listen, the quietest,
        # and the refusal's message quotes what was typed.
        mode=request.mode if request.mode in MODES else BargeInAttempt.Mode.LISTEN,
        address=_parse_address(request.address),
        **BargeInAttempt.clipped(**{name: _printable(value) for name, value in typed.items()}),
    )
    try:
        supervisor = supervisor_of(user)
        if supervisor is not None:
            attempt.organization = supervisor.organization
        target = barge_target(user, supervisor, request.call_id)
        return _apply_rules(attempt, target, request, user)
    except CallboardError as exc:
        attempt.outcome = BargeInAttempt.Outcome.REFUSED
        attempt.http_status = exc.status
        attempt.message = BargeInAttempt.clipped(message=exc.message)["message"]
        attempt.save()
        raise


def _apply_rules(
    attempt: BargeInAttempt, target: BargeTarget, request: _Request, user: Any
) -> _Checked:
    supervisor, call = target.supervisor, target.call
    mode = _parse_mode(request.mode)
    if mode not in modes_held(user):
        raise NotAllowed(f"You may not {_MAY_NOT[mode]}: ask an admin for the right.")
    if mode not in modes_offered():
        raise BadInput(
            f"{not_supported(mode)} (VoipNow {settings.VOIPNOW_VERSION}; "
            f"{'.'.join(map(str, _SINCE[mode]))} or later has it)"
        )
    view = call.view(request.phone_call_view_id or "")
    if view is None:
        raise BadInput("Pick one of the call's legs: that one is not part of this call.")
    wait = _parse_wait(request.wait_for_pickup)
    caller = _parse_caller_id(request.caller_id)
    reason = _parse_reason(request.reason, supervisor.organization)
    number = request.send_call_to or ""
    phone = Extension.objects.filter(number=number).first()
    if phone is None or phone.organization_id != supervisor.organization_id:
        raise NotAllowed(
            f"{number or 'That extension'} is not an extension of {supervisor.organization}."
        )
    if not phone.is_phone_terminal:
        raise NotAllowed(f"{phone.number} is not a phone terminal: only phones can barge in.")
    if not supervisor.phones.filter(pk=phone.pk).exists():
        raise NotAllowed(f"{phone.number} is not one of your phones.")

    key = _guard_key(supervisor.pk, call.id)
    # Left out, the wait is VoipNow's default: the phone rings that long at most.
    ttl = (wait or DEFAULT_WAIT_FOR_PICKUP) + settings.CALLBOARD_RINGING_GUARD_GRACE
    if not cache.add(key, phone.number, timeout=ttl):
        ringing_to = cache.get(key)
        joined = any(ringing_to in v.source and v.status == ViewStatus.ON_CALL for v in call.views)
        if not joined:
            raise AlreadyRinging(
                f"{ringing_to or 'Your phone'} is already ringing for this call: pick up."
            )
        cache.set(key, phone.number, timeout=ttl)

    attempt.target_extension = view.extension
    attempt.caller_id = caller or ""
    attempt.wait_for_pickup = str(wait) if wait is not None else ""
    attempt.reason = reason
    attempt.outcome = BargeInAttempt.Outcome.PENDING
    attempt.save()
    return _Checked(
        attempt_id=attempt.pk,
        call=call,
        target_extension=view.extension,
        guard_key=key,
        action=PhoneCallAction(
            action=MODES[mode],
            phone_call_view_id=view.id,
            send_call_to=phone.number,
            caller_id=caller,
            wait_for_pickup=wait,
        ),
    )


async def _send(checked: _Checked, mode: str, uapi: UapiClient) -> _Sent:
    """PUT the action, once; never raises for VoipNow's answer, returns how it ended."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    try:
        await uapi.update_call(
            user_id=USER_OWNER,
            extension=checked.target_extension,
            call_id=checked.call.id,
            action=checked.action,
        )
    except UapiRejected as exc:
        status = _UAPI_STATUS.get(exc.code, 502)
        message = (
            not_supported(mode)
            if exc.code in _NO_SUCH_ACTION
            else f"VoipNow refused: {describe_code(exc.code, exc.message)}."
        )
        return _Sent(
            outcome=BargeInAttempt.Outcome.REJECTED,
            status=status,
            message=message,
            latency_ms=elapsed(),
            code=exc.code,
            error=VoipNowRejected(message, status=status, code=exc.code),
        )
    except UapiUnavailable as exc:
        status = 504 if exc.timed_out else 502
        message = (
            "VoipNow did not answer in time; your phone may still ring. Not retried."
            if exc.timed_out
            else f"VoipNow could not be reached: {exc.message} Not retried."
        )
        return _Sent(
            outcome=BargeInAttempt.Outcome.UNAVAILABLE,
            status=status,
            message=message,
            latency_ms=elapsed(),
            error=VoipNowUnavailable(message, status=status),
        )
    phone = checked.action.send_call_to or ""
    return _Sent(
        outcome=BargeInAttempt.Outcome.ACCEPTED,
        status=200,
        message=f"{phone} is ringing: {_JOIN_WORDS[mode]}.",
        latency_ms=elapsed(),
    )


def _finish(attempt_id: int, sent: _Sent) -> None:
    BargeInAttempt.objects.filter(pk=attempt_id).update(
        outcome=sent.outcome,
        http_status=sent.status,
        latency_ms=sent.latency_ms,
        **BargeInAttempt.clipped(uapi_code=sent.code, message=sent.message),
    )


async def barge_in(
    *,
    user: Any,
    call_id: str,
    phone_call_view_id: str,
    send_call_to: str,
    caller_id: str | None = None,
    wait_for_pickup: str | int | None = None,
    mode: str = BargeInAttempt.Mode.BARGE,
    reason: str | None = None,
    address: str | None = None,
    uapi: UapiClient,
) -> BargeInResult:
    """Ring one of the supervisor's phones and join it to a live call of their Organization.

    ``mode`` is ``barge`` (BargeIn), ``whisper`` (Whisper) or ``listen`` (Monitor), each
    needing its own right. ``reason`` is why, kept with the row (the Organization may require
    one); ``address`` is the client's, as the server saw it. Every attempt leaves one
    BargeInAttempt row. The PUT is sent at most once: it rings a phone.

    Returns BargeInResult when VoipNow accepted it. Raises Refused (BadInput 400, NotAllowed
    403, NoSuchCall 404, AlreadyRinging 409) before anything is sent, VoipNowRejected with the
    UAPI code, VoipNowUnavailable (502, or 504 on a timeout) when VoipNow did not answer.
    """
    request = _Request(
        call_id, phone_call_view_id, send_call_to, caller_id, wait_for_pickup, mode, reason, address
    )
    checked = await sync_to_async(_check)(user, request)
    sent = await _send(checked, mode, uapi)
    await sync_to_async(_finish)(checked.attempt_id, sent)
    if isinstance(sent.error, VoipNowRejected):
        # Nothing rang: let the supervisor try again at once. After no answer the guard stays:
        # if the PUT did reach VoipNow the phone is ringing.
        await cache.adelete(checked.guard_key)
    if sent.error is not None:
        raise sent.error
    phone = checked.action.send_call_to or ""
    log.info("%s %s call %s from %s accepted in %d ms", user, mode, call_id, phone, sent.latency_ms)
    return BargeInResult(
        attempt_id=checked.attempt_id,
        message=sent.message,
        send_call_to=phone,
        call_id=checked.call.id,
    )
