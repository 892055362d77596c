"""Writes and outside calls: the only way the UI acts on calls."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from calls.exceptions import (
    AlreadyRinging,
    BadInput,
    CallboardError,
    NoSuchCall,
    NotAllowed,
    NotOnCall,
    PhoneNotReady,
    Refused,
    VoipNowRejected,
    VoipNowUnavailable,
)
from calls.live import WATCHER_CHANNEL
from calls.models import (
    CALLER_ID_HELP,
    CALLER_ID_RE,
    CONTROL_RE,
    MAX_WAIT_FOR_PICKUP,
    BargeInAttempt,
    Extension,
    Organization,
)
from calls.selectors import (
    BargeTarget,
    LiveCall,
    barge_target,
    live_call,
    modes_held,
    supervisor_of,
)
from calls.supervising import ATTEMPTS_CHANGED, FOLLOWED
from calls.uapi.client import UapiClient
from calls.uapi.errors import (
    UapiAnswerLost,
    UapiError,
    UapiRejected,
    UapiUnavailable,
    describe_code,
)
from calls.uapi.types import PhoneCallAction
from calls.uapi.wire import (
    DEFAULT_WAIT_FOR_PICKUP,
    USER_ME,
    USER_OWNER,
    Action,
    ErrorCode,
    ViewStatus,
)

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
    """How the attempt ended after its checks, as the audit records it; ``error`` is what the
    supervisor is told when it did not succeed; ``nothing_rang`` when it is certain that no
    phone rings for it (refused by VoipNow, or never sent)."""

    outcome: str
    status: int
    message: str
    latency_ms: int | None = None
    code: str = ""
    error: CallboardError | None = None
    nothing_rang: bool = False


# The Presence check is made while the supervisor waits for the ring: it is given this long,
# token included, and then the ring goes ahead unchecked. The emulator answers it in ~5 ms.
PRESENCE_DEADLINE = 2.0
UNCHECKED = "(Callboard could not check that your phone is on.)"
MAY_HAVE_RUNG = "VoipNow may have rung your phone: check it before trying again."
LEFT_BEFORE_SENDING = "The browser left before the request was sent."
# What the audit records as Callboard's answer to a browser that left before it: nginx's
# "client closed request", for want of a standard status.
CLIENT_GONE = 499


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


def _audited_mode(raw: str | None) -> str:
    if not raw:
        return BargeInAttempt.Mode.BARGE
    return raw if raw in MODES else BargeInAttempt.Mode.LISTEN


def _escaped(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _parse_mode(raw: str | None) -> str:
    """The mode exactly as typed when it is one. Left out (absent or empty), it is ``barge``:
    the contract's default for the field, which is optional. Any other value is refused, never
    guessed, least of all as an audible barge."""
    if not raw:
        return BargeInAttempt.Mode.BARGE
    if raw in MODES:
        return str(raw)
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
        # The mode column holds a mode: left out it is the default, barge; a value that is no
        # mode is recorded as listen, the quietest, and the refusal's message quotes it.
        mode=_audited_mode(request.mode),
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


async def _look(checked: _Checked, uapi: UapiClient) -> bool:
    """Ask VoipNow's Presence whether the phone about to ring is there and free.

    Returns True when it is, False when Presence could not tell (it failed, answered late or
    unreadably, or without that phone): the ring goes ahead unchecked. Raises PhoneNotReady
    (409) when VoipNow says the phone is not registered (or its registration expired), or
    that it is ringing or busy.
    """
    phone = checked.action.send_call_to or ""
    try:
        # Unpaced like the PUT it precedes: a person is waiting; still counted in the budget.
        found = await uapi.presence(phone, paced=False, deadline=PRESENCE_DEADLINE)
    except (UapiRejected, UapiUnavailable) as exc:
        log.info("presence of %s not checked: %s", phone, exc.message)
        return False
    # One extension asked for: its entry, or the only one if VoipNow writes the number
    # another way (a short number).
    presence = next((p for p in found if p.extension == phone), None)
    if presence is None and len(found) == 1:
        presence = found[0]
    if presence is None:
        return False
    if presence.unregistered:
        raise PhoneNotReady(f"Your phone {phone} is not registered: is it on?")
    if presence.on_a_call:
        raise PhoneNotReady(f"Your phone {phone} is already on a call: hang up first.")
    return presence.registered or presence.online


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
            nothing_rang=True,
        )
    except UapiAnswerLost as exc:
        # The PUT went out and its answer did not come back whole: VoipNow may be ringing the
        # phone. Told apart from "could not be reached", and not retried.
        status = 504 if exc.timed_out else 502
        return _Sent(
            outcome=BargeInAttempt.Outcome.UNCERTAIN,
            status=status,
            message=f"{MAY_HAVE_RUNG} ({exc.message})",
            latency_ms=elapsed(),
            error=VoipNowUnavailable(MAY_HAVE_RUNG, status=status),
        )
    except UapiUnavailable as exc:
        status = 504 if exc.timed_out else 502
        # Never sent: nothing rang and trying again is safe. Sent and answered with a failure
        # (5xx): VoipNow said it failed, but that answer does not prove nothing rang.
        message = (
            f"{exc.message} Nothing was sent: try again."
            if not exc.sent
            else f"{exc.message} Not retried."
        )
        return _Sent(
            outcome=BargeInAttempt.Outcome.UNAVAILABLE,
            status=status,
            message=message,
            latency_ms=elapsed(),
            error=VoipNowUnavailable(message, status=status),
            nothing_rang=not exc.sent,
        )
    phone = checked.action.send_call_to or ""
    return _Sent(
        outcome=BargeInAttempt.Outcome.ACCEPTED,
        status=200,
        message=f"{phone} is ringing: {_JOIN_WORDS[mode]}.",
        latency_ms=elapsed(),
    )


def _finish(attempt_id: int, sent: _Sent) -> None:
    """Write the attempt's final outcome over its pending row."""
    BargeInAttempt.objects.filter(pk=attempt_id).update(
        outcome=sent.outcome,
        http_status=sent.status,
        latency_ms=sent.latency_ms,
        **BargeInAttempt.clipped(uapi_code=sent.code, message=sent.message),
    )


