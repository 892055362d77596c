"""``/hooks/voipnow/<secret>/``: where VoipNow sends Call Events.

A bare ASGI app, not a Django view: VoipNow may post several events per call change, and
Django's middleware stack (sessions, authentication, CSRF, each a hop to a worker thread)
would cost more than the rest of the live path together (measured in ``make bench``). Nothing
here needs it: the secret in the path is the credential, the body is one form to read.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import URLPattern, path

from calls.live import WATCHER_CHANNEL
from calls.uapi.paths import is_call_id

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a Call Event is a dozen short fields
# A Call Event has about a dozen fields; a form of many more is no Call Event, and parsing it
# costs (parse_qs refuses past this many).
MAX_FIELDS = 64
# An extension in a Call Event is in the extended format yyyy*zzz; a UAPI call id is an
# Object-Id (calls.uapi.paths.is_call_id).
EXTENSION_RE = re.compile(r"[0-9]{1,8}\*[0-9]{1,8}")
_PREFIX = "hooks/voipnow/"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """What a Call Event asks the watcher to refresh: the call ``call_id``, else the
    ``extensions``' calls, else (neither) everything."""

    call_id: str | None
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventRefused:
    """A body that is no Call Event; ``reason`` is for the log and the answer."""

    reason: str


def parse_event(raw: str) -> CallEvent | EventRefused:
    """The Call Event in a form body or query string.

    ``CallAPIID`` is the PhoneCall id only for calls made through the UAPI; for an ordinary
    inbound queue call VoipNow 3.x leaves it empty. ``CallID`` is the PBX's own id
    (``1764240000.17``), never a UAPI id, so it is never looked up. A value not of its
    documented form is never put in a VoipNow URL: it is ignored when the event names
    something else, and the event is refused when it names nothing else. Never raises.
    """
    try:
        fields = parse_qs(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return EventRefused(f"more than {MAX_FIELDS} fields")
    given = (fields.get("CallAPIID") or [""])[0].strip()
    call_id = given if is_call_id(given) else None
    named = [
        number
        for name in ("CalledExtension", "CallerExtension")
        for number in fields.get(name, [])[:1]
        if number
    ]
    extensions = tuple(n for n in named if EXTENSION_RE.fullmatch(n))
    malformed = (given and call_id is None) or len(extensions) < len(named)
    if malformed and call_id is None and not extensions:
        return EventRefused("no call id or extension of VoipNow's form")
    return CallEvent(call_id, extensions)


Admission = Literal["pass", "poll", "drop"]


class RateCap:
    """At most ``per_second`` events pass in each second of ``clock``; the first past it asks
    for one poll of everything instead, the rest of that second are dropped."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._second = -1
        self._count = 0

    def admit(self, per_second: int) -> Admission:
        second = int(self.clock())
        if second != self._second:
            self._second, self._count = second, 0
        self._count += 1
        if self._count <= per_second:
            return "pass"
        if self._count == per_second + 1:
            log.warning("more than %d Call Events a second: polling instead", per_second)
            return "poll"
        return "drop"


# This process's cap (the watcher has its own, over every process).
rate_cap = RateCap()


def hook_url() -> str:
    """The URL VoipNow is to send Call Events to: the route below, under the public URL."""
    return f"{settings.CALLBOARD_PUBLIC_URL}/{_PREFIX}{settings.CALLBOARD_HOOK_SECRET}/"


async def voipnow_hook(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Ask the watcher to refresh the call a Call Event names; answer 200 at once."""
    secret = scope["url_route"]["kwargs"]["secret"]
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            await _answer(send, 413, b"Too large")
            return
        if not message.get("more_body"):
            break
    if not hmac.compare_digest(secret.encode(), settings.CALLBOARD_HOOK_SECRET.encode()):
        await _answer(send, 404, b"Not found")
        return
    if scope["method"] == "POST":
        raw = body.decode("utf-8", "replace")
    elif scope["method"] == "GET":
        raw = scope.get("query_string", b"").decode("utf-8", "replace")
    else:
        await _answer(send, 405, b"Method not allowed", [(b"allow", b"GET, POST")])
        return
    event = parse_event(raw)
    if isinstance(event, EventRefused):
        log.warning("Call Event refused: %s", event.reason)
        await _answer(send, 400, f"Not a Call Event: {event.reason}".encode())
        return
    admission = rate_cap.admit(settings.CALLBOARD_HOOK_MAX_PER_SECOND)
    if admission != "drop":
        await _tell_watcher(CallEvent(None) if admission == "poll" else event)
    # Dropped or not, VoipNow is answered 200: its event is covered by the poll asked for.
    await _answer(send, 200, b"OK")


async def _tell_watcher(event: CallEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(
            WATCHER_CHANNEL,
            {"type": "call.event", "call_id": event.call_id, "extensions": list(event.extensions)},
        )
    except ChannelFull:
        # No watcher is draining events right now; its next poll picks the change up.
        log.warning("call event dropped: the watcher's channel is full")


async def _answer(
    send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def hook_route() -> URLPattern:
    """The hook's route, for the ASGI router in front of Django (see ``hook_url``)."""
    # Channels routes ASGI apps with Django's path(), typed for views only.
    return path(f"{_PREFIX}<str:secret>/", voipnow_hook)  # type: ignore[arg-type]
