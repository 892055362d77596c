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
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import URLPattern, path

from calls.live import WATCHER_CHANNEL

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a Call Event is a dozen short fields
# A PhoneCall id is an Object-Id: letters and digits (b817d2618fe6f1804333); an extension in
# a Call Event is in the extended format yyyy*zzz.
CALL_ID_RE = re.compile(r"[A-Za-z0-9]{1,64}")
EXTENSION_RE = re.compile(r"[0-9]{1,8}\*[0-9]{1,8}")
_PREFIX = "hooks/voipnow/"


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
    call_id, extensions = _what_changed(parse_qs(raw))
    layer = get_channel_layer()
    if layer is not None:
        try:
            await layer.send(
                WATCHER_CHANNEL,
                {"type": "call.event", "call_id": call_id, "extensions": extensions},
            )
        except ChannelFull:
            # No watcher is draining events right now; its next poll picks the change up.
            log.warning("call event dropped: the watcher's channel is full")
    await _answer(send, 200, b"OK")


def _what_changed(fields: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """The UAPI call id a Call Event names, or else the extensions it names.

    ``CallAPIID`` is the PhoneCall id only for calls made through the UAPI; for an ordinary
    inbound queue call VoipNow 3.x leaves it empty. ``CallID`` is the PBX's own id
    (``1764240000.17``), never a UAPI id, so it is never looked up. Values that are not of
    their documented form are ignored rather than put in a VoipNow URL.
    """
    call_id = (fields.get("CallAPIID") or [""])[0].strip()
    extensions = [
        number
        for name in ("CalledExtension", "CallerExtension")
        for number in fields.get(name, [])[:1]
        if EXTENSION_RE.fullmatch(number)
    ]
    return (call_id if CALL_ID_RE.fullmatch(call_id) else None), extensions


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