def _refused(refusal: Refused) -> _Sent:
    """A refusal after the row was written pending (Presence, a browser gone): nothing sent."""
    return _Sent(
        outcome=BargeInAttempt.Outcome.REFUSED,
        status=refusal.status,
        message=refusal.message,
        error=refusal,
        nothing_rang=True,
    )


async def _attempt(
    user: Any, request: _Request, uapi: UapiClient, gone: asyncio.Event
) -> tuple[_Checked, _Sent]:
    """Check, look at the phone's Presence, send: the attempt from its checks to its final
    audit row; returns what was checked and the acceptance, raises the error the supervisor
    is told. ``gone`` is set when the browser has left: the attempt then stops before the
    PUT if it has not sent it yet, and otherwise lets it run to its answer."""
    checked = await sync_to_async(_check)(user, request)
    try:
        if gone.is_set():
            raise Refused(LEFT_BEFORE_SENDING, status=CLIENT_GONE)
        checked_phone = await _look(checked, uapi)
        if gone.is_set():
            raise Refused(LEFT_BEFORE_SENDING, status=CLIENT_GONE)
    except Refused as exc:
        sent = _refused(exc)
    else:
        sent = await _send(checked, request.mode, uapi)
        if not checked_phone:
            sent = replace(sent, message=f"{sent.message} {UNCHECKED}")
    await sync_to_async(_finish)(checked.attempt_id, sent)
    if sent.outcome in FOLLOWED:
        # The phone rings (or may: an answer lost after sending); the watcher follows its leg.
        await attempts_changed(org_id=checked.call.organization_id, call_id=checked.call.id)
    if sent.nothing_rang:
        # Nothing rang: let the supervisor try again at once. Otherwise the guard stays: if
        # the PUT did reach VoipNow the phone is ringing.
        await cache.adelete(checked.guard_key)
    if sent.error is not None:
        raise sent.error
    return checked, sent


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
    one); ``address`` is the client's, as the server saw it. Before ringing, the phone's
    Presence is asked for; when Presence cannot tell, the ring goes ahead and the message says
    the phone was not checked. Every attempt leaves one BargeInAttempt row with a final
    outcome, even when the caller is cancelled (the browser left): before the PUT the attempt
    stops there, refused; after, the PUT runs to its answer. The PUT is sent at most once: it
    rings a phone.

    Returns BargeInResult when VoipNow accepted it. Raises Refused (BadInput 400, NotAllowed
    403, NoSuchCall 404, AlreadyRinging 409, PhoneNotReady 409) before anything is sent,
    VoipNowRejected with the UAPI code, VoipNowUnavailable (502, or 504 on a timeout) when
    VoipNow could not be reached, failed, or lost its answer (then the phone may ring).
    """
    # The field is optional: left out, the mode is the contract's default, barge.
    mode = mode or BargeInAttempt.Mode.BARGE
    request = _Request(
        call_id, phone_call_view_id, send_call_to, caller_id, wait_for_pickup, mode, reason, address
    )
    gone = asyncio.Event()
    # A task of its own, shielded from the caller's cancellation, so that a browser leaving
    # mid-request never leaves a pending row or half a decision behind.
    task = asyncio.create_task(_attempt(user, request, uapi, gone))
    try:
        checked, sent = await asyncio.shield(task)
    except asyncio.CancelledError:
        gone.set()
        while not task.done():
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                continue  # cancelled again: the row is still not final
        if not task.cancelled():
            task.exception()  # the browser is gone: whatever it was, nobody is told
        raise
    phone = checked.action.send_call_to or ""
    log.info("%s %s call %s from %s accepted in %d ms", user, mode, call_id, phone, sent.latency_ms)
    return BargeInResult(
        attempt_id=checked.attempt_id,
        message=sent.message,
        send_call_to=phone,
        call_id=checked.call.id,
    )


# ---- who is on a call; cancel and leave ------------------------------------------------------


async def attempts_changed(*, org_id: int, call_id: str) -> None:
    """Tell the watcher an attempt on a call of the Organization was accepted, cancelled or
    left, so that every screen shows who is on the call at once (calls/supervising.py).

    Never raises: with no watcher listening, or the channel layer down, the watcher's own
    periodic read of the attempts catches up."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(
            WATCHER_CHANNEL, {"type": ATTEMPTS_CHANGED, "org": org_id, "call_id": call_id}
        )
    except Exception as exc:  # noqa: BLE001 - ChannelFull, Redis down: the watcher catches up
        log.warning("could not tell the watcher that an attempt changed: %s", exc)


@dataclass(frozen=True, slots=True)
class LeaveResult:
    """The supervisor's leg was hung up. ``how`` is what the audit row records: ``cancelled``
    (it was ringing) or ``left`` (it had joined)."""

    attempt_id: int
    call_id: str
    phone: str
    how: str
    message: str


@dataclass(frozen=True, slots=True)
class _Claim:
    """An attempt marked as ended before the hang-up is sent, so that the watcher, seeing the
    leg go, does not record it as hung up on the phone."""

    attempt_id: int
    organization_id: int
    supervisor_id: int
    call_id: str
    phone: str
    how: str
    left_at: datetime


def _claim_leg(user: Any, call_id: str) -> _Claim:
    """The rules, in order: a supervisor; a live call of their Organization; their latest
    accepted attempt on it, not yet ended; its phone still theirs. Marks the attempt ended.
    Raises Refused."""
    supervisor = supervisor_of(user)
    if supervisor is None:
        raise NotAllowed("Only supervisors can leave a call.")
    call = live_call(call_id)
    if call is None or call.organization_id != supervisor.organization_id:
        raise NoSuchCall("This call is no longer live.")
    attempt = (
        BargeInAttempt.objects.filter(
            user=user,
            organization=supervisor.organization_id,
            phone_call_id=call.id,
            outcome__in=FOLLOWED,
        )
        .order_by("-at", "-pk")
        .first()
    )
    if attempt is None or attempt.left_at is not None or not attempt.send_call_to:
        raise NotOnCall("Your phone is not on this call: there is nothing to hang up.")
    phone = attempt.send_call_to
    if not supervisor.phones.filter(
        number=phone,
        organization=supervisor.organization_id,
        type=Extension.Type.PHONE_TERMINAL,
    ).exists():
        raise NotAllowed(f"{phone} is no longer one of your phones: hang up on the phone itself.")
    joined = attempt.joined_at is not None or any(
        phone in v.source and v.status == ViewStatus.ON_CALL for v in call.views
    )
    how = BargeInAttempt.Left.LEFT if joined else BargeInAttempt.Left.CANCELLED
    left_at = timezone.now()
    claimed = BargeInAttempt.objects.filter(pk=attempt.pk, left_at__isnull=True).update(
        left_at=left_at, left_how=how
    )
    if not claimed:  # its leg ended a moment ago: the watcher, or a second click, was first
        raise NotOnCall("Your phone is not on this call: there is nothing to hang up.")
    return _Claim(
        attempt_id=attempt.pk,
        organization_id=supervisor.organization_id,
        supervisor_id=supervisor.pk,
        call_id=call.id,
        phone=phone,
        how=how,
        left_at=left_at,
    )


def _unclaim(claim: _Claim) -> None:
    """The hang-up failed: the leg is (or may be) still there; the watcher follows it again."""
    BargeInAttempt.objects.filter(
        pk=claim.attempt_id, left_at=claim.left_at, left_how=claim.how
    ).update(left_at=None, left_how="")


def _hang_up_failed(exc: UapiError, phone: str) -> CallboardError:
    """What the supervisor reads when VoipNow did not hang up their phone."""
    if isinstance(exc, UapiRejected):
        if exc.code == ErrorCode.PC_PHONECALL_INVALID:
            return VoipNowRejected("This call has ended.", status=404, code=exc.code)
        return VoipNowRejected(
            f"VoipNow refused to hang up {phone}: {describe_code(exc.code, exc.message)}. "
            "Hang up on the phone itself.",
            status=502,
            code=exc.code,
        )
    if isinstance(exc, UapiUnavailable) and exc.timed_out:
        return VoipNowUnavailable(
            f"VoipNow did not answer in time: {phone} may still be on the call. Try again, "
            "or hang up on the phone itself.",
            status=504,
        )
    return VoipNowUnavailable(
        f"VoipNow could not be reached: {exc.message} {phone} is still on the call: try "
        "again, or hang up on the phone itself."
    )


_LEFT_WORDS: dict[str, str] = {
    BargeInAttempt.Left.CANCELLED: "Cancelled: {phone} stops ringing.",
    BargeInAttempt.Left.LEFT: "You left the call: {phone} was hung up.",
}


async def leave_call(*, user: Any, call_id: str, uapi: UapiClient) -> LeaveResult:
    """Hang up the supervisor's own leg on a live call of their Organization, ringing (cancel)
    or joined (leave): the phone of their latest accepted attempt on it. Delete PhoneCalls
    with that phone as the URI's extension ends only its part; the call goes on. Never
    ``phoneNumber``: 4PSA's client accepts only public numbers there.

    The attempt's row records ``left_at`` and ``left_how`` (``cancelled`` or ``left``), the
    ringing guard is freed so the supervisor may ring again at once, and the watcher is told.

    Returns LeaveResult. Raises NotAllowed (403: not a supervisor, or the phone is no longer
    theirs), NoSuchCall (404: not live, or of another Organization), NotOnCall (409: no leg of
    theirs on it), VoipNowRejected (404 when the call has ended, else 502, with the UAPI code)
    or VoipNowUnavailable (502, 504 on a timeout); after a failure the row is as it was and
    the guard stays.
    """
    claim = await sync_to_async(_claim_leg)(user, call_id)
    try:
        hung_up = await uapi.hang_up(call_id=claim.call_id, user_id=USER_ME, extension=claim.phone)
    except UapiError as exc:
        await sync_to_async(_unclaim)(claim)
        log.warning("%s could not leave call %s from %s: %s", user, call_id, claim.phone, exc)
        raise _hang_up_failed(exc, claim.phone) from exc
    await cache.adelete(_guard_key(claim.supervisor_id, claim.call_id))
    await attempts_changed(org_id=claim.organization_id, call_id=claim.call_id)
    if hung_up:
        message = _LEFT_WORDS[claim.how].format(phone=claim.phone)
    else:
        # 204: VoipNow had no leg of the phone in the call any more (it stopped ringing, or
        # was hung up on the phone, a moment ago). The supervisor's wish holds all the same.
        message = f"{claim.phone} was no longer on this call."
    log.info("%s %s call %s from %s", user, claim.how, call_id, claim.phone)
    return LeaveResult(
        attempt_id=claim.attempt_id,
        call_id=claim.call_id,
        phone=claim.phone,
        how=claim.how,
        message=message,
    )
